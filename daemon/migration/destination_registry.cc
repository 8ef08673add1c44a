#include "daemon/migration/destination_registry.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "daemon/core/planner.h"
#include "daemon/engine/thread_name.h"
#include "daemon/migration/destination_migration.h"
#include "daemon/migration/destination_request.h"
#include "daemon/migration/switchover.h"
#include "daemon/proto_convert.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

ArcDeadlines DeadlinesFor(const v1::PrepareRequest& request,
                          const DestinationOptions& options) {
  ArcDeadlines deadlines = options.default_deadlines;
  if (request.drain_timeout_ms() != 0) {
    deadlines.drain = absl::Milliseconds(request.drain_timeout_ms());
  }
  if (request.arc_timeout_ms() != 0) {
    deadlines.arc = absl::Milliseconds(request.arc_timeout_ms());
  }
  // Devices the source gave their own deadlines (their driver's).
  for (const v1::PeerDevice& device : request.devices()) {
    if (device.drain_timeout_ms() == 0 && device.arc_timeout_ms() == 0) {
      continue;
    }
    ArcDeadlines::Kinds& kinds = deadlines.by_device[device.target_device_id()];
    kinds = {deadlines.drain, deadlines.arc};
    if (device.drain_timeout_ms() != 0) {
      kinds.drain = absl::Milliseconds(device.drain_timeout_ms());
    }
    if (device.arc_timeout_ms() != 0) {
      kinds.arc = absl::Milliseconds(device.arc_timeout_ms());
    }
  }
  return deadlines;
}

// A refusal of `check`'s devices as one line: "gpu1: busy: ...; nic0: ...".
std::string RefusalSummary(const v1::PrepareResponse& response) {
  std::vector<std::string> parts;
  for (const v1::DeviceVerdict& v : response.verdicts()) {
    if (!v.accepted()) {
      parts.push_back(absl::StrCat(v.target_device_id(), ": ", v.reason()));
    }
  }
  return absl::StrJoin(parts, "; ");
}

// What the history keeps of a Prepare that was refused before it touched
// anything.
v1::Migration RefusedRecord(const v1::PrepareRequest& request,
                            const std::string& error) {
  v1::Migration m;
  m.set_id(request.migration_id());
  m.set_role("destination");
  m.set_peer(request.source_host());
  m.set_domain(request.workload().domain());
  m.set_outcome(v1::MIGRATION_OUTCOME_FAILED);
  m.set_phase(v1::MIGRATION_PHASE_DONE);
  m.set_policy(request.policy() == v1::DEADLINE_POLICY_MANDATORY
                   ? v1::DEADLINE_POLICY_MANDATORY
                   : v1::DEADLINE_POLICY_SLA);
  m.set_error(error);
  const int64_t now = absl::ToUnixMillis(absl::Now());
  m.set_started_unix_ms(now);
  m.set_finished_unix_ms(now);
  for (const v1::PeerDevice& d : request.devices()) {
    v1::MigrationDevice& md = *m.add_devices();
    md.set_source_device_id(d.source_device_id());
    md.set_target_device_id(d.target_device_id());
  }
  return m;
}

}  // namespace

DestinationRegistry::DestinationRegistry(const Inventory* inventory,
                                         DeviceLeases* leases,
                                         DestinationOptions options)
    : inventory_(inventory), leases_(leases), options_(std::move(options)) {
  watchdog_ = std::thread([this] {
    NameThisThread("migd-watchdog");
    WatchdogLoop();
  });
}

DestinationRegistry::~DestinationRegistry() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  watchdog_.join();
  std::vector<std::thread> recoveries;
  {
    absl::MutexLock lock(&mu_);
    recoveries.swap(recoveries_);
  }
  for (std::thread& t : recoveries) t.join();
  std::vector<std::shared_ptr<DestinationMigration>> live;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, migration] : live_) {
      if (migration != nullptr) live.push_back(migration);
    }
  }
  for (const auto& migration : live) {
    migration->Abort("the destination daemon is shutting down");
  }
}

absl::StatusOr<v1::PrepareResponse> DestinationRegistry::Prepare(
    const v1::PrepareRequest& request) {
  if (absl::Status s = ValidatePrepareRequest(request); !s.ok()) return s;
  const std::string& id = request.migration_id();
  // The action that starts the workload here after the commit, by the name
  // the source uses; one this daemon lacks fails the request.
  std::shared_ptr<SwitchoverAction> switchover;
  SwitchoverContext switchover_context;
  if (!request.workload().switchover().empty()) {
    absl::StatusOr<std::unique_ptr<SwitchoverAction>> action =
        SwitchoverRegistry::Create(request.workload().switchover());
    if (!action.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("workload.switchover: ", action.status().message()));
    }
    switchover = *std::move(action);
    std::vector<std::string> targets;
    for (const v1::PeerDevice& d : request.devices()) {
      targets.push_back(d.target_device_id());
    }
    switchover_context = DestinationSwitchoverContext(
        id, request.source_host(), request.workload(), std::move(targets));
    if (absl::Status s = switchover->Validate(switchover_context); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("switchover '", request.workload().switchover(),
                       "' on the destination: ", s.message()));
    }
  }
  {
    absl::MutexLock lock(&mu_);
    if (live_.contains(id)) {
      return absl::AlreadyExistsError(
          absl::StrCat("migration ", id, " is already in progress here"));
    }
    // Reserves the id while this call validates.
    live_.emplace(id, nullptr);
  }
  auto unreserve = [&] {
    absl::MutexLock lock(&mu_);
    live_.erase(id);
    aborted_while_reserved_.erase(id);
  };

  v1::PrepareResponse response;
  PrepareCheck check =
      CheckPrepareDevices(request, *inventory_, *leases_, options_);
  std::vector<PlanDevice> plan_devices;
  for (const PreparedTarget& t : check.targets) plan_devices.push_back(t.plan);
  GroupPlan plan;
  if (check.accepted) {
    plan = PlanDestination(plan_devices,
                           PlanOptionsFromProto(request.plan_options()));
    if (!plan.migratable) {
      check.accepted = false;
      std::vector<std::string> group;
      for (const Blocker& b : plan.blockers) {
        if (b.device.empty()) group.push_back(b.reason);
        for (v1::DeviceVerdict& v : check.verdicts) {
          if (v.target_device_id() == b.device) {
            v.set_accepted(false);
            v.set_reason(b.reason);
          }
        }
      }
      if (!group.empty()) response.set_error(absl::StrJoin(group, "; "));
    }
  }
  // A device a running libvirt domain holds is not overwritten.
  if (options_.device_conflict) {
    for (v1::DeviceVerdict& v : check.verdicts) {
      if (!v.accepted()) continue;
      if (std::optional<std::string> conflict = options_.device_conflict(
              v.target_device_id(), request.workload().domain())) {
        v.set_accepted(false);
        v.set_reason(*conflict);
        check.accepted = false;
      }
    }
  }
  for (v1::DeviceVerdict& v : check.verdicts) {
    *response.add_verdicts() = std::move(v);
  }

  // All or nothing: a device leased by a concurrent Prepare since the check
  // refuses this one, still before anything was touched.
  absl::StatusOr<Lease> lease = absl::FailedPreconditionError("refused");
  if (check.accepted) {
    std::vector<std::string> ids;
    for (const PreparedTarget& t : check.targets) {
      ids.push_back(t.target_device_id);
    }
    lease = leases_->Acquire(ids, id);
    if (!lease.ok()) {
      check.accepted = false;
      response.set_error(std::string(lease.status().message()));
    }
  }
  if (!check.accepted) {
    if (response.error().empty()) {
      response.set_error(absl::StrCat("refused: ", RefusalSummary(response)));
    }
    response.set_ready(false);
    spdlog::warn("destination {}: prepare from {} refused: {}", id,
                 request.source_host(), response.error());
    unreserve();
    RecordRefused(RefusedRecord(request, response.error()));
    return response;
  }

  for (const Wave& wave : plan.destination) {
    WaveToProto(wave, response.add_destination_waves());
  }
  DestinationSettings settings{
      .id = id,
      .source_host = request.source_host(),
      .deadlines = DeadlinesFor(request, options_),
      .policy = request.policy() == v1::DEADLINE_POLICY_MANDATORY
                    ? DeadlinePolicy::kMandatory
                    : DeadlinePolicy::kSla,
      .abort_timeout = options_.abort_timeout,
      .domain = request.workload().domain(),
      .switchover = std::move(switchover),
      .switchover_context = std::move(switchover_context),
      .journal = options_.journal,
  };
  auto migration = std::make_shared<DestinationMigration>(
      std::move(settings), std::move(check.targets), plan.destination,
      *std::move(lease), [this](const std::string& done) { OnFinished(done); });
  std::optional<std::string> aborted;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = aborted_while_reserved_.find(id);
        it != aborted_while_reserved_.end()) {
      aborted = std::move(it->second);
      aborted_while_reserved_.erase(it);
      live_.erase(id);
    } else {
      live_[id] = migration;
    }
  }
  if (aborted.has_value()) {
    // Nothing ran yet: dropping the migration releases its lease.
    migration.reset();
    response.set_ready(false);
    response.set_error(
        absl::StrCat("aborted while being prepared: ", *aborted));
    spdlog::warn("destination {}: {}", id, response.error());
    RecordRefused(RefusedRecord(request, response.error()));
    return response;
  }
  if (absl::Status s = migration->Prepare(); !s.ok()) {
    // Rolled back and recorded by OnFinished.
    response.set_ready(false);
    response.set_error(std::string(s.message()));
    // The device whose arc failed is the refused one; the others were fine.
    const std::string failed = migration->ToProto().failed_device_id();
    for (v1::DeviceVerdict& v : *response.mutable_verdicts()) {
      if (failed.empty() || v.target_device_id() == failed) {
        v.set_accepted(false);
        v.set_reason(std::string(s.message()));
      }
    }
    return response;
  }
  response.set_ready(true);
  return response;
}

absl::StatusOr<std::unique_ptr<IncomingStream>> DestinationRegistry::OpenStream(
    const std::string& migration_id, const std::string& target_device_id) {
  absl::StatusOr<std::shared_ptr<DestinationMigration>> migration =
      FindLive(migration_id);
  if (!migration.ok()) return migration.status();
  return (*migration)->OpenStream(target_device_id);
}

absl::StatusOr<v1::LoadResponse> DestinationRegistry::Load(
    const std::string& migration_id) {
  absl::StatusOr<std::shared_ptr<DestinationMigration>> migration =
      FindLive(migration_id);
  if (!migration.ok()) return migration.status();
  return (*migration)->Load();
}

absl::StatusOr<v1::CommitResponse> DestinationRegistry::Commit(
    const std::string& migration_id) {
  absl::StatusOr<std::shared_ptr<DestinationMigration>> migration =
      FindLive(migration_id);
  if (migration.ok()) return (*migration)->Commit();
  // A Commit repeated after the migration finished (the answer to the
  // first one was lost, or this daemon restarted since): the final states
  // of a committed migration; anything else is a refusal.
  absl::StatusOr<v1::Migration> record = Get(migration_id);
  if (!record.ok() || !record->handed_over()) return migration.status();
  v1::CommitResponse response;
  for (const v1::MigrationDevice& d : record->devices()) {
    v1::DeviceStatus& status = *response.add_devices();
    status.set_device_id(d.target_device_id());
    status.set_state(d.state());
    status.set_state_name(d.state_name());
    status.set_was_reset(d.was_reset());
    status.set_error(d.error());
  }
  spdlog::info("destination {}: repeated commit of a committed migration",
               migration_id);
  return response;
}

absl::Status DestinationRegistry::Recover(const JournalEntry& entry) {
  const v1::Migration& record = entry.record;
  const std::string& id = record.id();
  // The action that starts the workload once the recovered commit has
  // every device RUNNING.
  std::shared_ptr<SwitchoverAction> switchover;
  if (!entry.switchover.empty()) {
    absl::StatusOr<std::unique_ptr<SwitchoverAction>> action =
        SwitchoverRegistry::Create(entry.switchover);
    if (!action.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot recover incoming migration ", id, ": ",
                       action.status().message()));
    }
    switchover = *std::move(action);
  }
  std::vector<PreparedTarget> targets;
  std::vector<std::string> ids;
  for (const v1::MigrationDevice& md : record.devices()) {
    absl::StatusOr<std::shared_ptr<Device>> device =
        inventory_->Find(md.target_device_id());
    if (!device.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot recover incoming migration ", id, ": ",
                       device.status().message()));
    }
    PreparedTarget& t = targets.emplace_back();
    t.source_device_id = md.source_device_id();
    t.target_device_id = md.target_device_id();
    t.device = *std::move(device);
    t.plan.id = md.target_device_id();
    t.plan.features = t.device->info().features;
    ids.push_back(md.target_device_id());
  }
  absl::StatusOr<Lease> lease = leases_->Acquire(ids, id);
  if (!lease.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot recover incoming migration ", id, ": ",
                     lease.status().message()));
  }
  ArcDeadlines deadlines = options_.default_deadlines;
  if (record.drain_timeout_ms() != 0) {
    deadlines.drain = absl::Milliseconds(record.drain_timeout_ms());
  }
  if (record.arc_timeout_ms() != 0) {
    deadlines.arc = absl::Milliseconds(record.arc_timeout_ms());
  }
  DestinationSettings settings{
      .id = id,
      .source_host = record.peer(),
      .deadlines = deadlines,
      .policy = record.policy() == v1::DEADLINE_POLICY_MANDATORY
                    ? DeadlinePolicy::kMandatory
                    : DeadlinePolicy::kSla,
      .abort_timeout = options_.abort_timeout,
      .domain = entry.workload.domain(),
      .switchover = std::move(switchover),
      .switchover_context =
          DestinationSwitchoverContext(id, record.peer(), entry.workload, ids),
      .journal = options_.journal,
      .started_unix_ms = record.started_unix_ms(),
      .recovering = true,
  };
  auto migration = std::make_shared<DestinationMigration>(
      std::move(settings), std::move(targets), std::vector<Wave>(),
      *std::move(lease), [this](const std::string& done) { OnFinished(done); });
  absl::MutexLock lock(&mu_);
  live_[id] = migration;
  recoveries_.emplace_back([migration, stage = entry.stage, record] {
    NameThisThread("migd-recover");
    migration->Recover(stage, record);
  });
  return absl::OkStatus();
}

v1::AbortResponse DestinationRegistry::Abort(const std::string& migration_id,
                                             const std::string& reason) {
  {
    // A Prepare still checking its devices: it gives up before touching
    // any (the source may abort when its Prepare call timed out).
    absl::MutexLock lock(&mu_);
    if (auto it = live_.find(migration_id);
        it != live_.end() && it->second == nullptr) {
      aborted_while_reserved_[migration_id] = reason;
      spdlog::warn("destination {}: abort while preparing: {}", migration_id,
                   reason);
      return v1::AbortResponse();
    }
  }
  absl::StatusOr<std::shared_ptr<DestinationMigration>> migration =
      FindLive(migration_id);
  if (migration.ok()) return (*migration)->Abort(reason);
  v1::AbortResponse response;
  absl::StatusOr<v1::Migration> record = Get(migration_id);
  if (record.ok()) {
    for (const v1::MigrationDevice& d : record->devices()) {
      // Refused Prepares never touched a device: nothing to report.
      if (d.state() == v1::DEVICE_STATE_UNSPECIFIED) continue;
      v1::DeviceStatus& status = *response.add_devices();
      status.set_device_id(d.target_device_id());
      status.set_state(d.state());
      status.set_state_name(d.state_name());
      status.set_was_reset(d.was_reset());
      status.set_error(d.error());
    }
  }
  spdlog::info("destination {}: abort of a migration not in progress ({})",
               migration_id, reason);
  return response;
}

std::vector<v1::Migration> DestinationRegistry::List() const {
  std::vector<v1::Migration> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, migration] : live_) {
    if (migration != nullptr) out.push_back(migration->ToProto());
  }
  out.insert(out.end(), history_.begin(), history_.end());
  return out;
}

absl::StatusOr<v1::Migration> DestinationRegistry::Get(
    const std::string& migration_id) const {
  absl::MutexLock lock(&mu_);
  if (auto it = live_.find(migration_id);
      it != live_.end() && it->second != nullptr) {
    return it->second->ToProto();
  }
  for (const v1::Migration& m : history_) {
    if (m.id() == migration_id) return m;
  }
  return absl::NotFoundError(
      absl::StrCat("no incoming migration ", migration_id));
}

size_t DestinationRegistry::active() const {
  absl::MutexLock lock(&mu_);
  return live_.size();
}

void DestinationRegistry::OnFinished(const std::string& id) {
  std::shared_ptr<DestinationMigration> migration;
  {
    absl::MutexLock lock(&mu_);
    auto it = live_.find(id);
    if (it == live_.end() || it->second == nullptr) return;
    migration = std::move(it->second);
    live_.erase(it);
  }
  RecordFinished(migration->ToProto());
}

void DestinationRegistry::RecordRefused(v1::Migration record) {
  if (options_.journal != nullptr) {
    // Relaxed: nothing was touched, so nothing depends on this row; it is
    // history only.
    absl::Status s =
        options_.journal->Write(JournalEntry{.role = JournalRole::kDestination,
                                             .stage = JournalStage::kDone,
                                             .record = record,
                                             .pending = PeerVerdict::kNone,
                                             .switchover = "",
                                             .workload_paused = false,
                                             .workload = {}},
                                Durability::kRelaxed);
    if (!s.ok()) {
      spdlog::warn("destination {}: journal: {}", record.id(),
                   std::string(s.message()));
    }
  }
  RecordFinished(std::move(record));
}

void DestinationRegistry::LoadHistory(std::vector<v1::Migration> finished) {
  absl::MutexLock lock(&mu_);
  for (v1::Migration& m : finished) {
    if (history_.size() >= options_.history_limit) break;
    history_.push_back(std::move(m));
  }
}

void DestinationRegistry::RecordFinished(v1::Migration record) {
  absl::MutexLock lock(&mu_);
  history_.push_front(std::move(record));
  while (history_.size() > options_.history_limit) history_.pop_back();
}

absl::StatusOr<std::shared_ptr<DestinationMigration>>
DestinationRegistry::FindLive(const std::string& id) const {
  absl::MutexLock lock(&mu_);
  auto it = live_.find(id);
  if (it != live_.end() && it->second != nullptr) return it->second;
  for (const v1::Migration& m : history_) {
    if (m.id() == id) {
      return absl::FailedPreconditionError(absl::StrCat(
          "migration ", id,
          " already finished: ", v1::MigrationOutcome_Name(m.outcome()),
          m.error().empty() ? "" : ": ", m.error()));
    }
  }
  return absl::NotFoundError(absl::StrCat("no incoming migration ", id));
}

void DestinationRegistry::WatchdogLoop() {
  // Checks often enough that an orphan outlives its timeout by at most a
  // quarter of it (and never more than a second).
  const absl::Duration tick = std::clamp(
      options_.abort_timeout / 4, absl::Milliseconds(10), absl::Seconds(1));
  while (true) {
    std::vector<std::shared_ptr<DestinationMigration>> live;
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_;
      };
      mu_.AwaitWithTimeout(absl::Condition(&stopping), tick);
      if (stopping_) return;
      for (const auto& [id, migration] : live_) {
        if (migration != nullptr) live.push_back(migration);
      }
    }
    const absl::Time now = absl::Now();
    for (const auto& migration : live) migration->AbortIfOrphaned(now);
  }
}

}  // namespace vfiomig
