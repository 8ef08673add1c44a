// vfio-migd: settings, logging, signals. Everything else lives in the
// libraries; flags and the config file are daemon/config/daemon_config.h.
#include <pthread.h>
#include <signal.h>

#include <cstring>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "daemon/config/daemon_config.h"
#include "daemon/control_service.h"
#include "daemon/crash_point.h"
#include "daemon/datachannel/policy.h"
#include "daemon/domains/domain_admission.h"
#include "daemon/engine/thread_pool.h"
#include "daemon/handoff/handoff_server.h"
#include "daemon/handoff/protocol.h"
#include "daemon/inventory.h"
#include "daemon/listen_address.h"
#include "daemon/liveness_probe.h"
#include "daemon/log_target.h"
#include "daemon/logging.h"
#include "daemon/malloc_tuning.h"
#include "daemon/metrics/metrics.h"
#include "daemon/metrics/metrics_address.h"
#include "daemon/metrics/metrics_http.h"
#include "daemon/metrics/prometheus_metrics.h"
#include "daemon/migration/device_leases.h"
#include "daemon/migration/migration_manager.h"
#include "daemon/migration/migration_tracker.h"
#include "daemon/migration/switchover.h"
#include "daemon/peer_service.h"
#include "daemon/server.h"
#include "daemon/socket_permissions.h"
#include "daemon/store/journal.h"
#include "daemon/store/state_dir.h"
#include "daemon/systemd_notifier.h"
#include "daemon/thread_stacks.h"
#include "daemon/transport_security.h"
#include "plugins/registry.h"
#include "spdlog/spdlog.h"

#ifndef VFIOMIG_VERSION
#define VFIOMIG_VERSION "unknown"
#endif

namespace vfiomig {
namespace {

// How long a call still in flight at SIGTERM may take to finish, once the
// outgoing migrations have rolled back (their watchers have then seen the
// final event). Other calls are short, so this bounds the exit time only
// when one hangs; idle client connections do not wait for it.
constexpr absl::Duration kShutdownGrace = absl::Seconds(5);
// How long the systemd watchdog's health check may take: far below any
// WatchdogSec, far above an answer from a server that still works.
constexpr absl::Duration kLivenessTimeout = absl::Seconds(5);

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

int Run(const DaemonConfig& flags, const sigset_t& stop_signals) {
  if (!flags.config_file.empty()) {
    spdlog::info("read config file {}", flags.config_file);
  }
  // Access control is settled before any device is touched: a TCP target
  // without TLS files and without --insecure stops the daemon here.
  absl::StatusOr<TransportSecurity> transport = TransportSecurity::Create(
      TlsFiles{
          .ca = flags.tls_ca, .cert = flags.tls_cert, .key = flags.tls_key},
      flags.insecure);
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

  // Installed before anything reports (the inventory's states, every
  // arc) and uninstalled after everything that reports is gone.
  std::unique_ptr<PrometheusMetrics> metrics;
  if (!flags.metrics_listen.empty()) {
    metrics = std::make_unique<PrometheusMetrics>(VFIOMIG_VERSION);
  }
  struct MetricsInstallation {
    explicit MetricsInstallation(MetricsSink* sink) { InstallMetrics(sink); }
    ~MetricsInstallation() { InstallMetrics(nullptr); }
  } installed_metrics(metrics.get());
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
    if (snapshot.state.ok()) {
      Metrics().DeviceStateKnown(snapshot.info.id, *snapshot.state);
    }
    spdlog::info(
        "device {}: driver {}, features {}, state {}{}", snapshot.info.id,
        snapshot.info.driver, snapshot.info.features.ToString(),
        snapshot.state.ok() ? DeviceStateName(*snapshot.state) : "unknown",
        snapshot.migratable()
            ? ""
            : ", not migratable: " + snapshot.not_migratable_reason());
  }

  // The threads a migration of every device needs at most: a worker per
  // device and, as a destination, a data connection per device. Started
  // now, they cost nothing inside a migration's set-up; a migration needing
  // more starts them then.
  const size_t threads = 2 * ids.size();
  try {
    WorkerThreads().Prestart(threads);
    spdlog::debug("{} worker threads started", threads);
  } catch (const std::system_error& e) {
    spdlog::warn(
        "cannot start {} worker threads now ({}); migrations start "
        "theirs",
        threads, e.what());
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
  for (const auto& [driver, own] : flags.driver_deadlines) {
    DriverDeadlineOverride& kinds = migration_options.driver_deadlines[driver];
    if (own.drain_timeout_ms) {
      kinds.drain = absl::Milliseconds(*own.drain_timeout_ms);
    }
    if (own.arc_timeout_ms) kinds.arc = absl::Milliseconds(*own.arc_timeout_ms);
    spdlog::info("driver {}: drain timeout {}, arc timeout {}", driver,
                 own.drain_timeout_ms
                     ? absl::StrCat(*own.drain_timeout_ms, " ms")
                     : std::string("default"),
                 own.arc_timeout_ms ? absl::StrCat(*own.arc_timeout_ms, " ms")
                                    : std::string("default"));
  }
  migration_options.default_policy = flags.policy == "mandatory"
                                         ? DeadlinePolicy::kMandatory
                                         : DeadlinePolicy::kSla;
  migration_options.precopy.threshold_bytes = flags.precopy_threshold_bytes;
  migration_options.precopy.max_rounds = flags.precopy_max_rounds;
  migration_options.switchover = flags.switchover;
  migration_options.switchover_timeout =
      absl::Milliseconds(flags.switchover_timeout_ms);
  migration_options.peer_timeout = absl::Milliseconds(flags.peer_timeout_ms);
  migration_options.transport = *transport;
  migration_options.journal = journal->get();
  // Device state leaves in plaintext on a data channel: only where the
  // peer link is plaintext too (datachannel/policy.h).
  const datachannel::Decision data_channel = datachannel::DecideDataChannel(
      flags.data_channel, /*peer_link_tls=*/transport->has_tls());
  migration_options.data_channel = data_channel.enabled;
  if (!data_channel.enabled) {
    spdlog::info("no data channel: {}", data_channel.reason);
  } else {
    std::vector<std::string> hosts;
    for (const std::string& target : flags.listen) {
      absl::StatusOr<ListenAddress> address = ParseListenAddress(target);
      if (address.ok() && address->tcp_host.has_value()) {
        hosts.push_back(*address->tcp_host);
      }
    }
    // Without a TCP listen target no other host can reach this daemon:
    // incoming streams use the peer API.
    if (!hosts.empty()) {
      if (absl::Status s = peer.EnableDataChannel(hosts); !s.ok()) {
        spdlog::warn("no data channel: {}", std::string(s.message()));
      }
    }
  }
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
        HandoffServer::Start(handoff_path, inventory->get(),
                             server_options.sockets);
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
  std::unique_ptr<MetricsHttpServer> metrics_http;
  if (metrics != nullptr) {
    metrics->SetRunning(MetricsRole::kSource,
                        [&migrations] { return migrations.running(); });
    metrics->SetRunning(MetricsRole::kDestination, [&peer] {
      size_t running = 0;
      for (const v1::Migration& m : peer.ListMigrations()) {
        running += IsFinalOutcome(m.outcome()) ? 0 : 1;
      }
      return running;
    });
    // Checked when the flags were read.
    absl::StatusOr<MetricsAddress> address =
        ParseMetricsAddress(flags.metrics_listen);
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> started =
        address.ok() ? MetricsHttpServer::Start(*address, metrics.get())
                     : absl::StatusOr<std::unique_ptr<MetricsHttpServer>>(
                           address.status());
    if (!started.ok()) {
      spdlog::error("{}", std::string(started.status().message()));
      return 1;
    }
    metrics_http = *std::move(started);
    spdlog::info("metrics on {}", metrics_http->url());
  }
  // Under systemd (Type=notify): started once every socket serves; the
  // watchdog pings only while the gRPC server answers its health check.
  SystemdNotifier systemd([&server] {
    return CheckServing(*(*server)->grpc_server(), kLivenessTimeout);
  });
  systemd.Ready(absl::StrCat("serving ", ids.size(), " devices on ",
                             absl::StrJoin((*server)->endpoints(), ", ")));

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
  systemd.Stopping(migrations.running() > 0
                       ? absl::StrCat("rolling back ", migrations.running(),
                                      " outgoing migrations")
                       : std::string("stopping"));
  migrations.Shutdown();
  handoff.reset();
  // Its gauges ask the migrations, which are going away.
  metrics_http.reset();
  // The probe asks the server, which is going away.
  systemd.StopWatchdog();
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
  vfiomig::UseSmallThreadStacks();
  // Blocked before any thread exists (gRPC's, backends'), so every thread
  // inherits the mask and only sigwait() below ever sees these signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  vfiomig::LoadedConfig loaded =
      vfiomig::LoadDaemonConfig(argc, argv, std::cout, std::cerr);
  if (loaded.exit_code) return *loaded.exit_code;
  const vfiomig::DaemonConfig& flags = loaded.config;

  try {
    absl::StatusOr<spdlog::level::level_enum> level =
        vfiomig::ParseLogLevel(flags.log_level);
    absl::StatusOr<vfiomig::LogTarget> target =
        vfiomig::ChooseLogTarget(flags.log_target);
    vfiomig::SetUpLogging(level.value_or(spdlog::level::info),
                          target.value_or(vfiomig::LogTarget::kStderr));
    return vfiomig::Run(flags, stop_signals);
  } catch (const std::exception& e) {
    // Nothing below throws by design; this is the last line of defence
    // against a library that does, so the failure is at least logged.
    spdlog::critical("fatal: {}", e.what());
    return 1;
  }
}
