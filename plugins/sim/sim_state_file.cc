#include "plugins/sim/sim_state_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "plugins/sim/sim_content.h"
#include "plugins/sim/sim_generator.h"

namespace vfiomig::sim {
namespace {

using Json = nlohmann::json;
constexpr int kFormat = 1;

std::optional<DeviceState> StateByName(const std::string& name) {
  for (DeviceState s : kAllDeviceStates) {
    if (DeviceStateName(s) == name) return s;
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<std::optional<SimSavedState>> SimStateFile::Load(
    uint64_t max_size) const {
  std::ifstream in(path_);
  if (!in) {
    if (errno == ENOENT) return std::nullopt;
    return absl::UnavailableError(absl::StrCat("cannot read ", path_.string(),
                                               ": ", std::strerror(errno)));
  }
  std::stringstream text;
  text << in.rdbuf();
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_.string(), ": ", why,
                     "; remove the file to start the device afresh"));
  };
  const Json j = Json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("format") || j["format"] != kFormat) {
    return bad("not a sim device state file of format 1");
  }
  SimSavedState saved;
  const Json& state = j.value("state", Json());
  std::optional<DeviceState> parsed =
      state.is_string() ? StateByName(state.get<std::string>()) : std::nullopt;
  if (!parsed) return bad("bad \"state\"");
  saved.state = *parsed;
  const Json& size = j.value("size", Json());
  const Json& seed = j.value("origin_seed", Json());
  if (!size.is_number_unsigned() || !seed.is_number_unsigned()) {
    return bad("\"size\" and \"origin_seed\" must be unsigned integers");
  }
  saved.size = size.get<uint64_t>();
  saved.origin_seed = seed.get<uint64_t>();
  if (saved.size == 0 || saved.size > max_size) {
    return bad(absl::StrCat("size ", saved.size, " is not in 1..", max_size,
                            " (the device's state_bytes)"));
  }
  const Json& versions = j.value("versions", Json());
  if (!versions.is_array()) return bad("\"versions\" must be a list");
  const uint64_t blocks = BlockCount(saved.size);
  for (const Json& v : versions) {
    if (!v.is_array() || v.size() != 2 || !v[0].is_number_unsigned() ||
        !v[1].is_number_unsigned() || v[0].get<uint64_t>() >= blocks) {
      return bad("\"versions\" entries must be [block < block count, version]");
    }
    saved.versions.emplace_back(v[0].get<uint64_t>(), v[1].get<uint64_t>());
  }
  return saved;
}

absl::Status SimStateFile::Save(const SimSavedState& saved) const {
  Json versions = Json::array();
  for (const auto& [index, version] : saved.versions) {
    versions.push_back(Json::array({index, version}));
  }
  const Json j = {{"format", kFormat},
                  {"state", std::string(DeviceStateName(saved.state))},
                  {"size", saved.size},
                  {"origin_seed", saved.origin_seed},
                  {"versions", std::move(versions)}};
  const std::string tmp = path_.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump() << "\n";
    out.close();
    if (!out) {
      return absl::UnavailableError(
          absl::StrCat("cannot write ", tmp, ": ", std::strerror(errno)));
    }
  }
  if (std::rename(tmp.c_str(), path_.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot rename ", tmp, " to ",
                                               path_.string(), ": ",
                                               std::strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace vfiomig::sim
