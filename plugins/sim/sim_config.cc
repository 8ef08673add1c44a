#include "plugins/sim/sim_config.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "nlohmann/json.hpp"
#include "plugins/sim/sim_generator.h"
#include "xxhash.h"

namespace vfiomig::sim {
namespace {

using Json = nlohmann::json;

// Debian's Abseil keeps absl::string_view distinct from std::string_view.
absl::string_view Av(std::string_view s) { return {s.data(), s.size()}; }

constexpr size_t kMaxIdLength = 64;
constexpr size_t kMaxDescriptionLength = 256;
// A sim config lists a handful of devices; anything near this is a mistake.
constexpr size_t kMaxConfigFileBytes = 16 << 20;

constexpr absl::string_view kDeviceKeys[] = {"id",
                                             "features",
                                             "state_bytes",
                                             "precopy_bytes",
                                             "dirty_bytes_per_s",
                                             "arc_latency_ms",
                                             "drain_ms",
                                             "fail_arcs",
                                             "slow_arcs",
                                             "seed",
                                             "description"};

constexpr std::string_view kSizeHint =
    "must be a non-negative integer or a size string such as \"4GiB\"";

// Every error names the file and the key path.
class Errors {
 public:
  explicit Errors(std::string_view source) : source_(source) {}
  absl::Status At(std::string_view path, std::string_view reason) const {
    return absl::InvalidArgumentError(
        absl::StrCat(Av(source_), ": ", Av(path), ": ", Av(reason)));
  }
  absl::Status Whole(std::string_view reason) const {
    return absl::InvalidArgumentError(
        absl::StrCat(Av(source_), ": ", Av(reason)));
  }

 private:
  std::string_view source_;
};

// nlohmann keeps the last of two equal keys without a word; a duplicated
// "drain_ms" would silently win. This parser callback records the path of
// the first duplicate so that the file can be refused.
class DuplicateKeyFinder {
 public:
  bool operator()(int /*depth*/, Json::parse_event_t event, Json& parsed) {
    using E = Json::parse_event_t;
    switch (event) {
      case E::object_start:
      case E::array_start:
        stack_.push_back(Frame{.array = event == E::array_start,
                               .index = 0,
                               .key = {},
                               .keys = {}});
        break;
      case E::key: {
        Frame& top = stack_.back();
        top.key = parsed.get<std::string>();
        if (!top.keys.insert(top.key).second && !duplicate_) {
          duplicate_ = Path();
        }
        break;
      }
      case E::object_end:
      case E::array_end:
        stack_.pop_back();
        ElementDone();
        break;
      case E::value:
        ElementDone();
        break;
    }
    return true;
  }
  const std::optional<std::string>& duplicate() const { return duplicate_; }

 private:
  struct Frame {
    bool array = false;
    size_t index = 0;
    std::string key;
    std::set<std::string> keys;
  };
  void ElementDone() {
    if (!stack_.empty() && stack_.back().array) ++stack_.back().index;
  }
  std::string Path() const {
    std::string path;
    for (const Frame& f : stack_) {
      if (f.array) {
        absl::StrAppend(&path, "[", f.index, "]");
      } else {
        absl::StrAppend(&path, path.empty() ? "" : ".", f.key);
      }
    }
    return path;
  }
  std::vector<Frame> stack_;
  std::optional<std::string> duplicate_;
};

std::optional<uint64_t> AsUnsigned(const Json& v) {
  if (!v.is_number_integer()) return std::nullopt;  // floats too
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  int64_t i = v.get<int64_t>();
  if (i < 0) return std::nullopt;
  return static_cast<uint64_t>(i);
}

// "4GiB", "512 KiB", "100B", "1048576": binary units only, so that a size is
// never ambiguous.
std::optional<uint64_t> ParseSizeString(absl::string_view text) {
  struct Unit {
    absl::string_view suffix;
    int shift;
  };
  static constexpr Unit kUnits[] = {
      {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}, {"B", 0}};
  int shift = 0;
  for (const Unit& u : kUnits) {
    if (absl::ConsumeSuffix(&text, u.suffix)) {
      shift = u.shift;
      break;
    }
  }
  text = absl::StripAsciiWhitespace(text);
  if (text.empty() || text.size() > 20 ||
      !std::all_of(text.begin(), text.end(), absl::ascii_isdigit)) {
    return std::nullopt;
  }
  uint64_t n = 0;
  if (!absl::SimpleAtoi(text, &n)) return std::nullopt;
  if (shift > 0 && n > (UINT64_MAX >> shift)) return std::nullopt;
  return n << shift;
}

std::optional<uint64_t> AsSize(const Json& v) {
  if (v.is_string()) return ParseSizeString(v.get<std::string>());
  return AsUnsigned(v);
}

bool ValidIdChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' ||
         c == '_' || c == ':' || c == '-';
}

absl::StatusOr<std::string> ParseId(const Json& v, const std::string& key,
                                    const Errors& e) {
  if (!v.is_string()) return e.At(key, "must be a string");
  std::string id = v.get<std::string>();
  if (id.empty()) return e.At(key, "must not be empty");
  if (id.size() > kMaxIdLength) {
    return e.At(key, absl::StrCat("longer than ", kMaxIdLength, " characters"));
  }
  if (!absl::ascii_isalnum(static_cast<unsigned char>(id[0])) ||
      !std::all_of(id.begin(), id.end(), ValidIdChar)) {
    return e.At(key, absl::StrCat("'", absl::CEscape(id),
                                  "' must start with a letter or digit and "
                                  "use only letters, digits and . _ : -"));
  }
  return id;
}

absl::StatusOr<MigrationFeatures> ParseFeatures(const Json& v,
                                                const std::string& key,
                                                const Errors& e) {
  if (!v.is_array()) {
    return e.At(key, "must be a list of stop_copy, p2p, pre_copy");
  }
  static const std::map<std::string, uint32_t, std::less<>> kNames = {
      {"stop_copy", VFIO_MIGRATION_STOP_COPY},
      {"p2p", VFIO_MIGRATION_P2P},
      {"pre_copy", VFIO_MIGRATION_PRE_COPY}};
  uint32_t flags = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    std::string at = absl::StrCat(key, "[", i, "]");
    if (!v[i].is_string()) return e.At(at, "must be a string");
    std::string name = v[i].get<std::string>();
    auto it = kNames.find(name);
    if (it == kNames.end()) {
      return e.At(at, absl::StrCat("unknown feature '", absl::CEscape(name),
                                   "' (expected stop_copy, p2p or pre_copy)"));
    }
    if (flags & it->second) {
      return e.At(at, absl::StrCat("duplicate feature '", name, "'"));
    }
    flags |= it->second;
  }
  return MigrationFeatures(flags);
}

absl::StatusOr<absl::Duration> ParseMillis(const Json& v,
                                           const std::string& key,
                                           const Errors& e) {
  std::optional<uint64_t> ms = AsUnsigned(v);
  if (!ms) return e.At(key, "must be a non-negative integer");
  if (*ms > static_cast<uint64_t>(kMaxArcMillis)) {
    return e.At(key,
                absl::StrCat("must be at most ", kMaxArcMillis, " (24 h)"));
  }
  return absl::Milliseconds(static_cast<int64_t>(*ms));
}

absl::StatusOr<FailArc> ParseFailArc(const Json& v, const std::string& key,
                                     MigrationFeatures features,
                                     const Errors& e) {
  constexpr std::string_view kShape = "FROM>TO or FROM>TO:error";
  if (!v.is_string()) {
    return e.At(key, absl::StrCat("must be a string ", Av(kShape)));
  }
  std::string text = v.get<std::string>();
  absl::string_view rest = text;
  FailArc arc;
  if (size_t colon = rest.find(':'); colon != absl::string_view::npos) {
    if (rest.substr(colon + 1) != "error") {
      return e.At(key, absl::StrCat("'", absl::CEscape(text),
                                    "': the only suffix is ':error'"));
    }
    arc.to_error = true;
    rest = rest.substr(0, colon);
  }
  std::vector<absl::string_view> parts = absl::StrSplit(rest, '>');
  if (parts.size() != 2) {
    return e.At(
        key, absl::StrCat("'", absl::CEscape(text), "' is not ", Av(kShape)));
  }
  std::optional<DeviceState> states[2];
  for (int i = 0; i < 2; ++i) {
    absl::string_view name = absl::StripAsciiWhitespace(parts[i]);
    states[i] = ParseDeviceState(std::string_view(name.data(), name.size()));
    if (!states[i]) {
      return e.At(key, absl::StrCat("unknown state '", absl::CEscape(name),
                                    "' in '", absl::CEscape(text), "'"));
    }
  }
  arc.from = *states[0];
  arc.to = *states[1];
  // An arc the daemon can never ask for would make a fault-injection test
  // pass vacuously.
  if (!IsSingleArc(features, arc.from, arc.to)) {
    return e.At(key, absl::StrCat(ArcName(arc.from, arc.to),
                                  " is not a single kernel arc for features '",
                                  features.ToString(), "'"));
  }
  return arc;
}

absl::StatusOr<SimDeviceConfig> ParseDevice(const Json& j,
                                            const std::string& at,
                                            const Errors& e) {
  if (!j.is_object()) return e.At(at, "must be an object");
  for (const auto& [key, value] : j.items()) {
    if (std::find(std::begin(kDeviceKeys), std::end(kDeviceKeys), key) ==
        std::end(kDeviceKeys)) {
      return e.At(absl::StrCat(at, ".", key),
                  absl::StrCat("unknown key (known: ",
                               absl::StrJoin(kDeviceKeys, ", "), ")"));
    }
  }
  auto key = [&at](std::string_view k) { return absl::StrCat(at, ".", Av(k)); };
  SimDeviceConfig d;

  if (!j.contains("id")) return e.At(key("id"), "missing (required)");
  absl::StatusOr<std::string> id = ParseId(j["id"], key("id"), e);
  if (!id.ok()) return id.status();
  d.id = *std::move(id);

  if (!j.contains("features")) {
    return e.At(key("features"), "missing (required)");
  }
  absl::StatusOr<MigrationFeatures> features =
      ParseFeatures(j["features"], key("features"), e);
  if (!features.ok()) return features.status();
  d.features = *features;

  if (j.contains("state_bytes")) {
    std::optional<uint64_t> n = AsSize(j["state_bytes"]);
    if (!n) return e.At(key("state_bytes"), kSizeHint);
    if (*n == 0 || *n > kMaxStateBytes) {
      return e.At(key("state_bytes"), absl::StrCat("must be between 1 and ",
                                                   kMaxStateBytes, " (1 TiB)"));
    }
    d.state_bytes = *n;
  }

  d.precopy_bytes = d.features.pre_copy() ? d.state_bytes : 0;
  if (j.contains("precopy_bytes")) {
    std::optional<uint64_t> n = AsSize(j["precopy_bytes"]);
    if (!n) return e.At(key("precopy_bytes"), kSizeHint);
    if (*n > 0 && !d.features.pre_copy()) {
      return e.At(key("precopy_bytes"), "needs the pre_copy feature");
    }
    if (*n > d.state_bytes) {
      return e.At(key("precopy_bytes"),
                  absl::StrCat(*n, " exceeds state_bytes ", d.state_bytes));
    }
    d.precopy_bytes = *n;
  }

  if (j.contains("dirty_bytes_per_s")) {
    std::optional<uint64_t> n = AsSize(j["dirty_bytes_per_s"]);
    if (!n) return e.At(key("dirty_bytes_per_s"), kSizeHint);
    if (*n > kMaxStateBytes) {
      return e.At(key("dirty_bytes_per_s"),
                  absl::StrCat("must be at most ", kMaxStateBytes));
    }
    d.dirty_bytes_per_s = *n;
  }

  for (auto [name, field] : {std::pair{"arc_latency_ms", &d.arc_latency},
                             std::pair{"drain_ms", &d.drain}}) {
    if (!j.contains(name)) continue;
    absl::StatusOr<absl::Duration> ms = ParseMillis(j[name], key(name), e);
    if (!ms.ok()) return ms.status();
    *field = *ms;
  }

  if (j.contains("fail_arcs")) {
    const Json& arcs = j["fail_arcs"];
    if (!arcs.is_array()) {
      return e.At(key("fail_arcs"), "must be a list of \"FROM>TO\" strings");
    }
    for (size_t i = 0; i < arcs.size(); ++i) {
      std::string at_i = absl::StrCat(key("fail_arcs"), "[", i, "]");
      absl::StatusOr<FailArc> arc = ParseFailArc(arcs[i], at_i, d.features, e);
      if (!arc.ok()) return arc.status();
      for (const FailArc& seen : d.fail_arcs) {
        if (seen.from == arc->from && seen.to == arc->to) {
          return e.At(at_i, absl::StrCat("duplicate arc ",
                                         ArcName(arc->from, arc->to)));
        }
      }
      d.fail_arcs.push_back(*arc);
    }
  }

  if (j.contains("slow_arcs")) {
    const Json& arcs = j["slow_arcs"];
    if (!arcs.is_object()) {
      return e.At(key("slow_arcs"),
                  "must be an object of \"FROM>TO\": milliseconds");
    }
    for (const auto& [name, value] : arcs.items()) {
      std::string at_i = absl::StrCat(key("slow_arcs"), ".", name);
      absl::StatusOr<FailArc> arc =
          ParseFailArc(Json(name), at_i, d.features, e);
      if (!arc.ok()) return arc.status();
      if (arc->to_error) return e.At(at_i, "takes no ':error' suffix");
      absl::StatusOr<absl::Duration> ms = ParseMillis(value, at_i, e);
      if (!ms.ok()) return ms.status();
      d.slow_arcs.push_back(SlowArc{arc->from, arc->to, *ms});
    }
  }

  d.seed = DefaultSeed(d.id);
  if (j.contains("seed")) {
    std::optional<uint64_t> seed = AsUnsigned(j["seed"]);
    if (!seed) return e.At(key("seed"), "must be an unsigned 64-bit integer");
    d.seed = *seed;
  }

  if (j.contains("description")) {
    const Json& v = j["description"];
    if (!v.is_string()) return e.At(key("description"), "must be a string");
    d.description = v.get<std::string>();
    if (d.description.size() > kMaxDescriptionLength ||
        std::any_of(d.description.begin(), d.description.end(),
                    [](char c) { return absl::ascii_iscntrl(c); })) {
      return e.At(key("description"),
                  absl::StrCat("must be one line of at most ",
                               kMaxDescriptionLength, " characters"));
    }
  }
  return d;
}

absl::StatusOr<SimConfig> ParseDocument(const Json& root, const Errors& e) {
  if (!root.is_object()) {
    return e.Whole("must be a JSON object with a \"devices\" list");
  }
  for (const auto& [key, value] : root.items()) {
    if (key != "devices" && key != "persist_state") {
      return e.At(key, "unknown key (known: devices, persist_state)");
    }
  }
  if (!root.contains("devices")) return e.At("devices", "missing (required)");
  const Json& devices = root["devices"];
  if (!devices.is_array()) return e.At("devices", "must be a list");
  SimConfig config;
  if (root.contains("persist_state")) {
    if (!root["persist_state"].is_boolean()) {
      return e.At("persist_state", "must be true or false");
    }
    config.persist_state = root["persist_state"].get<bool>();
  }
  std::map<std::string, size_t, std::less<>> seen;
  for (size_t i = 0; i < devices.size(); ++i) {
    std::string at = absl::StrCat("devices[", i, "]");
    absl::StatusOr<SimDeviceConfig> device = ParseDevice(devices[i], at, e);
    if (!device.ok()) return device.status();
    auto [it, inserted] = seen.emplace(device->id, i);
    if (!inserted) {
      return e.At(absl::StrCat(at, ".id"),
                  absl::StrCat("duplicate id '", device->id, "' (also devices[",
                               it->second, "])"));
    }
    config.devices.push_back(*std::move(device));
  }
  return config;
}

}  // namespace

uint64_t DefaultSeed(std::string_view id) {
  return XXH3_64bits(id.data(), id.size());
}

std::string FailArcName(const FailArc& arc) {
  return absl::StrCat(ArcName(arc.from, arc.to), arc.to_error ? ":error" : "");
}

absl::StatusOr<SimConfig> ParseSimConfig(std::string_view json,
                                         std::string_view source_name) {
  Errors e(source_name);
  DuplicateKeyFinder duplicates;
  Json root;
  // nlohmann reports syntax errors only by exception; they stop here.
  try {
    root = Json::parse(json.begin(), json.end(), std::ref(duplicates));
  } catch (const Json::parse_error& err) {
    std::string_view what = err.what();
    // "[json.exception.parse_error.101] parse error at line 3, column 5: ..."
    if (size_t at = what.find(" at line "); at != std::string_view::npos) {
      what.remove_prefix(at + 4);
    }
    return e.Whole(absl::StrCat("invalid JSON: ", Av(what)));
  } catch (const std::exception& err) {
    return e.Whole(absl::StrCat("invalid JSON: ", err.what()));
  }
  if (duplicates.duplicate()) {
    return e.At(*duplicates.duplicate(), "duplicate key");
  }
  try {
    return ParseDocument(root, e);
  } catch (const std::exception& err) {
    // Every access above is type-checked first; this is a safety net.
    return absl::InternalError(
        absl::StrCat(Av(source_name), ": unexpected: ", err.what()));
  }
}

absl::StatusOr<SimConfig> LoadSimConfig(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"),
                                             &std::fclose);
  if (!file) {
    int err = errno;
    std::string msg = absl::StrCat(path, ": cannot open: ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(msg);
    if (err == EACCES) return absl::PermissionDeniedError(msg);
    return absl::UnavailableError(msg);
  }
  std::string text;
  char buf[64 * 1024];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), file.get())) > 0) {
    text.append(buf, n);
    if (text.size() > kMaxConfigFileBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": larger than ", kMaxConfigFileBytes, " bytes"));
    }
  }
  if (std::ferror(file.get())) {
    return absl::UnavailableError(
        absl::StrCat(path, ": read failed: ", std::strerror(errno)));
  }
  return ParseSimConfig(text, path);
}

}  // namespace vfiomig::sim
