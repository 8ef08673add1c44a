#include "client/output.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "daemon/core/fsm.h"

namespace vfiomig::cli {

Table::Table(std::vector<std::string> headers) {
  rows_.push_back(std::move(headers));
}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(std::max(cells.size(), rows_.front().size()));
  rows_.push_back(std::move(cells));
}

void Table::Render(std::ostream& out) const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i > 0) line += "  ";
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size(), ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
  }
}

std::string HumanBytes(uint64_t bytes) {
  static constexpr std::array<const char*, 7> kUnits = {
      "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  double value = static_cast<double>(bytes);
  size_t unit = 0;
  while (value >= 1024 && unit + 1 < kUnits.size()) {
    value /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

std::string StateName(v1::DeviceState state) {
  // Wire values 1..7 equal the kernel's; the kernel's ERROR (0) moved to 8
  // because proto3 reserves 0 for "unset".
  const int value = static_cast<int>(state);
  if (state == v1::DEVICE_STATE_ERROR) {
    return std::string(DeviceStateName(DeviceState::ERROR));
  }
  if (state == v1::DEVICE_STATE_UNSPECIFIED) return "UNSPECIFIED";
  if (std::optional<DeviceState> kernel = DeviceStateFromKernel(value);
      kernel.has_value() && value > 0) {
    return std::string(DeviceStateName(*kernel));
  }
  return absl::StrCat("UNKNOWN(", value, ")");
}

std::string DeviceStateLabel(const v1::Device& device) {
  if (device.state() == v1::DEVICE_STATE_UNSPECIFIED &&
      !device.state_name().empty()) {
    return device.state_name();
  }
  return StateName(device.state());
}

std::vector<std::string> FeatureNames(const v1::Device& device) {
  // The MigrationFeature values are the kernel's flag bits, so both fields
  // fold into one flags word; a daemon that fills only one of them still
  // shows correctly.
  uint32_t flags = device.migration_flags();
  for (int feature : device.features()) flags |= static_cast<uint32_t>(feature);
  std::vector<std::string> names = MigrationFeatures(flags).Names();
  if (uint32_t unknown = flags & ~kKnownMigrationFlags) {
    names.push_back(absl::StrCat("0x", absl::Hex(unknown)));
  }
  return names;
}

void PrintJson(std::ostream& out, const Json& json) {
  out << json.dump(2, ' ', /*ensure_ascii=*/false,
                   nlohmann::json::error_handler_t::replace)
      << '\n';
}

}  // namespace vfiomig::cli
