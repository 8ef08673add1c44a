#include "daemon/config/daemon_config.h"

#include <filesystem>
#include <ostream>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "daemon/config/driver_deadlines.h"
#include "daemon/config/setting_table.h"
#include "daemon/control_service.h"
#include "daemon/listen_address.h"
#include "daemon/metrics/metrics_address.h"
#include "daemon/migration/migration_manager.h"
#include "daemon/migration/switchover.h"
#include "plugins/registry.h"

#ifndef VFIOMIG_VERSION
#define VFIOMIG_VERSION "unknown"
#endif

namespace vfiomig {
namespace {

// Tables of the config file that are not flags.
constexpr char kDriversTable[] = "drivers";

// A CLI11 check from a function that returns an error message, or "" for
// a good value: the same check then serves the flag and the config key.
CLI::Validator Check(std::string description,
                     std::function<absl::Status(const std::string&)> check) {
  return CLI::Validator(
      [check = std::move(check)](std::string& value) -> std::string {
        absl::Status status = check(value);
        return status.ok() ? std::string() : std::string(status.message());
      },
      std::move(description));
}

// THE LIST OF SETTINGS. Each line: flag, config key ("table.key"), the
// field, help; then its checks. Keys are grouped by table: server, tls,
// journal, log, backend, migration (and drivers, parsed in
// driver_deadlines.cc). Keep deploy/vfio-migd.toml in step.
void DeclareSettings(SettingTable& table, DaemonConfig& c) {
  // [server]
  table
      .Add("--listen", "server.listen", c.listen,
           "gRPC listen target, repeatable: unix:/path, host:port (mutual "
           "TLS: needs --tls-*, or --insecure) or unix-abstract:name (needs "
           "--insecure)")
      ->check(Check("TARGET",
                    [](const std::string& target) {
                      return ParseListenAddress(target).status();
                    }))
      ->capture_default_str();
  table.Add("--handoff-socket", "server.handoff_socket", c.handoff_socket,
            "Unix socket on which local VMMs (and `vfio-migctl open`) take "
            "device fds (root, this daemon's user and --socket-group). "
            "Default: beside "
            "the first unix --listen socket, '.sock' replaced by "
            "'-handoff.sock'; 'none' disables it");
  table.Add("--socket-group", "server.socket_group", c.socket_group,
            "Group of the unix control and hand-off sockets (mode 0660): its "
            "members may use the control API and take device fds. Default: "
            "the daemon's group");

  // [tls]
  table
      .Add("--tls-ca", "tls.ca", c.tls_ca,
           "PEM CA certificate(s): TCP peers and clients must present a "
           "certificate it signed (mutual TLS on TCP listen targets and to "
           "TCP destinations)")
      ->check(CLI::ExistingFile);
  table
      .Add("--tls-cert", "tls.cert", c.tls_cert,
           "PEM certificate of this host, signed by --tls-ca; it must name "
           "the host peers dial (subjectAltName)")
      ->check(CLI::ExistingFile);
  table
      .Add("--tls-key", "tls.key", c.tls_key,
           "PEM private key of --tls-cert (not readable by others)")
      ->check(CLI::ExistingFile);
  table.Add("--insecure", "tls.insecure", c.insecure,
            "Allow plaintext, unauthenticated TCP (listen targets and "
            "destinations) and unix-abstract sockets: anyone who reaches "
            "them can drive the daemon and feed device state. Not with "
            "--tls-*");

  // [journal]
  table
      .Add("--state-dir", "journal.state_dir", c.state_dir,
           "Directory of the daemon's durable state: the migration journal "
           "(crash recovery, history). Created 0700 if missing; one daemon "
           "per directory")
      ->capture_default_str();

  // [log]
  table.Add("--log-level", "log.level", c.log_level, "Log level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  table
      .Add("--log-target", "log.target", c.log_target,
           "Where the log goes: auto (the systemd journal when stderr is "
           "connected to it, as under systemd; stderr otherwise), journal "
           "or stderr")
      ->check(CLI::IsMember({"auto", "journal", "stderr"}))
      ->capture_default_str();

  // [metrics]
  table
      .Add("--metrics-listen", "metrics.listen", c.metrics_listen,
           "Serve Prometheus metrics over HTTP at http://HOST:PORT/metrics "
           "(plain HTTP: bind a management address; port 0 picks a free "
           "one); empty: no listener")
      ->check(Check("HOST:PORT", [](const std::string& address) {
        return address.empty() ? absl::OkStatus()
                               : ParseMetricsAddress(address).status();
      }));

  // [backend]
  table
      .Add("--backend", "backend.name", c.backend,
           "Device backend. vfio (default) manages the host's real VFIO "
           "devices; sim simulates devices from --sim-config for tests and "
           "demos. The default is vfio so that a production host never "
           "serves simulated devices by accident.")
      ->check(CLI::IsMember(BackendRegistry::Names()))
      ->capture_default_str();
  table
      .Add("--sim-config", "backend.sim_config", c.sim_config,
           "JSON device config for --backend sim (e.g. deploy/sim/source.json)")
      ->check(CLI::ExistingFile);
  table
      .Add("--devices", "backend.devices", c.devices,
           "Manage only these device ids (comma-separated); every id must "
           "exist")
      ->check(Check("ID", ValidateDeviceId))
      ->delimiter(',');

  // [migration]
  table
      .Add("--policy", "migration.policy", c.policy,
           "Deadline policy of a migration whose request names none: sla (a "
           "late or failed arc rolls the group back) or mandatory (an "
           "evacuation: deadlines only warn)")
      ->check(CLI::IsMember({"sla", "mandatory"}))
      ->capture_default_str();
  table
      .Add("--drain-timeout-ms", "migration.drain_timeout_ms",
           c.drain_timeout_ms,
           "Default deadline of arcs that drain the device (into "
           "RUNNING_P2P, PRE_COPY_P2P, STOP); a migration may override it")
      ->check(CLI::Range(uint32_t{1}, kMaxArcTimeoutMs))
      ->capture_default_str();
  table
      .Add("--arc-timeout-ms", "migration.arc_timeout_ms", c.arc_timeout_ms,
           "Default deadline of every other arc")
      ->check(CLI::Range(uint32_t{1}, kMaxArcTimeoutMs))
      ->capture_default_str();
  table
      .Add("--precopy-threshold-bytes", "migration.precopy_threshold_bytes",
           c.precopy_threshold_bytes,
           "Pre-copy stops iterating once at most this many bytes remain, "
           "summed over the group's PRE_COPY devices")
      ->capture_default_str();
  table
      .Add("--precopy-max-rounds", "migration.precopy_max_rounds",
           c.precopy_max_rounds,
           "Most pre-copy rounds per migration (the first, which sends the "
           "initial data, counts)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  table
      .Add("--switchover", "migration.switchover", c.switchover,
           "What pauses the workload before the devices stop, when a "
           "migration names none: none (the caller does, or there is "
           "nothing to pause), qmp (stop/cont over the VM's QMP socket, "
           "given per migration), external (wait for the control plane's "
           "Switchover call)")
      ->check(CLI::IsMember(SwitchoverRegistry::Names()))
      ->capture_default_str();
  table
      .Add("--switchover-timeout-ms", "migration.switchover_timeout_ms",
           c.switchover_timeout_ms,
           "How long a switchover may take when a migration does not say: "
           "external waits this long for Switchover before it rolls back; "
           "qmp bounds each QMP exchange")
      ->check(CLI::Range(uint32_t{1}, kMaxArcTimeoutMs))
      ->capture_default_str();
  table
      .Add("--peer-timeout-ms", "migration.peer_timeout_ms", c.peer_timeout_ms,
           "Deadline of the Prepare, Commit and Abort calls to a destination "
           "daemon (Prepare and Commit add the deadlines of the destination "
           "arcs they run)")
      ->check(CLI::Range(uint32_t{100}, kMaxArcTimeoutMs))
      ->capture_default_str();
  table
      .Add("--data-channel", "migration.data_channel", c.data_channel,
           "Carry state streams on plain TCP connections beside the peer "
           "API (one per device, on an ephemeral port of each TCP --listen "
           "host, authenticated by a per-migration token but not "
           "encrypted) instead of StreamState calls: far less CPU per GiB. "
           "Only while the peer link is plaintext too; a source falls back "
           "to StreamState when it cannot reach them")
      ->capture_default_str();
}

std::string_view TomlKindName(TomlKind kind) {
  switch (kind) {
    case TomlKind::kString:
      return "string";
    case TomlKind::kInteger:
      return "integer";
    case TomlKind::kBoolean:
      return "boolean";
    case TomlKind::kStringArray:
      return "array";
  }
  return "?";
}

// Parses `path` and applies it; errors name the file and line.
absl::Status ApplyConfigFile(const std::string& path, SettingTable& table,
                             DaemonConfig& config) {
  toml::table parsed;
  try {
    parsed = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const toml::source_position& at = e.source().begin;
    if (at.line == 0) {
      // Not a syntax error: the file could not be read.
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": ", std::string(e.description())));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(path, ":", at.line, ":", at.column, ": ",
                     std::string(e.description())));
  }
  if (absl::Status s = table.ApplyConfig(parsed, path, {kDriversTable});
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::map<std::string, DriverDeadlines>> drivers =
      ParseDriverDeadlines(parsed, kDriversTable, path);
  if (!drivers.ok()) return drivers.status();
  config.driver_deadlines = *std::move(drivers);
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckDaemonConfig(const DaemonConfig& config) {
  if (config.listen.empty()) {
    return absl::InvalidArgumentError(
        "--listen (server.listen) needs at least one target");
  }
  if (config.backend == "sim" && config.sim_config.empty()) {
    return absl::InvalidArgumentError(
        "--backend sim needs --sim-config FILE (backend.sim_config; see "
        "deploy/sim/)");
  }
  if (config.backend != "sim" && !config.sim_config.empty()) {
    return absl::InvalidArgumentError(
        "--sim-config (backend.sim_config) is only used with --backend sim");
  }
  return absl::OkStatus();
}

LoadedConfig LoadDaemonConfig(int argc, const char* const* argv,
                              std::ostream& out, std::ostream& err) {
  LoadedConfig loaded;
  DaemonConfig& config = loaded.config;
  CLI::App app{
      "vfio-migd: live-migrates groups of VFIO devices between hosts.\n"
      "Serves vfiomig.v1.ControlService, vfiomig.v1.PeerService (other "
      "daemons migrate devices into this one through it), "
      "grpc.health.v1.Health and server reflection on every --listen "
      "target; SIGTERM/SIGINT roll back outgoing migrations and stop it "
      "cleanly. Settings come from the command line and from the config "
      "file; a flag overrides the file's key (shown as [config: KEY]).",
      "vfio-migd"};
  app.set_version_flag("--version",
                       std::string("vfio-migd ") + VFIOMIG_VERSION);
  std::string config_path;
  app.add_option("--config", config_path,
                 absl::StrCat("TOML config file (default ", kDefaultConfigPath,
                              ", read when it exists)"));
  SettingTable table(app);
  DeclareSettings(table, config);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    loaded.exit_code = app.exit(e, out, err);
    return loaded;
  }

  if (config_path.empty()) {
    std::error_code ec;
    if (std::filesystem::exists(kDefaultConfigPath, ec)) {
      config_path = kDefaultConfigPath;
    }
  }
  absl::Status status = absl::OkStatus();
  if (!config_path.empty()) {
    status = ApplyConfigFile(config_path, table, config);
    config.config_file = config_path;
  }
  if (status.ok()) status = CheckDaemonConfig(config);
  if (!status.ok()) {
    err << "vfio-migd: " << status.message() << "\n";
    loaded.exit_code = 2;
  }
  return loaded;
}

std::vector<std::pair<std::string, std::string>> DaemonConfigKeys() {
  CLI::App app;
  DaemonConfig config;
  SettingTable table(app);
  DeclareSettings(table, config);
  std::vector<std::pair<std::string, std::string>> keys;
  for (const auto& [key, kind] : table.Keys()) {
    keys.emplace_back(key, std::string(TomlKindName(kind)));
  }
  for (const std::string& key : DriverDeadlineKeys()) {
    keys.emplace_back(absl::StrCat(kDriversTable, ".NAME.", key), "integer");
  }
  return keys;
}

}  // namespace vfiomig
