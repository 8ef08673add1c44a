#include "daemon/config/driver_deadlines.h"

#include <cstdint>
#include <optional>

#include "absl/strings/str_cat.h"
#include "daemon/migration/migration_manager.h"

namespace vfiomig {
namespace {

constexpr char kDrainKey[] = "drain_timeout_ms";
constexpr char kArcKey[] = "arc_timeout_ms";

absl::Status Refuse(const std::string& file, const toml::source_region& where,
                    const std::string& key, const std::string& what) {
  const toml::source_position& at = where.begin;
  return absl::InvalidArgumentError(
      absl::StrCat(file, ":", at.line, ":", at.column, ": ", key, ": ", what));
}

absl::StatusOr<uint32_t> Milliseconds(const toml::node& node,
                                      const std::string& key,
                                      const std::string& file) {
  const auto* value = node.as_integer();
  if (value == nullptr) {
    return Refuse(file, node.source(), key,
                  "must be an integer (milliseconds)");
  }
  if (value->get() < 1 || value->get() > int64_t{kMaxArcTimeoutMs}) {
    return Refuse(file, node.source(), key,
                  absl::StrCat("Value ", value->get(), " not in range 1 to ",
                               kMaxArcTimeoutMs));
  }
  return static_cast<uint32_t>(value->get());
}

}  // namespace

std::vector<std::string> DriverDeadlineKeys() { return {kDrainKey, kArcKey}; }

absl::StatusOr<std::map<std::string, DriverDeadlines>> ParseDriverDeadlines(
    const toml::table& config, const std::string& table_name,
    const std::string& file) {
  std::map<std::string, DriverDeadlines> drivers;
  const toml::node* node = config.get(table_name);
  if (node == nullptr) return drivers;
  const toml::table* table = node->as_table();
  if (table == nullptr) {
    return Refuse(file, node->source(), table_name,
                  absl::StrCat("must be a table of driver tables ([",
                               table_name, ".DRIVER])"));
  }
  for (const auto& [name, driver_node] : *table) {
    const std::string driver(name.str());
    const std::string prefix = absl::StrCat(table_name, ".", driver);
    const toml::table* entries = driver_node.as_table();
    if (entries == nullptr) {
      return Refuse(
          file, name.source(), prefix,
          absl::StrCat("must be a table (", kDrainKey, ", ", kArcKey, ")"));
    }
    if (driver.empty()) {
      return Refuse(file, name.source(), prefix, "needs a driver name");
    }
    if (entries->empty()) {
      return Refuse(
          file, name.source(), prefix,
          absl::StrCat("sets nothing (", kDrainKey, ", ", kArcKey, ")"));
    }
    DriverDeadlines deadlines;
    for (const auto& [key, value] : *entries) {
      const std::string full =
          absl::StrCat(prefix, ".", std::string(key.str()));
      std::optional<uint32_t>* field = nullptr;
      if (key == kDrainKey) {
        field = &deadlines.drain_timeout_ms;
      } else if (key == kArcKey) {
        field = &deadlines.arc_timeout_ms;
      } else {
        return Refuse(file, key.source(), full,
                      absl::StrCat("unknown key (known here: ", kDrainKey, ", ",
                                   kArcKey, ")"));
      }
      absl::StatusOr<uint32_t> ms = Milliseconds(value, full, file);
      if (!ms.ok()) return ms.status();
      *field = *ms;
    }
    drivers.emplace(driver, deadlines);
  }
  return drivers;
}

}  // namespace vfiomig
