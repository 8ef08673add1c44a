#include "daemon/migration/migration_manager.h"

#include <unistd.h>

#include <random>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "daemon/control_service.h"
#include "daemon/core/planner.h"
#include "daemon/migration/destination_request.h"
#include "daemon/migration/migration_journal.h"
#include "daemon/migration/source_migration.h"
#include "daemon/migration/switchover.h"
#include "daemon/proto_convert.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') {
    return "localhost";
  }
  return name;
}

bool Printable(const std::string& s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace

absl::Status ValidateVmmSocket(const std::string& field,
                               const std::string& path) {
  if (path.empty()) return absl::OkStatus();
  if (path.front() != '/' || path.size() > kMaxVmmSocketPath ||
      !Printable(path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "workload.", field, " must be an absolute path of printable ASCII, ",
        "at most ", kMaxVmmSocketPath, " bytes"));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("workload.", field, " must not contain '..'"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateWorkload(const v1::Workload& workload) {
  if (workload.domain().size() > 256 || !Printable(workload.domain())) {
    return absl::InvalidArgumentError(
        "workload.domain must be at most 256 printable ASCII characters");
  }
  if (workload.switchover().size() > 64 || !Printable(workload.switchover())) {
    return absl::InvalidArgumentError("workload.switchover is not a name");
  }
  if (absl::Status s =
          ValidateVmmSocket("source_qmp_socket", workload.source_qmp_socket());
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateVmmSocket("destination_qmp_socket",
                                         workload.destination_qmp_socket());
      !s.ok()) {
    return s;
  }
  if (workload.switchover_timeout_ms() > kMaxArcTimeoutMs) {
    return absl::InvalidArgumentError(
        absl::StrCat("workload.switchover_timeout_ms must be at most ",
                     kMaxArcTimeoutMs, " (24 h); 0 means the daemon default"));
  }
  return absl::OkStatus();
}

namespace {

absl::Status ValidateRequest(const v1::StartMigrationRequest& request) {
  const auto& ids = request.device_ids();
  if (ids.empty()) {
    return absl::InvalidArgumentError("device_ids is empty: name the group");
  }
  if (static_cast<size_t>(ids.size()) > kMaxDevicesPerRequest) {
    return absl::InvalidArgumentError(
        absl::StrCat("device_ids has ", ids.size(), " entries; at most ",
                     kMaxDevicesPerRequest, " are accepted"));
  }
  std::set<std::string> seen;
  for (const std::string& id : ids) {
    if (absl::Status s = ValidateDeviceId(id); !s.ok()) return s;
    if (!seen.insert(id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("device '", id, "' is listed twice in device_ids"));
    }
  }
  if (request.destination().empty()) {
    return absl::InvalidArgumentError(
        "destination is empty: name the destination daemon (host:port or "
        "unix:/path)");
  }
  if (request.destination().size() > kMaxDestinationLength ||
      !Printable(request.destination())) {
    return absl::InvalidArgumentError(
        absl::StrCat("destination must be 1..", kMaxDestinationLength,
                     " printable ASCII characters"));
  }
  std::set<std::string> targets;
  for (const auto& [source, target] : request.device_map()) {
    if (!seen.contains(source)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "device_map maps '", source, "', which is not in device_ids"));
    }
    if (absl::Status s = ValidateDeviceId(target); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("device_map['", source, "']: ", s.message()));
    }
  }
  // Every device's target, mapped or not, must be distinct: two streams
  // cannot resume into one device.
  for (const std::string& id : ids) {
    auto it = request.device_map().find(id);
    const std::string& target =
        it == request.device_map().end() ? id : it->second;
    if (!targets.insert(target).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "two devices would migrate into destination device '", target, "'"));
    }
  }
  if (!v1::DeadlinePolicy_IsValid(request.policy())) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown deadline policy ", request.policy()));
  }
  if (request.drain_timeout_ms() > kMaxArcTimeoutMs ||
      request.arc_timeout_ms() > kMaxArcTimeoutMs) {
    return absl::InvalidArgumentError(
        absl::StrCat("drain_timeout_ms and arc_timeout_ms must be at most ",
                     kMaxArcTimeoutMs, " (24 h); 0 means the daemon default"));
  }
  if (!request.migration_id().empty()) {
    if (absl::Status s = ValidateMigrationId(request.migration_id()); !s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("migration_id: ", s.message()));
    }
  }
  return ValidateWorkload(request.workload());
}

std::string Blockers(const GroupPlan& plan) {
  return absl::StrJoin(plan.blockers, "; ",
                       [](std::string* out, const Blocker& blocker) {
                         if (!blocker.device.empty()) {
                           absl::StrAppend(out, blocker.device, ": ");
                         }
                         absl::StrAppend(out, blocker.reason);
                       });
}

}  // namespace

MigrationManager::MigrationManager(const Inventory* inventory,
                                   DeviceLeases* leases,
                                   MigrationOptions options)
    : inventory_(inventory),
      leases_(leases),
      options_([&] {
        if (options.source_host.empty()) options.source_host = HostName();
        return std::move(options);
      }()),
      abort_sender_(options_.peer_timeout) {}

MigrationManager::~MigrationManager() {
  Shutdown();
  absl::MutexLock lock(&mu_);
  for (auto& [id, entry] : entries_) {
    if (entry.migration != nullptr) entry.migration->Join();
  }
  entries_.clear();
}

void MigrationManager::SetIncoming(IncomingMigrations incoming) {
  incoming_ = std::move(incoming);
}

void MigrationManager::LoadHistory(std::vector<v1::Migration> finished) {
  absl::MutexLock lock(&mu_);
  // Newest first in, oldest first into order_.
  for (auto it = finished.rbegin(); it != finished.rend(); ++it) {
    const std::string id = it->id();
    if (entries_.contains(id)) continue;
    Entry& entry = entries_[id];
    entry.tracker =
        MigrationTracker::Finished(*std::move(it), options_.tracker);
    entry.started =
        absl::FromUnixMillis(entry.tracker->Get().started_unix_ms());
    order_.push_back(id);
  }
  ReapLocked();
}

absl::StatusOr<std::string> MigrationManager::NewId(
    const std::string& requested) const {
  if (!requested.empty()) {
    if (entries_.contains(requested)) {
      return absl::AlreadyExistsError(
          absl::StrCat("migration ", requested, " already exists"));
    }
    return requested;
  }
  static thread_local std::mt19937_64 random{std::random_device{}()};
  const std::string time =
      absl::FormatTime("%Y%m%d-%H%M%S", absl::Now(), absl::UTCTimeZone());
  for (;;) {
    std::string id = absl::StrFormat("m-%s-%06x", time, random() & 0xffffff);
    if (!entries_.contains(id)) return id;
  }
}

absl::StatusOr<v1::Migration> MigrationManager::Start(
    const v1::StartMigrationRequest& request) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  std::string id;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) {
      return absl::FailedPreconditionError("the daemon is shutting down");
    }
    absl::StatusOr<std::string> new_id = NewId(request.migration_id());
    if (!new_id.ok()) return new_id.status();
    id = *std::move(new_id);
    // Reserves the id while the devices are checked outside the lock.
    entries_[id] = Entry{};
  }
  absl::StatusOr<v1::Migration> started = StartReserved(id, request);
  absl::MutexLock lock(&mu_);
  if (!started.ok()) {
    entries_.erase(id);
    spdlog::info("StartMigration {}: refused: {}", id,
                 started.status().ToString());
  }
  return started;
}

absl::StatusOr<v1::Migration> MigrationManager::StartReserved(
    const std::string& id, const v1::StartMigrationRequest& request) {
  // Before any device is touched: a TCP destination needs TLS (or
  // --insecure) on this daemon.
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      options_.transport.ChannelCredentialsFor(request.destination());
  if (!credentials.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot reach the destination: ", credentials.status().message()));
  }
  const std::vector<std::string> ids(request.device_ids().begin(),
                                     request.device_ids().end());
  absl::StatusOr<std::vector<std::shared_ptr<Device>>> devices =
      inventory_->FindAll(ids);
  if (!devices.ok()) return devices.status();
  // Leased before planning, so that the plan's device states cannot change
  // under another migration before this one runs it.
  absl::StatusOr<Lease> lease = leases_->Acquire(ids, id);
  if (!lease.ok()) return lease.status();
  absl::StatusOr<std::vector<PlanDevice>> plan_devices =
      inventory_->PlanDevices(ids);
  if (!plan_devices.ok()) return plan_devices.status();
  const PlanOptions plan_options = PlanOptionsFromProto(request.plan_options());
  GroupPlan plan = PlanMigration(*plan_devices, plan_options);
  if (!plan.migratable) {
    return absl::FailedPreconditionError(
        absl::StrCat("the group cannot migrate: ", Blockers(plan)));
  }
  const v1::Workload& workload = request.workload();
  const std::string switchover_name = workload.switchover().empty()
                                          ? options_.switchover
                                          : workload.switchover();
  absl::StatusOr<std::unique_ptr<SwitchoverAction>> switchover =
      SwitchoverRegistry::Create(switchover_name);
  if (!switchover.ok()) {
    return absl::Status(
        workload.switchover().empty() ? absl::StatusCode::kUnavailable
                                      : absl::StatusCode::kInvalidArgument,
        absl::StrCat("switchover action: ", switchover.status().message()));
  }
  SwitchoverContext switchover_check;
  switchover_check.migration_id = id;
  switchover_check.vmm_socket = workload.source_qmp_socket();
  switchover_check.domain = workload.domain();
  if (absl::Status s = (*switchover)->Validate(switchover_check); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("switchover '", switchover_name, "': ", s.message()));
  }

  SourceMigrationSpec spec;
  spec.id = id;
  spec.destination = request.destination();
  spec.peer_credentials = *std::move(credentials);
  spec.source_host = options_.source_host;
  spec.devices = *devices;
  for (const std::string& source : ids) {
    auto it = request.device_map().find(source);
    spec.target_ids.push_back(it == request.device_map().end() ? source
                                                               : it->second);
  }
  spec.plan_options = plan_options;
  switch (request.policy()) {
    case v1::DEADLINE_POLICY_SLA:
      spec.policy = DeadlinePolicy::kSla;
      break;
    case v1::DEADLINE_POLICY_MANDATORY:
      spec.policy = DeadlinePolicy::kMandatory;
      break;
    default:  // UNSPECIFIED; others were refused by the request check.
      spec.policy = options_.default_policy;
      break;
  }
  std::vector<DeviceDriver> drivers;
  for (size_t i = 0; i < ids.size(); ++i) {
    drivers.push_back({ids[i], (*devices)[i]->info().driver});
  }
  spec.deadlines = ResolveDeadlines(
      options_.default_deadlines, request.drain_timeout_ms(),
      request.arc_timeout_ms(), options_.driver_deadlines, drivers);
  spec.precopy = options_.precopy;
  spec.peer_timeout = options_.peer_timeout;
  spec.data_channel = options_.data_channel;
  spec.switchover = *std::move(switchover);
  spec.domain = workload.domain();
  spec.source_vmm_socket = workload.source_qmp_socket();
  spec.destination_vmm_socket = workload.destination_qmp_socket();
  spec.switchover_timeout =
      workload.switchover_timeout_ms() > 0
          ? absl::Milliseconds(workload.switchover_timeout_ms())
          : options_.switchover_timeout;
  spec.lease = *std::move(lease);

  v1::Migration migration;
  migration.set_id(id);
  migration.set_role("source");
  migration.set_peer(request.destination());
  migration.set_domain(workload.domain());
  migration.set_switchover(switchover_name);
  migration.set_outcome(v1::MIGRATION_OUTCOME_IN_PROGRESS);
  migration.set_phase(v1::MIGRATION_PHASE_PLANNING);
  migration.set_policy(spec.policy == DeadlinePolicy::kSla
                           ? v1::DEADLINE_POLICY_SLA
                           : v1::DEADLINE_POLICY_MANDATORY);
  migration.set_drain_timeout_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(spec.deadlines.drain)));
  migration.set_arc_timeout_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(spec.deadlines.arc)));
  for (size_t i = 0; i < ids.size(); ++i) {
    v1::MigrationDevice* device = migration.add_devices();
    device->set_source_device_id(ids[i]);
    device->set_target_device_id(spec.target_ids[i]);
    const DeviceState state = (*plan_devices)[i].state;
    device->set_state(DeviceStateToProto(state));
    device->set_state_name(std::string(DeviceStateName(state)));
  }
  for (const std::string& warning : plan.warnings) {
    migration.add_warnings(warning);
  }
  migration.set_started_unix_ms(absl::ToUnixMillis(absl::Now()));
  const size_t source_waves = plan.source.size();
  spec.plan = std::move(plan);

  // Recorded before anything is touched: a daemon that dies from here on
  // finds the migration in its journal and recovers its devices.
  auto journal = std::make_shared<MigrationJournal>(
      options_.journal, JournalEntry{.role = JournalRole::kSource,
                                     .stage = JournalStage::kStarted,
                                     .record = migration,
                                     .pending = PeerVerdict::kNone,
                                     .switchover = switchover_name,
                                     .workload_paused = false,
                                     .workload = workload});
  if (absl::Status s = journal->SetStage(JournalStage::kStarted); !s.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "cannot record the migration in the journal: ", s.message()));
  }
  auto tracker = std::make_shared<MigrationTracker>(std::move(migration),
                                                    options_.tracker);
  tracker->SetSink([journal](const v1::Migration& m, bool final) {
    if (final) {
      journal->Finish(m);
    } else {
      journal->Snapshot(m);
    }
  });
  spec.journal = journal;
  spec.abort_sender = &abort_sender_;
  auto source = std::make_shared<SourceMigration>(std::move(spec), tracker);
  tracker->Publish([](v1::Migration&) {},
                   EventInfo(absl::StrCat(
                       "planned: ", source_waves, " source waves for ",
                       ids.size(), " devices to ", request.destination())));
  spdlog::info("migration {}: started: {} to {}", id, absl::StrJoin(ids, ","),
               request.destination());
  Launch(id, tracker, source);
  return tracker->Get();
}

void MigrationManager::Launch(const std::string& id,
                              std::shared_ptr<MigrationTracker> tracker,
                              std::shared_ptr<SourceMigration> source) {
  absl::MutexLock lock(&mu_);
  ReapLocked();
  Entry& entry = entries_[id];
  entry.tracker = std::move(tracker);
  entry.migration = source;
  entry.started = absl::Now();
  order_.push_back(id);
  source->Start();
}

absl::Status MigrationManager::Recover(const JournalEntry& entry) {
  const v1::Migration& record = entry.record;
  const std::string& id = record.id();
  std::vector<std::string> ids;
  std::vector<std::string> targets;
  for (const v1::MigrationDevice& d : record.devices()) {
    ids.push_back(d.source_device_id());
    targets.push_back(d.target_device_id());
  }
  auto refuse = [&](const absl::Status& why) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot recover outgoing migration ", id, ": ", why.message()));
  };
  absl::StatusOr<std::vector<std::shared_ptr<Device>>> devices =
      inventory_->FindAll(ids);
  if (!devices.ok()) return refuse(devices.status());
  absl::StatusOr<std::unique_ptr<SwitchoverAction>> switchover =
      SwitchoverRegistry::Create(entry.switchover.empty() ? "none"
                                                          : entry.switchover);
  if (!switchover.ok()) return refuse(switchover.status());
  // The flags may have changed across the restart: if they no longer allow
  // the destination, recovery is refused (and says which flags it needs).
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      options_.transport.ChannelCredentialsFor(record.peer());
  if (!credentials.ok()) return refuse(credentials.status());
  absl::StatusOr<Lease> lease = leases_->Acquire(ids, id);
  if (!lease.ok()) return refuse(lease.status());

  SourceMigrationSpec spec;
  spec.id = id;
  spec.destination = record.peer();
  spec.peer_credentials = *std::move(credentials);
  spec.source_host = options_.source_host;
  spec.devices = *std::move(devices);
  spec.target_ids = targets;
  spec.policy = record.policy() == v1::DEADLINE_POLICY_MANDATORY
                    ? DeadlinePolicy::kMandatory
                    : DeadlinePolicy::kSla;
  spec.deadlines = options_.default_deadlines;
  if (record.drain_timeout_ms() > 0) {
    spec.deadlines.drain = absl::Milliseconds(record.drain_timeout_ms());
  }
  if (record.arc_timeout_ms() > 0) {
    spec.deadlines.arc = absl::Milliseconds(record.arc_timeout_ms());
  }
  spec.peer_timeout = options_.peer_timeout;
  spec.switchover = *std::move(switchover);
  spec.domain = entry.workload.domain();
  spec.source_vmm_socket = entry.workload.source_qmp_socket();
  spec.destination_vmm_socket = entry.workload.destination_qmp_socket();
  spec.switchover_timeout =
      entry.workload.switchover_timeout_ms() > 0
          ? absl::Milliseconds(entry.workload.switchover_timeout_ms())
          : options_.switchover_timeout;
  spec.lease = *std::move(lease);
  spec.journal = std::make_shared<MigrationJournal>(options_.journal, entry);
  spec.abort_sender = &abort_sender_;
  spec.recover_from = entry.stage;
  spec.workload_paused = entry.workload_paused;

  v1::Migration migration = record;
  migration.set_outcome(v1::MIGRATION_OUTCOME_IN_PROGRESS);
  migration.set_recovered(true);
  auto tracker = std::make_shared<MigrationTracker>(std::move(migration),
                                                    options_.tracker);
  std::shared_ptr<MigrationJournal> journal = spec.journal;
  tracker->SetSink([journal](const v1::Migration& m, bool final) {
    if (final) {
      journal->Finish(m);
    } else {
      journal->Snapshot(m);
    }
  });
  auto source = std::make_shared<SourceMigration>(std::move(spec), tracker);
  Launch(id, std::move(tracker), std::move(source));
  return absl::OkStatus();
}

void MigrationManager::ResendAbort(const JournalEntry& entry) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      options_.transport.ChannelCredentialsFor(entry.record.peer());
  if (!credentials.ok()) {
    // Stays pending in the journal: a start with the right flags sends it.
    spdlog::error("migration {}: cannot send its pending abort to {}: {}",
                  entry.record.id(), entry.record.peer(),
                  std::string(credentials.status().message()));
    return;
  }
  abort_sender_.Add(std::make_shared<MigrationJournal>(options_.journal, entry),
                    entry.record.peer(), *std::move(credentials),
                    entry.record.error().empty() ? "the source rolled back"
                                                 : entry.record.error());
}

absl::StatusOr<v1::Migration> MigrationManager::Get(
    const std::string& id) const {
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it != entries_.end() && it->second.tracker != nullptr) {
      return it->second.tracker->Get();
    }
  }
  if (incoming_.get) {
    absl::StatusOr<v1::Migration> incoming = incoming_.get(id);
    if (incoming.ok() || !absl::IsNotFound(incoming.status())) return incoming;
  }
  return absl::NotFoundError(absl::StrCat("no migration ", id));
}

std::vector<v1::Migration> MigrationManager::List() const {
  std::vector<v1::Migration> migrations;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
      auto entry = entries_.find(*it);
      if (entry != entries_.end() && entry->second.tracker != nullptr) {
        migrations.push_back(entry->second.tracker->Get());
      }
    }
  }
  if (incoming_.list) {
    for (v1::Migration& migration : incoming_.list()) {
      migrations.push_back(std::move(migration));
    }
  }
  return migrations;
}

absl::StatusOr<std::unique_ptr<MigrationSubscription>> MigrationManager::Watch(
    const std::string& id) const {
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it != entries_.end() && it->second.tracker != nullptr) {
      return it->second.tracker->Subscribe();
    }
  }
  if (incoming_.get && incoming_.get(id).ok()) {
    return absl::UnimplementedError(absl::StrCat(
        "migration ", id,
        " is incoming; watch it on its source daemon (GetMigration shows it "
        "here)"));
  }
  return absl::NotFoundError(absl::StrCat("no migration ", id));
}

absl::StatusOr<v1::Migration> MigrationManager::Cancel(const std::string& id,
                                                       absl::Time deadline) {
  std::shared_ptr<MigrationTracker> tracker;
  std::shared_ptr<SourceMigration> migration;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it != entries_.end() && it->second.tracker != nullptr) {
      tracker = it->second.tracker;
      migration = it->second.migration;
    }
  }
  if (tracker == nullptr) {
    if (incoming_.get && incoming_.get(id).ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "migration ", id, " is incoming; cancel it on its source daemon"));
    }
    return absl::NotFoundError(absl::StrCat("no migration ", id));
  }
  if (tracker->finished() || migration == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "migration ", id, " already finished: ",
        // "SUCCEEDED", not the enum's full "MIGRATION_OUTCOME_SUCCEEDED".
        v1::MigrationOutcome_Name(tracker->Get().outcome())
            .substr(std::string_view("MIGRATION_OUTCOME_").size())));
  }
  migration->Cancel("cancelled by request");
  tracker->WaitFinished(deadline);
  return tracker->Get();
}

absl::StatusOr<v1::Migration> MigrationManager::Switchover(
    const std::string& id) {
  std::shared_ptr<MigrationTracker> tracker;
  std::shared_ptr<SourceMigration> migration;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it != entries_.end() && it->second.tracker != nullptr) {
      tracker = it->second.tracker;
      migration = it->second.migration;
    }
  }
  if (tracker == nullptr) {
    if (incoming_.get && incoming_.get(id).ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "migration ", id,
          " is incoming; give the switchover on its source daemon"));
    }
    return absl::NotFoundError(absl::StrCat("no migration ", id));
  }
  if (migration == nullptr || tracker->finished()) {
    return absl::FailedPreconditionError(
        absl::StrCat("migration ", id, " has finished"));
  }
  if (absl::Status s = migration->ProceedSwitchover(); !s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("migration ", id, ": ", s.message()));
  }
  return tracker->Get();
}

void MigrationManager::Shutdown() {
  std::vector<std::shared_ptr<SourceMigration>> running;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    for (auto& [id, entry] : entries_) {
      if (entry.migration != nullptr && entry.tracker != nullptr &&
          !entry.tracker->finished()) {
        running.push_back(entry.migration);
      }
    }
  }
  if (running.empty()) return;
  spdlog::warn("cancelling {} running migrations: the daemon is stopping",
               running.size());
  for (const auto& migration : running) migration->Shutdown();
  // Rolled back (finished), or past the commit point and left to the next
  // start: either way the thread ends.
  for (const auto& migration : running) migration->Join();
}

size_t MigrationManager::running() const {
  absl::MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [id, entry] : entries_) {
    if (entry.tracker != nullptr && !entry.tracker->finished()) ++n;
  }
  return n;
}

void MigrationManager::ReapLocked() {
  size_t finished = 0;
  for (auto& [id, entry] : entries_) {
    if (entry.tracker == nullptr || !entry.tracker->finished()) continue;
    ++finished;
    if (entry.migration != nullptr) {
      // Finish is the migration thread's last act: the join is immediate.
      entry.migration->Join();
      entry.migration.reset();
    }
  }
  while (finished > options_.history_limit && !order_.empty()) {
    // Oldest first; running migrations are never dropped.
    auto victim =
        std::find_if(order_.begin(), order_.end(), [&](const std::string& id) {
          auto it = entries_.find(id);
          return it != entries_.end() && it->second.tracker != nullptr &&
                 it->second.tracker->finished();
        });
    if (victim == order_.end()) break;
    entries_.erase(*victim);
    order_.erase(victim);
    --finished;
  }
}

}  // namespace vfiomig
