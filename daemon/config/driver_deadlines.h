// The [drivers.NAME] tables of the config file: per kernel driver, the
// deadlines that replace the daemon's defaults for that driver's devices.
//
//   [drivers.mlx5_vfio_pci]
//   drain_timeout_ms = 60000   # this NIC drains slowly under load
//   arc_timeout_ms = 20000
//
// Each table needs at least one key; values are in 1..kMaxArcTimeoutMs.
#ifndef VFIOMIG_DAEMON_CONFIG_DRIVER_DEADLINES_H_
#define VFIOMIG_DAEMON_CONFIG_DRIVER_DEADLINES_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/config/daemon_config.h"
#include "toml++/toml.h"

namespace vfiomig {

// Reads config[`table_name`] (absent: an empty map). InvalidArgument
// "FILE:LINE:COLUMN: KEY: reason" for a malformed table, an unknown key or
// a value out of range.
absl::StatusOr<std::map<std::string, DriverDeadlines>> ParseDriverDeadlines(
    const toml::table& config, const std::string& table_name,
    const std::string& file);

// The keys a driver table may have.
std::vector<std::string> DriverDeadlineKeys();

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_CONFIG_DRIVER_DEADLINES_H_
