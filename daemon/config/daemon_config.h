// DaemonConfig: every setting of vfio-migd, from its command line and its
// config file (/etc/vfio-migd/vfio-migd.toml by default, TOML).
//
// LoadDaemonConfig parses the command line, reads the config file, and
// checks every value and the settings that depend on each other, before
// the daemon touches anything. A flag given on the command line overrides
// the file's key. A wrong key or value is refused with the file, line,
// column and reason. What it returns is valid: the daemon converts it into
// its components' options without checking again.
//
// ADDING A SETTING (a new daemon flag): add its field to DaemonConfig below
// and one `table.Add(...)` line to DeclareSettings() in daemon_config.cc,
// which gives the flag, its config key, its help and its checks in one
// place; then add the key, commented out, to deploy/vfio-migd.toml (a test
// checks that every key is there). Cross-setting checks go to
// CheckDaemonConfig().
#ifndef VFIOMIG_DAEMON_CONFIG_DAEMON_CONFIG_H_
#define VFIOMIG_DAEMON_CONFIG_DAEMON_CONFIG_H_

#include <cstdint>
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vfiomig {

inline constexpr char kDefaultConfigPath[] = "/etc/vfio-migd/vfio-migd.toml";
inline constexpr char kDefaultListen[] = "unix:/run/vfio-migd/vfio-migd.sock";
// StateDir::kDefaultPath (daemon/store/state_dir.h).
inline constexpr char kDefaultStateDir[] = "/var/lib/vfio-migd";

// [drivers.NAME] in the config file: deadlines for the devices bound to
// the kernel driver NAME (as the backend reports it, e.g. mlx5_vfio_pci),
// replacing the daemon's defaults. A migration that sets its own deadlines
// still overrides these.
struct DriverDeadlines {
  std::optional<uint32_t> drain_timeout_ms;
  std::optional<uint32_t> arc_timeout_ms;
};

struct DaemonConfig {
  // The file that was read; empty when none was (no --config and no file
  // at the default path).
  std::string config_file;

  // [server]
  std::vector<std::string> listen = {kDefaultListen};
  // Device hand-off side channel; empty: beside the first unix --listen;
  // "none": off.
  std::string handoff_socket;
  // Group of the unix sockets (mode 0660); empty: the daemon's own.
  std::string socket_group;

  // [tls] Mutual TLS for TCP: all three files, or none.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  // Plaintext, unauthenticated TCP and unix-abstract sockets allowed.
  bool insecure = false;

  // [journal]
  std::string state_dir = kDefaultStateDir;

  // [log]
  std::string log_level = "info";
  // auto: the journal when stderr is connected to it (under systemd),
  // stderr otherwise; journal; stderr.
  std::string log_target = "auto";

  // [metrics]
  // HOST:PORT of the Prometheus /metrics HTTP listener; empty: none.
  std::string metrics_listen;

  // [backend]
  std::string backend = "vfio";
  std::string sim_config;
  std::vector<std::string> devices;

  // [migration]
  // Used when a StartMigration request leaves its policy unspecified.
  std::string policy = "sla";
  uint32_t drain_timeout_ms = 5000;
  uint32_t arc_timeout_ms = 10000;
  uint64_t precopy_threshold_bytes = uint64_t{4} << 20;
  uint32_t precopy_max_rounds = 8;
  std::string switchover = "none";
  uint32_t switchover_timeout_ms = 30000;
  uint32_t peer_timeout_ms = 10000;
  // State streams on plain TCP data connections beside the peer link
  // (daemon/datachannel/), where the peer link is plaintext too.
  bool data_channel = true;

  // [drivers.NAME] (config file only), by driver name.
  std::map<std::string, DriverDeadlines> driver_deadlines;
};

// What LoadDaemonConfig decided.
struct LoadedConfig {
  // Set when the process must exit now with this code: --help and
  // --version (0, printed to `out`) and every refused flag, file or value
  // (printed to `err`).
  std::optional<int> exit_code;
  DaemonConfig config;
};

// `argv[0]` is the program name. Never throws.
LoadedConfig LoadDaemonConfig(int argc, const char* const* argv,
                              std::ostream& out, std::ostream& err);

// The settings that depend on each other, and those no single flag check
// covers. InvalidArgument naming the flag.
absl::Status CheckDaemonConfig(const DaemonConfig& config);

// Every config key with its TOML type name ("string", "integer",
// "boolean", "array") in declaration order; "drivers.NAME.*" included.
std::vector<std::pair<std::string, std::string>> DaemonConfigKeys();

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_CONFIG_DAEMON_CONFIG_H_
