// vfio-migd: flags, logging, signals. Everything else lives in the library.
#include <pthread.h>
#include <signal.h>

#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "daemon/control_service.h"
#include "daemon/crash_point.h"
#include "daemon/domains/domain_admission.h"
#include "daemon/handoff/handoff_server.h"
#include "daemon/handoff/protocol.h"
#include "daemon/inventory.h"
#include "daemon/listen_address.h"
#include "daemon/logging.h"
#include "daemon/malloc_tuning.h"
#include "daemon/migration/device_leases.h"
#include "daemon/migration/migration_manager.h"
#include "daemon/migration/switchover.h"
#include "daemon/peer_service.h"
#include "daemon/server.h"
#include "daemon/socket_permissions.h"
#include "daemon/store/journal.h"
#include "daemon/store/state_dir.h"
#include "daemon/transport_security.h"
#include "plugins/registry.h"
#include "spdlog/spdlog.h"

#ifndef VFIOMIG_VERSION
#define VFIOMIG_VERSION "unknown"
#endif

namespace vfiomig {
namespace {

constexpr char kDefaultListen[] = "unix:/run/vfio-migd/vfio-migd.sock";
// How long a call still in flight at SIGTERM may take to finish, once the
// outgoing migrations have rolled back (their watchers have then seen the
// final event). Other calls are short, so this bounds the exit time only
// when one hangs; idle client connections do not wait for it.
constexpr absl::Duration kShutdownGrace = absl::Seconds(5);

struct Flags {
  std::vector<std::string> listen = {kDefaultListen};
  std::string backend = "vfio";
  std::string sim_config;
  std::vector<std::string> devices;
  std::string log_level = "info";
  std::string state_dir = StateDir::kDefaultPath;
  // Migrations.
  uint32_t drain_timeout_ms = 5000;
  uint32_t arc_timeout_ms = 10000;
  uint64_t precopy_threshold_bytes = uint64_t{4} << 20;
  uint32_t precopy_max_rounds = 8;
  std::string switchover = "none";
  uint32_t switchover_timeout_ms = 30000;
  uint32_t peer_timeout_ms = 10000;
  // Device hand-off side channel; empty: beside the first unix --listen.
  std::string handoff_socket;
  // Access control.
  TlsFiles tls;
  bool insecure = false;
  std::string socket_group;
};

void AddFlags(CLI::App& app, Flags& flags) {
  app.set_version_flag("--version",
                       std::string("vfio-migd ") + VFIOMIG_VERSION);
  app.add_option("--listen", flags.listen,
                 "gRPC listen target, repeatable: unix:/path, host:port "
                 "(mutual TLS: needs --tls-*, or --insecure) or "
                 "unix-abstract:name (needs --insecure)")
      ->capture_default_str();
  app.add_option("--backend", flags.backend,
                 "Device backend. vfio (default) manages the host's real "
                 "VFIO devices; sim simulates devices from --sim-config for "
                 "tests and demos. The default is vfio so that a production "
                 "host never serves simulated devices by accident.")
      ->check(CLI::IsMember(BackendRegistry::Names()))
      ->capture_default_str();
  app.add_option("--sim-config", flags.sim_config,
                 "JSON device config for --backend sim "
                 "(e.g. deploy/sim/source.json)")
      ->check(CLI::ExistingFile);
  app.add_option("--devices", flags.devices,
                 "Manage only these device ids (comma-separated); every id "
                 "must exist")
      ->delimiter(',');
  app.add_option("--handoff-socket", flags.handoff_socket,
                 "Unix socket on which local VMMs (and `vfio-migctl open`) "
                 "take device fds (root and this daemon's user only). "
                 "Default: beside the first unix --listen socket, '.sock' "
                 "replaced by '-handoff.sock'; 'none' disables it");
  app.add_option("--log-level", flags.log_level, "Log level")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
      ->capture_default_str();
  app.add_option("--state-dir", flags.state_dir,
                 "Directory of the daemon's durable state: the migration "
                 "journal (crash recovery, history). Created 0700 if "
                 "missing; one daemon per directory")
      ->capture_default_str();

  app.add_option("--drain-timeout-ms", flags.drain_timeout_ms,
                 "Default deadline of arcs that drain the device (into "
                 "RUNNING_P2P, PRE_COPY_P2P, STOP); a migration may override "
                 "it")
      ->check(CLI::Range(uint32_t{1}, kMaxArcTimeoutMs))
      ->capture_default_str();
  app.add_option("--arc-timeout-ms", flags.arc_timeout_ms,
                 "Default deadline of every other arc")
      ->check(CLI::Range(uint32_t{1}, kMaxArcTimeoutMs))
      ->capture_default_str();
  app.add_option("--precopy-threshold-bytes", flags.precopy_threshold_bytes,
                 "Pre-copy stops iterating once at most this many bytes "
                 "remain, summed over the group's PRE_COPY devices")
      ->capture_default_str();
  app.add_option("--precopy-max-rounds", flags.precopy_max_rounds,
                 "Most pre-copy rounds per migration (the first, which "
                 "sends the initial data, counts)")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--switchover", flags.switchover,
                 "What pauses the workload before the devices stop, when a "
                 "migration names none: none (the caller does, or there is "
                 "nothing to pause), qmp (stop/cont over the VM's QMP "
                 "socket, given per migration), external (wait for the "
                 "control plane's Switchover call)")
      ->check(CLI::IsMember(SwitchoverRegistry::Names()))
      ->capture_default_str();
  app.add_option("--switchover-timeout-ms", flags.switchover_timeout_ms,
                 "How long a switchover may take when a migration does not "
                 "say: external waits this long for Switchover before it "
                 "rolls back; qmp bounds each QMP exchange")
      ->check(CLI::Range(uint32_t{1}, kMaxArcTimeoutMs))
      ->capture_default_str();
  app.add_option("--peer-timeout-ms", flags.peer_timeout_ms,
                 "Deadline of the Prepare, Commit and Abort calls to a "
                 "destination daemon (Prepare and Commit add the deadlines "
                 "of the destination arcs they run)")
      ->check(CLI::Range(uint32_t{100}, kMaxArcTimeoutMs))
      ->capture_default_str();

  app.add_option("--tls-ca", flags.tls.ca,
                 "PEM CA certificate(s): TCP peers and clients must present "
                 "a certificate it signed (mutual TLS on TCP listen targets "
                 "and to TCP destinations)")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-cert", flags.tls.cert,
                 "PEM certificate of this host, signed by --tls-ca; it must "
                 "name the host peers dial (subjectAltName)")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", flags.tls.key,
                 "PEM private key of --tls-cert (not readable by others)")
      ->check(CLI::ExistingFile);
  app.add_flag("--insecure", flags.insecure,
               "Allow plaintext, unauthenticated TCP (listen targets and "
               "destinations) and unix-abstract sockets: anyone who reaches "
               "them can drive the daemon and feed device state. Not with "
               "--tls-*");
  app.add_option("--socket-group", flags.socket_group,
                 "Group of the unix control socket (mode 0660): its members "
                 "may use the control API. Default: the daemon's group");
}

// Settings that depend on each other, checked before anything starts.
absl::Status CheckFlags(const Flags& flags) {
  if (flags.backend == "sim" && flags.sim_config.empty()) {
    return absl::InvalidArgumentError(
        "--backend sim needs --sim-config FILE (see deploy/sim/)");
  }
  if (flags.backend != "sim" && !flags.sim_config.empty()) {
    return absl::InvalidArgumentError(
        "--sim-config is only used with --backend sim");
  }
  // Malformed targets fail before any device is touched.
  for (const std::string& target : flags.listen) {
    if (absl::Status status = ParseListenAddress(target).status();
        !status.ok()) {
      return status;
    }
  }
  for (const std::string& id : flags.devices) {
    if (absl::Status status = ValidateDeviceId(id); !status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--devices: ", status.message()));
    }
  }
  return absl::OkStatus();
}

// Finished migrations of earlier runs, for ListMigrations and
// GetMigration; then crash recovery of the unfinished ones.
absl::Status LoadJournal(Journal& journal, const MigrationOptions& source,
                         const DestinationOptions& destination,
                         MigrationManager& migrations,
                         DestinationRegistry& incoming) {
  absl::StatusOr<std::vector<JournalEntry>> outgoing =
      journal.History(JournalRole::kSource, source.history_limit);
  if (!outgoing.ok()) return outgoing.status();
  absl::StatusOr<std::vector<JournalEntry>> received =
      journal.History(JournalRole::kDestination, destination.history_limit);
  if (!received.ok()) return received.status();
  std::vector<v1::Migration> records;
  for (JournalEntry& e : *outgoing) records.push_back(std::move(e.record));
  migrations.LoadHistory(std::move(records));
  records.clear();
  for (JournalEntry& e : *received) records.push_back(std::move(e.record));
  incoming.LoadHistory(std::move(records));
  // Crash recovery (daemon/migration/PROTOCOL.md): migrations this daemon
  // was in the middle of when it died. They continue on their own threads;
  // the destination side's are in place before the peer API serves, so a
  // source's Commit or Abort finds them.
  absl::StatusOr<std::vector<JournalEntry>> unfinished = journal.Unfinished();
  if (!unfinished.ok()) return unfinished.status();
  for (const JournalEntry& e : *unfinished) {
    spdlog::warn(
        "recovering {} migration {}: interrupted at stage {}, phase {}",
        JournalRoleName(e.role), e.record.id(), JournalStageName(e.stage),
        v1::MigrationPhase_Name(e.record.phase()));
    const absl::Status status = e.role == JournalRole::kSource
                                    ? migrations.Recover(e)
                                    : incoming.Recover(e);
    if (!status.ok()) {
      spdlog::error("{}; its journal entry is kept for a later start",
                    std::string(status.message()));
    }
  }
  absl::StatusOr<std::vector<JournalEntry>> pending = journal.PendingVerdicts();
  if (!pending.ok()) return pending.status();
  for (const JournalEntry& e : *pending) {
    if (e.role == JournalRole::kSource && e.pending == PeerVerdict::kAbort) {
      migrations.ResendAbort(e);
    }
  }
  return absl::OkStatus();
}

int Run(const Flags& flags, const sigset_t& stop_signals) {
  if (absl::Status status = CheckFlags(flags); !status.ok()) {
    spdlog::error("{}", std::string(status.message()));
    return 1;
  }
  // Access control is settled before any device is touched: a TCP target
  // without TLS files and without --insecure stops the daemon here.
  absl::StatusOr<TransportSecurity> transport =
      TransportSecurity::Create(flags.tls, flags.insecure);
  if (!transport.ok()) {
    spdlog::error("{}", std::string(transport.status().message()));
    return 1;
  }
  ServerOptions server_options;
  server_options.transport = *transport;
  if (!flags.socket_group.empty()) {
    absl::StatusOr<SocketAccess> access =
        SocketAccessForGroup(flags.socket_group);
    if (!access.ok()) {
      spdlog::error("{}", std::string(access.status().message()));
      return 1;
    }
    server_options.sockets = *std::move(access);
  }
  for (const std::string& target : flags.listen) {
    if (absl::Status status = transport->ServerCredentialsFor(target).status();
        !status.ok()) {
      spdlog::error("{}", std::string(status.message()));
      return 1;
    }
  }
  absl::StatusOr<std::unique_ptr<StateDir>> state_dir =
      StateDir::Open(flags.state_dir);
  if (!state_dir.ok()) {
    spdlog::error("{}", std::string(state_dir.status().message()));
    return 1;
  }
  absl::StatusOr<std::unique_ptr<Journal>> journal =
      Journal::Open((*state_dir)->path());
  if (!journal.ok()) {
    spdlog::error("cannot open the journal: {}",
                  std::string(journal.status().message()));
    return 1;
  }
  spdlog::info("journal {}", (*journal)->path());
  if (std::optional<std::string> point = ArmedCrashPoint()) {
    spdlog::warn("{}={}: this daemon kills itself there (fault injection)",
                 kCrashAtEnv, *point);
  }

  BackendOptions options;
  options.sim_config_path = flags.sim_config;
  options.device_filter = flags.devices;
  options.state_dir = (*state_dir)->path().string();
  absl::StatusOr<std::unique_ptr<DeviceBackend>> backend =
      BackendRegistry::Create(flags.backend, options);
  if (!backend.ok()) {
    spdlog::error("cannot start backend {}: {}", flags.backend,
                  std::string(backend.status().message()));
    return 1;
  }
  absl::StatusOr<std::unique_ptr<Inventory>> inventory =
      Inventory::Create(*std::move(backend), flags.devices);
  if (!inventory.ok()) {
    spdlog::error("cannot build the device inventory: {}",
                  std::string(inventory.status().message()));
    return 1;
  }
  std::vector<std::string> ids;
  for (const std::shared_ptr<Device>& device : (*inventory)->devices()) {
    const DeviceSnapshot snapshot =
        Inventory::Snapshot(*device, {.stop_copy_size = false});
    ids.push_back(snapshot.info.id);
    spdlog::info(
        "device {}: driver {}, features {}, state {}{}", snapshot.info.id,
        snapshot.info.driver, snapshot.info.features.ToString(),
        snapshot.state.ok() ? DeviceStateName(*snapshot.state) : "unknown",
        snapshot.migratable()
            ? ""
            : ", not migratable: " + snapshot.not_migratable_reason());
  }

  ArcDeadlines deadlines;
  deadlines.drain = absl::Milliseconds(flags.drain_timeout_ms);
  deadlines.arc = absl::Milliseconds(flags.arc_timeout_ms);
  // One lease table for both roles: a device cannot be migrated out while
  // it is being migrated into.
  DeviceLeases leases;
  // Devices held by running libvirt domains (the libvirt hook); an
  // incoming migration must not overwrite one. Built after the peer
  // service, whose incoming migrations it reads.
  std::unique_ptr<DomainAdmission> domains;
  DestinationOptions destination_options;
  destination_options.default_deadlines = deadlines;
  destination_options.device_conflict =
      [&domains](const std::string& device,
                 const std::string& domain) -> std::optional<std::string> {
    return domains == nullptr ? std::nullopt
                              : domains->ConflictFor(device, domain);
  };
  destination_options.journal = journal->get();
  PeerService peer(inventory->get(), &leases, destination_options);
  domains = std::make_unique<DomainAdmission>(
      inventory->get(), &leases, [&peer] { return peer.ListMigrations(); });
  MigrationOptions migration_options;
  migration_options.default_deadlines = deadlines;
  migration_options.precopy.threshold_bytes = flags.precopy_threshold_bytes;
  migration_options.precopy.max_rounds = flags.precopy_max_rounds;
  migration_options.switchover = flags.switchover;
  migration_options.switchover_timeout =
      absl::Milliseconds(flags.switchover_timeout_ms);
  migration_options.peer_timeout = absl::Milliseconds(flags.peer_timeout_ms);
  migration_options.transport = *transport;
  migration_options.journal = journal->get();
  MigrationManager migrations(inventory->get(), &leases, migration_options);
  if (absl::Status status =
          LoadJournal(**journal, migration_options, destination_options,
                      migrations, peer.registry());
      !status.ok()) {
    spdlog::error("cannot read the journal: {}", std::string(status.message()));
    return 1;
  }
  migrations.SetIncoming(IncomingMigrations{
      .list = [&peer] { return peer.ListMigrations(); },
      .get = [&peer](const std::string& id) { return peer.GetMigration(id); },
  });
  ControlService control(inventory->get(), &migrations);
  control.SetDomainAdmission(domains.get());
  const HostedService services[] = {
      {v1::ControlService::service_full_name(), &control},
      {v1::PeerService::service_full_name(), &peer}};
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start(flags.listen, services, server_options);
  if (!server.ok()) {
    spdlog::error("{}", std::string(server.status().message()));
    return 1;
  }
  for (const std::string& target : flags.listen) {
    const TargetKind kind = KindOfTarget(target);
    if (kind == TargetKind::kFileSocket) continue;
    if (kind == TargetKind::kNetwork && transport->has_tls()) {
      spdlog::info("listening on TCP {} with mutual TLS as {}", target,
                   transport->subject());
    } else {
      spdlog::warn(
          "--insecure: listening on {} without authentication: anyone who "
          "reaches it can use the control API and feed device state",
          target);
    }
  }
  // The hand-off side channel, beside the control socket.
  std::string handoff_path = flags.handoff_socket;
  if (handoff_path.empty()) {
    for (const std::string& target : flags.listen) {
      absl::StatusOr<ListenAddress> address = ParseListenAddress(target);
      if (address.ok() && address->unix_path.has_value()) {
        handoff_path = handoff::HandoffPathFor(address->unix_path->native());
        break;
      }
    }
  }
  std::unique_ptr<HandoffServer> handoff;
  if (!handoff_path.empty() && handoff_path != "none") {
    absl::StatusOr<std::unique_ptr<HandoffServer>> started =
        HandoffServer::Start(handoff_path, inventory->get());
    if (!started.ok()) {
      spdlog::error("{}", std::string(started.status().message()));
      return 1;
    }
    handoff = *std::move(started);
    spdlog::info("device hand-off on unix:{}", handoff_path);
  } else {
    spdlog::info("no device hand-off socket (no unix --listen target)");
  }
  if (flags.insecure) {
    spdlog::warn(
        "--insecure: migrations to TCP destinations send device state in "
        "plaintext to a destination nobody authenticated");
  }
  spdlog::info(
      "vfio-migd {} listening on {}; backend {} manages {} devices{}{}",
      VFIOMIG_VERSION, absl::StrJoin((*server)->endpoints(), ", "),
      flags.backend, ids.size(), ids.empty() ? "" : ": ",
      absl::StrJoin(ids, ","));

  int signal_number = 0;
  if (const int err = sigwait(&stop_signals, &signal_number); err != 0) {
    spdlog::error("sigwait: {}", std::strerror(err));
  } else {
    spdlog::info("received SIG{}, shutting down", sigabbrev_np(signal_number));
  }
  // Outgoing migrations roll back first, while the server still runs: the
  // destinations must hear Abort, and watchers see the final events.
  if (migrations.running() > 0) {
    spdlog::info("rolling back {} outgoing migrations before exit",
                 migrations.running());
  }
  migrations.Shutdown();
  handoff.reset();
  (*server)->Shutdown(kShutdownGrace, [&control, &peer] {
    return control.calls_in_flight() > 0 || peer.calls_in_flight() > 0;
  });
  spdlog::info("stopped");
  return 0;
}

}  // namespace
}  // namespace vfiomig

int main(int argc, char** argv) {
  vfiomig::TuneMallocForStreaming();
  // Blocked before any thread exists (gRPC's, backends'), so every thread
  // inherits the mask and only sigwait() below ever sees these signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  CLI::App app{
      "vfio-migd: live-migrates groups of VFIO devices between hosts.\n"
      "Serves vfiomig.v1.ControlService, vfiomig.v1.PeerService (other "
      "daemons migrate devices into this one through it), "
      "grpc.health.v1.Health and server reflection on every --listen "
      "target; SIGTERM/SIGINT roll back outgoing migrations and stop it "
      "cleanly.",
      "vfio-migd"};
  vfiomig::Flags flags;
  vfiomig::AddFlags(app, flags);
  CLI11_PARSE(app, argc, argv);

  try {
    absl::StatusOr<spdlog::level::level_enum> level =
        vfiomig::ParseLogLevel(flags.log_level);
    vfiomig::SetUpLogging(level.value_or(spdlog::level::info));
    return vfiomig::Run(flags, stop_signals);
  } catch (const std::exception& e) {
    // Nothing below throws by design; this is the last line of defence
    // against a library that does, so the failure is at least logged.
    spdlog::critical("fatal: {}", e.what());
    return 1;
  }
}
