#include "daemon/migration/destination_migration.h"

#include <algorithm>
#include <map>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "daemon/crash_point.h"
#include "daemon/engine/thread_name.h"
#include "daemon/engine/thread_pool.h"
#include "daemon/metrics/metrics.h"
#include "daemon/migration/migration_tracker.h"
#include "daemon/proto_convert.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

std::map<std::string, std::shared_ptr<Device>> DeviceMap(
    const std::vector<PreparedTarget>& targets) {
  std::map<std::string, std::shared_ptr<Device>> devices;
  for (const PreparedTarget& t : targets) {
    devices.emplace(t.target_device_id, t.device);
  }
  return devices;
}

std::string StateName(DeviceState state) {
  return std::string(DeviceStateName(state));
}

std::string PhaseName(WavePhase phase) {
  return std::string(WavePhaseName(phase));
}

std::string Msg(const absl::Status& status) {
  return std::string(status.message());
}

// What a restart needs to start the workload here (DestinationSettings ->
// the journal row's Workload; DestinationSwitchoverContext reverses it).
v1::Workload WorkloadOf(const DestinationSettings& settings) {
  v1::Workload workload;
  workload.set_domain(settings.domain);
  if (settings.switchover == nullptr) return workload;
  workload.set_switchover(std::string(settings.switchover->name()));
  workload.set_destination_qmp_socket(settings.switchover_context.vmm_socket);
  workload.set_switchover_timeout_ms(static_cast<uint32_t>(
      absl::ToInt64Milliseconds(settings.switchover_context.timeout)));
  return workload;
}

}  // namespace

SwitchoverContext DestinationSwitchoverContext(
    const std::string& id, const std::string& source_host,
    const v1::Workload& workload, std::vector<std::string> targets) {
  SwitchoverContext context;
  context.side = SwitchoverSide::kDestination;
  context.migration_id = id;
  context.destination = source_host;
  context.vmm_socket = workload.destination_qmp_socket();
  context.domain = workload.domain();
  if (workload.switchover_timeout_ms() > 0) {
    context.timeout = absl::Milliseconds(workload.switchover_timeout_ms());
  }
  context.devices = std::move(targets);
  return context;
}

DestinationMigration::DestinationMigration(DestinationSettings settings,
                                           std::vector<PreparedTarget> targets,
                                           std::vector<Wave> waves, Lease lease,
                                           FinishedCallback on_finished)
    : settings_(std::move(settings)),
      waves_(std::move(waves)),
      on_finished_(std::move(on_finished)),
      started_unix_ms_(settings_.started_unix_ms != 0
                           ? settings_.started_unix_ms
                           : absl::ToUnixMillis(absl::Now())),
      lease_(std::move(lease)),
      stage_(settings_.recovering ? Stage::kRecovering : Stage::kPreparing),
      last_activity_(absl::Now()) {
  executor_ = std::make_unique<TransitionExecutor>(
      DeviceMap(targets), settings_.deadlines, settings_.policy,
      static_cast<ExecutorObserver*>(this), settings_.id);
  for (PreparedTarget& target : targets) {
    DeviceRecord& record = devices_.emplace_back();
    record.target = std::move(target);
  }
  journal_ = std::make_unique<MigrationJournal>(
      settings_.journal,
      JournalEntry{
          .role = JournalRole::kDestination,
          .stage = JournalStage::kStarted,
          .record = ToProto(),
          .pending = PeerVerdict::kNone,
          .switchover = std::string(settings_.switchover == nullptr
                                        ? ""
                                        : settings_.switchover->name()),
          .workload_paused = false,
          .workload = WorkloadOf(settings_)},
      // Not fsynced: the state these records protect lives in our devices,
      // which do not survive a power loss of this host either (PROTOCOL.md).
      Durability::kRelaxed);
}

DestinationMigration::~DestinationMigration() = default;

absl::Status DestinationMigration::Prepare() {
  absl::MutexLock op(&op_mu_);
  {
    absl::MutexLock lock(&mu_);
    spdlog::info("destination {}: preparing {} devices for {}", settings_.id,
                 devices_.size(), settings_.source_host);
  }
  // Recorded before any device is touched: a restart finds the migration
  // and releases its devices.
  absl::Status status = journal_->SetStage(JournalStage::kStarted);
  if (!status.ok()) {
    status = absl::UnavailableError(absl::StrCat(
        "cannot record the migration in the journal: ", status.message()));
  } else {
    status = RunWaves({WavePhase::kPrepareQuiesce, WavePhase::kPrepareStop,
                       WavePhase::kResuming});
  }
  if (status.ok()) {
    absl::MutexLock lock(&mu_);
    for (const DeviceRecord& d : devices_) {
      if (d.session == nullptr) {
        status = absl::InternalError(
            absl::StrCat("device ", d.target.target_device_id,
                         " entered RESUMING without a data session"));
        failed_device_ = d.target.target_device_id;
        break;
      }
    }
  }
  if (!status.ok()) {
    const std::string summary =
        RollBackAndFinish(status, v1::MIGRATION_OUTCOME_FAILED);
    return absl::Status(
        status.code(),
        absl::StrCat(status.message(), "; rolled back: ", summary));
  }
  absl::MutexLock lock(&mu_);
  stage_ = Stage::kReceiving;
  last_activity_ = absl::Now();
  spdlog::info("destination {}: every device RESUMING, waiting for streams",
               settings_.id);
  return absl::OkStatus();
}

absl::Status DestinationMigration::RunWaves(
    const std::vector<WavePhase>& phases) {
  for (const Wave& wave : waves_) {
    if (std::find(phases.begin(), phases.end(), wave.phase) == phases.end()) {
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      if (abort_requested_ && !committed_) {
        return absl::AbortedError(absl::StrCat("aborted before wave ",
                                               PhaseName(wave.phase), ": ",
                                               abort_reason_));
      }
    }
    spdlog::info("destination {}: wave {} ({} arcs)", settings_.id,
                 PhaseName(wave.phase), wave.arcs.size());
    WaveResult result = executor_->RunWave(wave);
    absl::MutexLock lock(&mu_);
    for (ArcResult& arc : result.arcs) {
      DeviceRecord* d = FindDevice(arc.arc.device);
      if (d == nullptr) continue;
      if (arc.status.ok()) d->state = arc.arc.to;
      if (arc.session != nullptr) d->session = std::move(arc.session);
    }
    if (!result.status.ok()) {
      if (result.failed_arc.has_value()) {
        failed_device_ = result.failed_arc->device;
        failed_arc_ = ArcName(result.failed_arc->from, result.failed_arc->to);
      }
      spdlog::error("destination {}: wave {} failed: {}", settings_.id,
                    PhaseName(wave.phase), Msg(result.status));
      return result.status;
    }
    journal_->Snapshot(ToProtoLocked());
    CrashPoint(absl::StrCat("destination:wave:", PhaseName(wave.phase)));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<IncomingStream>>
DestinationMigration::OpenStream(const std::string& target_device_id) {
  size_t index = 0;
  absl::Status refusal;
  {
    absl::MutexLock lock(&mu_);
    DeviceRecord* d = FindDevice(target_device_id);
    if (d == nullptr) {
      return absl::NotFoundError(absl::StrCat("migration ", settings_.id,
                                              " has no target device ",
                                              target_device_id));
    }
    if (stage_ != Stage::kReceiving || abort_requested_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "migration ", settings_.id, " is not receiving streams (",
          v1::MigrationPhase_Name(PhaseLocked()), error_.empty() ? "" : ": ",
          error_, ")"));
    }
    index = static_cast<size_t>(d - devices_.data());
    if (d->stream == StreamState::kNone) {
      d->stream = StreamState::kOpen;
      ++open_streams_;
      last_activity_ = absl::Now();
      spdlog::info("destination {}: device {}: stream opened", settings_.id,
                   target_device_id);
      return std::make_unique<IncomingStream>(
          shared_from_this(), index, target_device_id, d->target.header,
          d->session, d->target.max_stream_bytes);
    }
    // Two streams for one device mean a confused or impostor source. The
    // second never reaches the device or the first stream's decoder, and the
    // migration fails closed.
    refusal = absl::AlreadyExistsError(absl::StrCat(
        "device ", target_device_id, " of migration ", settings_.id,
        " already has a stream (", d->frames,
        " frames received); a second stream aborts the migration"));
  }
  spdlog::error("destination {}: {}", settings_.id, Msg(refusal));
  OnStreamFailed(index, refusal);
  return refusal;
}

absl::Status DestinationMigration::CheckReceiving(size_t) const {
  absl::MutexLock lock(&mu_);
  // Past kReceiving only a stream that already ended can ask (Commit needs
  // every END), and a commit does not fail it.
  if (!abort_requested_ &&
      (stage_ == Stage::kReceiving || stage_ == Stage::kCommitting ||
       outcome_ == v1::MIGRATION_OUTCOME_SUCCEEDED)) {
    last_activity_ = absl::Now();
    return absl::OkStatus();
  }
  return absl::AbortedError(absl::StrCat(
      "migration ", settings_.id,
      " was aborted: ", !abort_reason_.empty() ? abort_reason_ : error_));
}

void DestinationMigration::OnStreamProgress(size_t device,
                                            const stream::StreamTotals& totals,
                                            uint64_t frames) {
  {
    absl::MutexLock lock(&mu_);
    devices_[device].received = totals;
    devices_[device].frames = frames;
    last_activity_ = absl::Now();
  }
  if (totals.stop_copy_bytes > 0) {
    CrashPoint("destination:frame:stop-copy");
  } else if (totals.pre_copy_bytes > 0) {
    CrashPoint("destination:frame:pre-copy");
  }
}

void DestinationMigration::OnStreamEnded(size_t device,
                                         const stream::StreamTotals& totals,
                                         uint64_t frames) {
  {
    absl::MutexLock lock(&mu_);
    DeviceRecord& d = devices_[device];
    d.received = totals;
    d.frames = frames;
    if (d.stream == StreamState::kOpen) d.stream = StreamState::kEnded;
    last_activity_ = absl::Now();
    spdlog::info(
        "destination {}: device {}: stream ended: {} frames, {} pre-copy and "
        "{} stop-copy bytes",
        settings_.id, d.target.target_device_id, frames, totals.pre_copy_bytes,
        totals.stop_copy_bytes);
    if (stage_ != Stage::kReceiving || abort_requested_ ||
        preload_ != PreloadState::kNone) {
      return;
    }
    for (const DeviceRecord& r : devices_) {
      if (r.stream != StreamState::kEnded) return;
    }
    preload_ = PreloadState::kQueued;
  }
  try {
    WorkerThreads().Run([self = shared_from_this()] {
      NameThisThread("migd-preload");
      self->Preload();
    });
  } catch (const std::system_error& e) {
    // Load runs the wave instead.
    spdlog::warn("destination {}: no thread to load early: {}", settings_.id,
                 e.what());
    absl::MutexLock lock(&mu_);
    preload_ = PreloadState::kNone;
  }
}

void DestinationMigration::Preload() {
  absl::MutexLock op(&op_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (preload_ != PreloadState::kQueued) return;
    if (stage_ != Stage::kReceiving || abort_requested_) {
      // Load or an abort got here first; Load runs the wave itself.
      preload_ = PreloadState::kNone;
      return;
    }
    load_started_ = true;
    for (DeviceRecord& d : devices_) d.session.reset();
  }
  snapshot_hold_ = journal_->HoldSnapshots(kDowntimeSnapshotHold);
  spdlog::info(
      "destination {}: every stream ended: loading the devices before the "
      "source asks",
      settings_.id);
  absl::Status status = RunWaves({WavePhase::kResumeStop});
  absl::MutexLock lock(&mu_);
  preload_ = PreloadState::kDone;
  preload_status_ = std::move(status);
}

void DestinationMigration::OnStreamFailed(size_t device,
                                          const absl::Status& error) {
  std::string device_id;
  {
    absl::MutexLock lock(&mu_);
    DeviceRecord& d = devices_[device];
    device_id = d.target.target_device_id;
    if (d.stream == StreamState::kOpen) d.stream = StreamState::kFailed;
    if (d.error.empty()) d.error = Msg(error);
    if (stage_ == Stage::kDone) return;
    if (!abort_requested_) {
      abort_requested_ = true;
      abort_reason_ = absl::StrCat("stream of device ", device_id,
                                   " failed: ", error.message());
    }
  }
  spdlog::error("destination {}: device {}: stream failed, aborting: {}",
                settings_.id, device_id, Msg(error));
  absl::MutexLock op(&op_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (stage_ == Stage::kDone) return;
    if (failed_device_.empty()) failed_device_ = device_id;
  }
  RollBackAndFinish(error, v1::MIGRATION_OUTCOME_FAILED);
}

void DestinationMigration::OnStreamClosed(size_t device) {
  absl::MutexLock lock(&mu_);
  --open_streams_;
  last_activity_ = absl::Now();
  if (devices_[device].stream == StreamState::kOpen) {
    // Only reachable if a stream skipped Fail(); never leave it "open".
    devices_[device].stream = StreamState::kFailed;
  }
}

absl::StatusOr<v1::LoadResponse> DestinationMigration::Load() {
  AwaitRecovered();
  absl::MutexLock op(&op_mu_);
  if (absl::Status s = LoadLocked(); !s.ok()) return s;
  v1::LoadResponse response;
  absl::MutexLock lock(&mu_);
  StatusesTo(response.mutable_devices());
  return response;
}

absl::Status DestinationMigration::LoadLocked() {
  std::vector<std::string> pending;
  {
    absl::MutexLock lock(&mu_);
    if (stage_ == Stage::kLoaded) return absl::OkStatus();
    if (stage_ != Stage::kReceiving || abort_requested_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "migration ", settings_.id, " cannot load: it is ",
          v1::MigrationPhase_Name(PhaseLocked()),
          stage_ == Stage::kDone
              ? absl::StrCat(", ", v1::MigrationOutcome_Name(outcome_))
              : "",
          error_.empty() ? "" : ": ", error_));
    }
    for (const DeviceRecord& d : devices_) {
      if (d.stream == StreamState::kEnded) continue;
      pending.push_back(absl::StrCat(
          d.target.target_device_id, " (",
          d.stream == StreamState::kNone ? "no stream" : "stream not ended",
          ", ", d.frames, " frames)"));
    }
    stage_ = Stage::kLoading;
    load_started_ = true;
  }
  if (!snapshot_hold_.active()) {
    snapshot_hold_ = journal_->HoldSnapshots(kDowntimeSnapshotHold);
  }
  spdlog::info("destination {}: load", settings_.id);
  absl::Status status;
  if (!pending.empty()) {
    status = absl::FailedPreconditionError(absl::StrCat(
        "load before every stream ended: ", absl::StrJoin(pending, ", ")));
  } else {
    bool preloaded;
    {
      absl::MutexLock lock(&mu_);
      preloaded = preload_ == PreloadState::kDone;
      if (preloaded) {
        status = preload_status_;
      } else {
        // A Preload still queued finds the stage moved on and does nothing.
        for (DeviceRecord& d : devices_) d.session.reset();
      }
    }
    if (!preloaded) status = RunWaves({WavePhase::kResumeStop});
  }
  if (status.ok() && settings_.switchover != nullptr) {
    // The last moment a workload that cannot start here can still fail the
    // migration: after the commit point the source never resumes its own.
    if (absl::Status s =
            settings_.switchover->CheckStart(settings_.switchover_context);
        !s.ok()) {
      status = absl::Status(
          s.code(),
          absl::StrCat("switchover '",
                       std::string(settings_.switchover->name()),
                       "' could not start the workload here: ", s.message()));
    }
  }
  if (status.ok()) {
    // The source commits on our answer: the record must be written first
    // (to the WAL: a crash of this daemon keeps it).
    if (absl::Status s = journal_->SetStage(JournalStage::kLoaded); !s.ok()) {
      status = absl::UnavailableError(
          absl::StrCat("cannot record the load in the journal: ", s.message()));
    }
  }
  if (!status.ok()) {
    const std::string summary =
        RollBackAndFinish(status, v1::MIGRATION_OUTCOME_FAILED);
    return absl::Status(status.code(),
                        absl::StrCat("load of migration ", settings_.id,
                                     " failed: ", status.message(),
                                     "; rolled back: ", summary));
  }
  CrashPoint("destination:loaded");
  absl::MutexLock lock(&mu_);
  stage_ = Stage::kLoaded;
  last_activity_ = absl::Now();
  spdlog::info(
      "destination {}: every device loaded its state and is STOP; waiting "
      "for the source's commit",
      settings_.id);
  return absl::OkStatus();
}

absl::StatusOr<v1::CommitResponse> DestinationMigration::Commit() {
  AwaitRecovered();
  absl::MutexLock op(&op_mu_);
  Stage stage;
  {
    absl::MutexLock lock(&mu_);
    stage = stage_;
    if (stage_ == Stage::kDone && !committed_) {
      return absl::FailedPreconditionError(absl::StrCat(
          "migration ", settings_.id, " cannot commit: it is DONE, ",
          v1::MigrationOutcome_Name(outcome_), error_.empty() ? "" : ": ",
          error_));
    }
  }
  if (stage == Stage::kReceiving) {
    // A source that does not send Load (an older vfio-migd): load now.
    if (absl::Status s = LoadLocked(); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("commit: ", s.message()));
    }
    stage = Stage::kLoaded;
  }
  if (stage == Stage::kLoaded) {
    // Recorded before any device starts: a restart completes the resume
    // instead of waiting for a verdict the source will not repeat.
    if (absl::Status s = journal_->SetStage(JournalStage::kCommitted);
        !s.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "cannot record the commit in the journal (the devices stay "
          "loaded; retry): ",
          s.message()));
    }
    bool planned;
    {
      absl::MutexLock lock(&mu_);
      committed_ = true;
      stage_ = Stage::kCommitting;
      planned = !recovered_;
    }
    spdlog::info("destination {}: commit recorded; resuming the devices",
                 settings_.id);
    CrashPoint("destination:committed");
    CompleteCommit(planned);
  }
  absl::MutexLock lock(&mu_);
  if (stage_ != Stage::kDone || !committed_) {
    return absl::FailedPreconditionError(
        absl::StrCat("migration ", settings_.id, " cannot commit: it is ",
                     v1::MigrationPhase_Name(PhaseLocked())));
  }
  // Committed, now or by an earlier call: the final states.
  v1::CommitResponse response;
  StatusesTo(response.mutable_devices());
  return response;
}

void DestinationMigration::CompleteCommit(bool planned) {
  absl::Status status;
  if (planned) {
    status = RunWaves({WavePhase::kP2pRestore, WavePhase::kRunning});
  } else {
    status = absl::UnavailableError("resuming after a restart");
  }
  std::vector<std::pair<std::string, std::shared_ptr<Device>>> devices;
  {
    absl::MutexLock lock(&mu_);
    for (const DeviceRecord& d : devices_) {
      devices.emplace_back(d.target.target_device_id, d.target.device);
    }
  }
  // Asks each device (GET). After waves that succeeded every call has
  // returned, so the device itself answers, without a round trip through
  // its worker thread; otherwise a call may still be in flight, and the
  // worker answers after it.
  auto all_running = [&](bool idle) -> absl::Status {
    for (const auto& [id, device] : devices) {
      absl::StatusOr<DeviceState> state =
          idle ? device->GetState() : executor_->GetState(id);
      if (!state.ok() || *state != DeviceState::RUNNING) {
        return absl::InternalError(
            absl::StrCat("device ", id, " is ",
                         state.ok() ? StateName(*state) : Msg(state.status())));
      }
    }
    return absl::OkStatus();
  };
  if (status.ok()) status = all_running(/*idle=*/true);
  if (!status.ok()) {
    // After the commit point the only way is forward: the executor's walk
    // to RUNNING is group-ordered (every P2P device RUNNING_P2P before any
    // runs), waits out late arcs, and resets a device whose arc fails.
    if (planned) {
      spdlog::warn(
          "destination {}: {}; completing the resume (the commit is "
          "recorded: no rollback)",
          settings_.id, Msg(status));
    }
    RollbackReport report = executor_->Rollback();
    absl::MutexLock lock(&mu_);
    for (const DeviceRollback& r : report.devices) {
      DeviceRecord* d = FindDevice(r.device);
      if (d == nullptr) continue;
      d->state = r.final_state;
      d->was_reset = d->was_reset || r.was_reset;
      if (!r.error.empty()) d->error = r.error;
      if (r.was_reset) {
        warnings_.push_back(absl::StrCat(
            r.device,
            " was reset after the commit point: its migrated state is lost"));
      }
    }
    status = report.status;
  }
  if (status.ok()) status = all_running(/*idle=*/false);
  {
    absl::MutexLock lock(&mu_);
    if (status.ok()) {
      outcome_ = v1::MIGRATION_OUTCOME_SUCCEEDED;
    } else {
      outcome_ = v1::MIGRATION_OUTCOME_FAILED;
      error_ =
          absl::StrCat("committed, but not every device runs: ", Msg(status));
    }
  }
  // The workload starts only on devices that all run. After the commit
  // point a failure cannot hand the group back (the source never resumes
  // it): it is reported, and the devices keep running here. Load checked
  // that the action can start it (CheckStart), so this is rare.
  if (status.ok() && settings_.switchover != nullptr) {
    if (absl::Status s =
            settings_.switchover->Start(settings_.switchover_context);
        !s.ok()) {
      status = absl::Status(
          s.code(),
          absl::StrCat("switchover '",
                       std::string(settings_.switchover->name()),
                       "' could not start the workload (every device runs "
                       "here; start it by hand): ",
                       s.message()));
      absl::MutexLock lock(&mu_);
      outcome_ = v1::MIGRATION_OUTCOME_FAILED;
      error_ = absl::StrCat("committed, but ", Msg(status));
    }
  }
  CrashPoint("destination:resumed");
  Finish();
  if (status.ok()) {
    spdlog::info("destination {}: committed, every device RUNNING",
                 settings_.id);
  } else {
    spdlog::error("destination {}: committed, but {}", settings_.id,
                  Msg(status));
  }
}

v1::AbortResponse DestinationMigration::Abort(const std::string& reason) {
  AwaitRecovered();
  v1::AbortResponse response;
  auto refuse = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // Only a source before its commit point sends Abort; one that comes
    // after the commit is from a confused peer and must not undo it.
    spdlog::error("destination {}: abort ({}) refused: the commit is recorded",
                  settings_.id, reason);
    StatusesTo(response.mutable_devices());
    return response;
  };
  {
    absl::MutexLock lock(&mu_);
    if (committed_ || stage_ == Stage::kCommitting) return refuse();
    if (stage_ != Stage::kDone && !abort_requested_) {
      abort_requested_ = true;
      abort_reason_ = reason;
    }
  }
  absl::MutexLock op(&op_mu_);
  bool done;
  {
    absl::MutexLock lock(&mu_);
    if (committed_) return refuse();
    done = stage_ == Stage::kDone;
  }
  if (!done) {
    spdlog::warn("destination {}: abort: {}", settings_.id, reason);
    RollBackAndFinish(absl::CancelledError(reason),
                      v1::MIGRATION_OUTCOME_CANCELLED);
  }
  absl::MutexLock lock(&mu_);
  StatusesTo(response.mutable_devices());
  return response;
}

void DestinationMigration::AwaitRecovered() const {
  absl::MutexLock lock(&mu_);
  auto recovered = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stage_ != Stage::kRecovering;
  };
  mu_.Await(absl::Condition(&recovered));
}

void DestinationMigration::Recover(JournalStage stage,
                                   const v1::Migration& record) {
  absl::MutexLock op(&op_mu_);
  const std::string note = absl::StrCat(
      "recovered after a restart of the destination daemon (journal stage ",
      std::string(JournalStageName(stage)), ", phase ",
      v1::MigrationPhase_Name(record.phase()), ")");
  spdlog::warn("destination {}: {}", settings_.id, note);
  {
    absl::MutexLock lock(&mu_);
    recovered_ = true;
    load_started_ = true;  // whatever a STOP device holds is not its own
    for (const std::string& w : record.warnings()) warnings_.push_back(w);
    warnings_.push_back(note);
    for (const v1::MigrationDevice& md : record.devices()) {
      DeviceRecord* d = FindDevice(md.target_device_id());
      if (d == nullptr) continue;
      d->received.pre_copy_bytes = md.pre_copy_bytes();
      d->received.stop_copy_bytes = md.stop_copy_bytes();
      d->was_reset = md.was_reset();
      d->error = md.error();
    }
  }
  // The devices' real states, not the journal's: they may have moved since
  // the last record (an arc completes in the kernel even when its caller
  // dies).
  std::vector<std::string> not_stopped;
  {
    std::vector<std::string> ids;
    {
      absl::MutexLock lock(&mu_);
      for (const DeviceRecord& d : devices_) {
        ids.push_back(d.target.target_device_id);
      }
    }
    for (const std::string& id : ids) {
      absl::StatusOr<DeviceState> state = executor_->GetState(id);
      absl::MutexLock lock(&mu_);
      DeviceRecord* d = FindDevice(id);
      d->state = state.ok() ? *state : DeviceState::ERROR;
      if (d->state != DeviceState::STOP) {
        not_stopped.push_back(absl::StrCat(id, " is ", StateName(d->state)));
      }
    }
  }
  switch (stage) {
    case JournalStage::kLoaded:
      if (not_stopped.empty()) {
        absl::MutexLock lock(&mu_);
        stage_ = Stage::kLoaded;
        spdlog::warn(
            "destination {}: every device still holds the loaded state "
            "(STOP); waiting for the source's commit or abort",
            settings_.id);
        return;
      }
      {
        absl::MutexLock lock(&mu_);
        stage_ = Stage::kRollingBack;
      }
      RollBackAndFinish(
          absl::DataLossError(absl::StrCat(
              "the loaded state was lost while the daemon was down (",
              absl::StrJoin(not_stopped, ", "),
              "): the devices were closed and reset")),
          v1::MIGRATION_OUTCOME_FAILED);
      return;
    case JournalStage::kCommitted: {
      {
        absl::MutexLock lock(&mu_);
        committed_ = true;
        stage_ = Stage::kCommitting;
      }
      CompleteCommit(/*planned=*/false);
      return;
    }
    default: {
      {
        absl::MutexLock lock(&mu_);
        stage_ = Stage::kRollingBack;
      }
      RollBackAndFinish(
          absl::AbortedError(
              "interrupted by a restart of the destination daemon before "
              "the devices loaded the state"),
          v1::MIGRATION_OUTCOME_FAILED);
      return;
    }
  }
}

bool DestinationMigration::AbortIfOrphaned(absl::Time now) {
  auto orphaned = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stage_ == Stage::kReceiving && !abort_requested_ &&
           open_streams_ == 0 &&
           now - last_activity_ >= settings_.abort_timeout;
  };
  {
    absl::MutexLock lock(&mu_);
    if (!orphaned()) return false;
  }
  absl::MutexLock op(&op_mu_);
  std::string why;
  {
    absl::MutexLock lock(&mu_);
    // A stream or a Commit may have come in meanwhile.
    if (!orphaned()) return false;
    why = absl::StrCat(
        "orphaned: no stream, Commit or Abort from ", settings_.source_host,
        " for ", absl::FormatDuration(now - last_activity_), " (abort timeout ",
        absl::FormatDuration(settings_.abort_timeout), ")");
    abort_requested_ = true;
    abort_reason_ = why;
  }
  spdlog::warn("destination {}: {}; rolling back", settings_.id, why);
  RollBackAndFinish(absl::DeadlineExceededError(why),
                    v1::MIGRATION_OUTCOME_FAILED);
  return true;
}

std::string DestinationMigration::RollBackAndFinish(
    const absl::Status& why, v1::MigrationOutcome outcome) {
  {
    absl::MutexLock lock(&mu_);
    stage_ = Stage::kRollingBack;
    abort_requested_ = true;
    if (abort_reason_.empty()) abort_reason_ = Msg(why);
    if (error_.empty()) error_ = Msg(why);
    outcome_ = outcome;
    // Streams keep their own reference until they notice the abort.
    for (DeviceRecord& d : devices_) d.session.reset();
  }
  spdlog::warn("destination {}: rolling back: {}", settings_.id, Msg(why));
  DiscardResumes();
  RollbackReport report = executor_->Rollback();
  std::vector<std::pair<std::string, std::shared_ptr<Device>>> stuck;
  {
    absl::MutexLock lock(&mu_);
    for (const DeviceRollback& r : report.devices) {
      DeviceRecord* d = FindDevice(r.device);
      if (d == nullptr) continue;
      d->state = r.final_state;
      d->was_reset = d->was_reset || r.was_reset;
      if (!r.error.empty()) d->error = r.error;
    }
    for (const DeviceRecord& d : devices_) {
      if (d.state != DeviceState::RUNNING) {
        stuck.emplace_back(d.target.target_device_id, d.target.device);
      }
    }
  }
  // The executor resets a device found in ERROR or left unchanged by a
  // failed arc back; one that is still not RUNNING (a driver that keeps
  // refusing RESUMING -> STOP) must not stay half-resumed either. The
  // workers are idle now, so calling the device directly races nothing.
  for (const auto& [id, device] : stuck) {
    absl::Status reset = device->Reset();
    absl::StatusOr<DeviceState> state = device->GetState();
    spdlog::error(
        "destination {}: device {}: not RUNNING after rollback, "
        "reset: {}; now {}",
        settings_.id, id, reset.ok() ? "ok" : Msg(reset),
        state.ok() ? StateName(*state) : Msg(state.status()));
    absl::MutexLock lock(&mu_);
    DeviceRecord* d = FindDevice(id);
    d->was_reset = true;
    d->state = state.ok() ? *state : DeviceState::ERROR;
    if (!reset.ok()) d->error = absl::StrCat("reset failed: ", reset.message());
  }
  std::vector<std::string> summary;
  {
    absl::MutexLock lock(&mu_);
    for (const DeviceRecord& d : devices_) {
      summary.push_back(absl::StrCat(d.target.target_device_id, " ",
                                     StateName(d.state),
                                     d.was_reset ? " (reset)" : ""));
    }
  }
  Finish();
  spdlog::info("destination {}: rolled back: {}", settings_.id,
               absl::StrJoin(summary, ", "));
  return absl::StrJoin(summary, ", ");
}

void DestinationMigration::DiscardResumes() {
  std::vector<std::pair<std::string, std::shared_ptr<Device>>> devices;
  {
    absl::MutexLock lock(&mu_);
    for (const DeviceRecord& d : devices_) {
      devices.emplace_back(d.target.target_device_id, d.target.device);
    }
  }
  bool loaded;
  {
    absl::MutexLock lock(&mu_);
    loaded = load_started_;
  }
  for (const auto& [id, device] : devices) {
    // Every device, not only those recorded in RESUMING: a STOP -> RESUMING
    // arc that passed its deadline may have completed since. GetState runs
    // on the device's worker, after any call still in flight. Once loading
    // began, a device in STOP holds received state, which must not run.
    absl::StatusOr<DeviceState> state = executor_->GetState(id);
    if (!state.ok()) continue;
    if (*state != DeviceState::RESUMING &&
        !(loaded && *state == DeviceState::STOP)) {
      continue;
    }
    absl::Status reset = device->Reset();
    state = device->GetState();
    spdlog::info(
        "destination {}: device {}: discarded the received state "
        "(reset: {}; now {})",
        settings_.id, id, reset.ok() ? "ok" : Msg(reset),
        state.ok() ? StateName(*state) : Msg(state.status()));
    absl::MutexLock lock(&mu_);
    DeviceRecord* d = FindDevice(id);
    d->was_reset = true;
    d->state = state.ok() ? *state : DeviceState::ERROR;
    if (!reset.ok()) d->error = absl::StrCat("reset failed: ", reset.message());
  }
}

void DestinationMigration::Finish() {
  lease_.Release();
  // Every call has returned (Rollback and the commit waves wait for them),
  // so this only stops the idle workers: on a pool thread, where it does
  // not hold up the answer to Commit or Abort (a thread hop per worker).
  // The job keeps this migration alive too: the executor reports to it
  // (ExecutorObserver) until the last worker is gone.
  std::shared_ptr<TransitionExecutor> retired = std::move(executor_);
  try {
    WorkerThreads().Run(
        [retired = std::move(retired), self = shared_from_this()]() mutable {
          retired.reset();
        });
  } catch (const std::exception&) {
    // No thread: the job, never run, has stopped them here.
  }
  v1::MigrationOutcome outcome;
  {
    absl::MutexLock lock(&mu_);
    stage_ = Stage::kDone;
    finished_unix_ms_ = absl::ToUnixMillis(absl::Now());
    outcome = outcome_;
  }
  journal_->Finish(ToProto());
  // After the final record, which replaced any snapshot still queued.
  snapshot_hold_.Release();
  Metrics().MigrationFinished(MetricsRole::kDestination, OutcomeLabel(outcome));
  if (on_finished_) on_finished_(settings_.id);
}

bool DestinationMigration::finished() const {
  absl::MutexLock lock(&mu_);
  return stage_ == Stage::kDone;
}

}  // namespace vfiomig
