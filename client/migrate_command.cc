#include "client/migrate_command.h"

#include <unistd.h>

#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/follow.h"
#include "client/interrupt.h"
#include "client/migration_format.h"
#include "client/plan_command.h"
#include "client/progress_view.h"
#include "client/rpc.h"

namespace vfiomig::cli {
namespace {

// Arc deadlines are bounded like the sim's latencies: a day is already far
// beyond any drain an operator would wait for.
constexpr uint32_t kMaxTimeoutMs = 86'400'000;

std::unique_ptr<ProgressView> MakeView(bool json, std::ostream& out) {
  if (json) return nullptr;  // --json: the final object and nothing else
  ProgressViewOptions options;
  options.tty = isatty(STDOUT_FILENO) == 1;
  options.columns = TerminalColumns();
  return std::make_unique<ProgressView>(out, options);
}

// StartMigration refused with FAILED_PRECONDITION: a blocked plan or a busy
// device. The plan says which, and why per device (the reason operators
// otherwise have to dig out of logs).
int ReportNotStarted(const ControlClient& client,
                     const v1::StartMigrationRequest& request,
                     const absl::Status& status, bool json, std::ostream& out) {
  v1::PlanMigrationRequest plan_request;
  *plan_request.mutable_device_ids() = request.device_ids();
  *plan_request.mutable_options() = request.plan_options();
  absl::StatusOr<v1::MigrationPlan> plan = client.PlanMigration(plan_request);
  if (plan.ok() && !plan->migratable()) {
    std::vector<std::string> reasons;
    for (const v1::Blocker& blocker : plan->blockers()) {
      // Reasons usually name their device already ("accel0 lacks P2P").
      const bool named =
          blocker.device_id().empty() ||
          absl::StartsWith(blocker.reason(), blocker.device_id());
      reasons.push_back(
          named ? blocker.reason()
                : absl::StrCat(blocker.device_id(), ": ", blocker.reason()));
    }
    if (!json) {
      out << "MIGRATABLE: no\n\nBlockers:\n";
      for (const std::string& reason : reasons) out << "  " << reason << '\n';
      out.flush();
    }
    PrintError(absl::StrCat(
        "cannot migrate ", absl::StrJoin(request.device_ids(), ","),
        ": the group is blocked: ", absl::StrJoin(reasons, "; ")));
    return kExitNotMigratable;
  }
  PrintError(absl::StrCat("cannot start the migration: ", status.message()));
  return kExitNotMigratable;
}

// Follows the migration the follower knows to its end and reports it.
int FollowAndReport(Follower& follower, const GlobalOptions& global,
                    const std::string& id, const std::string& peer_target,
                    bool json, bool detach_means_running, std::ostream& out) {
  absl::StatusOr<FollowResult> final = follower.Run();
  follower.FinishView();
  if (!final.ok()) {
    if (absl::IsCancelled(final.status())) {
      PrintError(detach_means_running
                     ? absl::StrCat("detached from migration ", id,
                                    "; it goes on (`vfio-migctl cancel ", id,
                                    "` stops it)")
                     : absl::StrCat("stopped waiting for migration ", id,
                                    "; its cancel goes on (`vfio-migctl watch ",
                                    id, "` follows it)"));
      return kExitInterrupted;
    }
    return ReportRpcError(final.status());
  }
  const v1::Migration& migration = final->migration;
  if (follower.cancel_requested() &&
      migration.outcome() == v1::MIGRATION_OUTCOME_SUCCEEDED) {
    follower.Note("the cancel came too late: the migration had succeeded");
  }
  const PeerStates peer = QueryPeerStates(
      migration, peer_target.empty() ? migration.peer() : peer_target, global);
  return ReportFinal(*final, peer, follower.cancel_requested(), json, out);
}

}  // namespace

CLI::App* AddMigrateCommand(CLI::App& app, MigrateOptions* options) {
  CLI::App* migrate = app.add_subcommand(
      "migrate",
      "Migrate a group of devices to another vfio-migd and follow it to the "
      "end");
  migrate
      ->add_option("--devices", options->devices,
                   "Device ids of the group, comma-separated")
      ->required();
  migrate
      ->add_option("--to", options->to,
                   "The destination vfio-migd, as the local daemon dials it: "
                   "host:port, unix:/path or /path")
      ->required();
  migrate->add_option("--map", options->map,
                      "Destination device per source device: src=dst,... "
                      "(default: the same id)");
  migrate
      ->add_option("--policy", options->policy,
                   "sla: a late or failed arc rolls the group back (the "
                   "VM keeps running here); mandatory: an evacuation, "
                   "deadlines only warn (default: the daemon's, sla unless "
                   "configured)")
      ->check(CLI::IsMember({"sla", "mandatory"}));
  migrate
      ->add_option("--drain-timeout-ms", options->drain_timeout_ms,
                   "Deadline of arcs that drain in-flight DMA (into "
                   "RUNNING_P2P, PRE_COPY_P2P, STOP); default: the daemon's")
      ->check(CLI::Range(uint32_t{1}, kMaxTimeoutMs));
  migrate
      ->add_option("--arc-timeout-ms", options->arc_timeout_ms,
                   "Deadline of every other arc; default: the daemon's")
      ->check(CLI::Range(uint32_t{1}, kMaxTimeoutMs));
  migrate->add_flag("--allow-no-p2p", options->allow_no_p2p,
                    "Accept a multi-device group in which some device lacks "
                    "P2P (only safe when the devices cannot DMA to each "
                    "other)");
  migrate->add_flag("--json", options->json,
                    "Print only the final migration as JSON (no progress)");
  migrate->add_option("--domain", options->domain,
                      "libvirt domain (name or UUID) the devices belong to; "
                      "the destination's libvirt hook maps its hostdevs "
                      "through --map");
  migrate->add_option("--switchover", options->switchover,
                      "What pauses the VM before the devices stop: none, qmp "
                      "(--source-qmp/--destination-qmp) or external (the "
                      "daemon waits for `vfio-migctl switchover ID`); default: "
                      "the daemon's --switchover");
  migrate->add_option("--source-qmp", options->source_qmp,
                      "qmp: the VM's QMP socket on this host");
  migrate->add_option("--destination-qmp", options->destination_qmp,
                      "qmp: the VM's QMP socket on the destination host");
  migrate
      ->add_option("--switchover-timeout-ms", options->switchover_timeout_ms,
                   "How long the switchover may take (external: the wait "
                   "for the Switchover call); default: the daemon's")
      ->check(CLI::Range(uint32_t{1}, kMaxTimeoutMs));
  migrate->footer(
      "Progress: a live bar per device on a terminal, one line per event "
      "otherwise.\nCtrl-C cancels the migration and waits for the rollback; "
      "a second Ctrl-C\nstops waiting.\n\n"
      "Exit status: 0 migrated; 4 failed and rolled back; 5 cancelled and "
      "rolled\nback; 6 ended but some device needs attention (not where it "
      "should be);\n3 the group cannot migrate (blockers printed) or a "
      "device is busy;\n2 bad arguments or unknown device; 1 vfio-migd "
      "unreachable or lost;\n130 stopped waiting (second Ctrl-C).");
  return migrate;
}

CLI::App* AddWatchCommand(CLI::App& app, WatchOptions* options) {
  CLI::App* watch = app.add_subcommand(
      "watch", "Follow a running or finished migration to its end");
  watch->add_option("id", options->id, "Migration id")->required();
  watch->add_flag("--json", options->json,
                  "Print only the final migration as JSON (no progress)");
  watch->footer(
      "Ctrl-C detaches; the migration goes on.\n\n"
      "Exit status: the migration's outcome as for migrate (0 succeeded, 4 "
      "failed,\n5 cancelled, 6 needs attention); 2 unknown id; 1 vfio-migd "
      "unreachable;\n130 detached.");
  return watch;
}

absl::StatusOr<std::map<std::string, std::string>> ParseDeviceMap(
    const std::vector<std::string>& entries,
    const std::vector<std::string>& devices) {
  const std::set<std::string> sources(devices.begin(), devices.end());
  std::map<std::string, std::string> map;
  for (const std::string& arg : entries) {
    for (absl::string_view part : absl::StrSplit(arg, ',')) {
      std::vector<std::string> sides =
          absl::StrSplit(absl::StripAsciiWhitespace(part), '=');
      if (sides.size() != 2) {
        return absl::InvalidArgumentError(
            absl::StrCat("--map entry '", part, "' is not src=dst"));
      }
      std::string source(absl::StripAsciiWhitespace(sides[0]));
      std::string target(absl::StripAsciiWhitespace(sides[1]));
      if (source.empty() || target.empty()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--map entry '", part, "' has an empty side (expected src=dst)"));
      }
      if (!sources.contains(source)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "--map names '", source, "', which is not in --devices"));
      }
      if (!map.emplace(source, target).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("--map maps '", source, "' twice"));
      }
    }
  }
  // Two sources on one target would have the destination resume one device
  // from two streams; say so before the daemons do.
  std::map<std::string, std::string> owner;
  for (const std::string& device : devices) {
    auto it = map.find(device);
    const std::string& target = it == map.end() ? device : it->second;
    auto [seen, inserted] = owner.emplace(target, device);
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", seen->second, "' and '", device,
                       "' would both migrate to destination device '", target,
                       "' (see --map)"));
    }
  }
  return map;
}

absl::StatusOr<v1::StartMigrationRequest> BuildStartRequest(
    const MigrateOptions& options) {
  absl::StatusOr<std::vector<std::string>> ids =
      CleanDeviceIds(options.devices);
  if (!ids.ok()) return ids.status();
  const std::string to(absl::StripAsciiWhitespace(options.to));
  if (to.empty()) {
    return absl::InvalidArgumentError(
        "--to is empty (expected host:port or unix:/path)");
  }
  absl::StatusOr<std::string> destination = NormalizeTarget(to);
  if (!destination.ok()) return destination.status();
  absl::StatusOr<std::map<std::string, std::string>> map =
      ParseDeviceMap(options.map, *ids);
  if (!map.ok()) return map.status();

  v1::StartMigrationRequest request;
  for (const std::string& id : *ids) request.add_device_ids(id);
  request.set_destination(*destination);
  for (const auto& [source, target] : *map) {
    (*request.mutable_device_map())[source] = target;
  }
  if (options.policy.empty()) {
    request.set_policy(v1::DEADLINE_POLICY_UNSPECIFIED);
  } else if (options.policy == "sla") {
    request.set_policy(v1::DEADLINE_POLICY_SLA);
  } else if (options.policy == "mandatory") {
    request.set_policy(v1::DEADLINE_POLICY_MANDATORY);
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--policy '", options.policy, "' is not sla or mandatory"));
  }
  request.set_drain_timeout_ms(options.drain_timeout_ms);
  request.set_arc_timeout_ms(options.arc_timeout_ms);
  request.mutable_plan_options()->set_allow_no_p2p(options.allow_no_p2p);
  if (!options.domain.empty() || !options.switchover.empty() ||
      !options.source_qmp.empty() || !options.destination_qmp.empty() ||
      options.switchover_timeout_ms != 0) {
    v1::Workload* workload = request.mutable_workload();
    workload->set_domain(options.domain);
    workload->set_switchover(options.switchover);
    workload->set_source_qmp_socket(options.source_qmp);
    workload->set_destination_qmp_socket(options.destination_qmp);
    workload->set_switchover_timeout_ms(options.switchover_timeout_ms);
  }
  return request;
}

int RunMigrate(const MigrateOptions& options, const GlobalOptions& global,
               std::ostream& out) {
  absl::StatusOr<v1::StartMigrationRequest> request =
      BuildStartRequest(options);
  if (!request.ok()) {
    PrintError(request.status().message());
    return kExitUsage;
  }
  // Before the channel exists: gRPC's threads must inherit the mask.
  InterruptWatcher::BlockSignals();
  absl::StatusOr<ControlClient> client = ControlClient::Create(global);
  if (!client.ok()) {
    PrintError(client.status().message());
    return kExitUsage;
  }
  Follower follower(&*client, MakeView(options.json, out),
                    InterruptAction::kCancel);
  InterruptWatcher interrupts(
      [&follower](int count) { follower.OnInterrupt(count); });

  absl::StatusOr<v1::Migration> started = client->StartMigration(*request);
  if (!started.ok()) {
    if (absl::IsFailedPrecondition(started.status())) {
      return ReportNotStarted(*client, *request, started.status(), options.json,
                              out);
    }
    if (absl::IsAlreadyExists(started.status())) {
      PrintError(started.status().message());
      return kExitNotMigratable;
    }
    return ReportRpcError(started.status());
  }
  const std::string id = started->id();
  if (!options.json) {
    follower.Note(absl::StrCat("migration ", id, ": ",
                               absl::StrJoin(request->device_ids(), ","),
                               " -> ", request->destination(), " (policy ",
                               PolicyName(started->policy()), ")"));
  }
  follower.SetMigrationId(id);
  return FollowAndReport(follower, global, id, request->destination(),
                         options.json, /*detach_means_running=*/false, out);
}

int RunWatch(const WatchOptions& options, const GlobalOptions& global,
             std::ostream& out) {
  const std::string id(absl::StripAsciiWhitespace(options.id));
  if (id.empty()) {
    PrintError("the migration id is empty");
    return kExitUsage;
  }
  InterruptWatcher::BlockSignals();
  absl::StatusOr<ControlClient> client = ControlClient::Create(global);
  if (!client.ok()) {
    PrintError(client.status().message());
    return kExitUsage;
  }
  Follower follower(&*client, MakeView(options.json, out),
                    InterruptAction::kDetach);
  InterruptWatcher interrupts(
      [&follower](int count) { follower.OnInterrupt(count); });
  follower.SetMigrationId(id);
  return FollowAndReport(follower, global, id, /*peer_target=*/"", options.json,
                         /*detach_means_running=*/true, out);
}

}  // namespace vfiomig::cli
