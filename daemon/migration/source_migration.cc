#include "daemon/migration/source_migration.h"

#include <algorithm>
#include <exception>
#include <map>
#include <string>
#include <thread>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "daemon/crash_point.h"
#include "daemon/datachannel/sender.h"
#include "daemon/engine/thread_name.h"
#include "daemon/engine/thread_pool.h"
#include "daemon/migration/device_identity.h"
#include "daemon/migration/source_internal.h"
#include "daemon/proto_convert.h"
#include "daemon/stream/header.h"
#include "spdlog/spdlog.h"
#include "vfiomig/v1/stream.pb.h"

namespace vfiomig {
namespace {

// Connecting a data channel, the destination's answer to the hello
// included. An unreachable channel costs at most this per candidate
// before the streams fall back to the peer link.
constexpr absl::Duration kDataChannelConnectTimeout = absl::Seconds(2);

}  // namespace

// Reports the executor's arcs into the tracker and the log. Runs on the
// migration thread (the executor calls it there).
class SourceMigration::Observer final : public ExecutorObserver {
 public:
  explicit Observer(SourceMigration* migration) : m_(migration) {}

  void SetWave(int wave, std::string phase) {
    wave_ = wave;
    phase_ = std::move(phase);
  }
  // From now on arcs stop the workload: the first one starts the downtime.
  void EnterDowntime() { downtime_ = true; }

  void OnArcStarted(const PlannedArc& arc) override {
    if (downtime_ && m_->downtime_start_ == absl::InfinitePast()) {
      m_->downtime_start_ = absl::Now();
    }
    spdlog::debug("migration {} device {}: {} started", m_->id(), arc.device,
                  ArcName(arc.from, arc.to));
  }

  void OnArcFinished(const ArcResult& result) override {
    DeviceRun* device = m_->Find(result.arc.device);
    if (device == nullptr) return;
    const std::string arc = ArcName(result.arc.from, result.arc.to);
    const int64_t ms = absl::ToInt64Milliseconds(result.elapsed);
    std::string message;
    if (result.status.ok()) {
      device->state = result.arc.to;
      const int64_t deadline =
          absl::ToInt64Milliseconds(m_->spec_.deadlines.For(
              result.arc.device, result.arc.from, result.arc.to));
      const std::string late =
          result.late ? absl::StrCat(", late: ", ms, " ms > ", deadline, " ms")
                      : "";
      message =
          absl::StrCat(device->id, " ", arc, " done in ", ms, " ms", late);
      spdlog::info("migration {} device {}: {} done in {} ms{}", m_->id(),
                   device->id, arc, ms, late);
    } else {
      message = absl::StrCat(device->id, " ", arc, " failed after ", ms,
                             " ms: ", result.status.message());
      spdlog::warn("migration {} device {}: {} failed after {} ms: {}",
                   m_->id(), device->id, arc, ms,
                   std::string(result.status.message()));
    }
    const DeviceState state = device->state;
    auto set_state = [&](v1::Migration& m) {
      SetState(m.mutable_devices(device->index), state);
    };
    if (result.status.ok() && !result.late) {
      // A progress event: rate-limited, so a wave of many fast arcs costs
      // a few events (each carries the whole resource) rather than one per
      // device; the wave's own event follows with every state.
      m_->tracker_->Progress(set_state, EventInfo(message, wave_, phase_));
      return;
    }
    m_->tracker_->Publish(set_state, EventInfo(message, wave_, phase_, true));
  }

  void OnArcLate(const PlannedArc& arc, absl::Duration elapsed,
                 absl::Duration deadline) override {
    const std::string message = absl::StrCat(
        arc.device, " ", ArcName(arc.from, arc.to), " late: still running at ",
        absl::ToInt64Milliseconds(elapsed), " ms, deadline ",
        absl::ToInt64Milliseconds(deadline),
        " ms; waiting for it (mandatory policy)");
    spdlog::warn("migration {} device {}: {}", m_->id(), arc.device, message);
    m_->tracker_->Publish([&](v1::Migration& m) { m.add_warnings(message); },
                          EventInfo(message, wave_, phase_, true));
  }

  void OnDeviceReset(const std::string& device,
                     const absl::Status& why) override {
    DeviceRun* run = m_->Find(device);
    const std::string message =
        absl::StrCat(device, " needed VFIO_DEVICE_RESET: ", why.message());
    spdlog::error("migration {} device {}: {}", m_->id(), device, message);
    m_->tracker_->Publish(
        [&](v1::Migration& m) {
          m.add_warnings(message);
          if (run != nullptr)
            m.mutable_devices(run->index)->set_was_reset(true);
        },
        EventInfo(message, wave_, phase_, true));
  }

 private:
  SourceMigration* m_;
  int wave_ = 0;
  std::string phase_;
  bool downtime_ = false;
};

SourceMigration::SourceMigration(SourceMigrationSpec spec,
                                 std::shared_ptr<MigrationTracker> tracker)
    : spec_(std::move(spec)),
      tracker_(std::move(tracker)),
      observer_(std::make_unique<Observer>(this)) {
  for (size_t i = 0; i < spec_.devices.size(); ++i) {
    auto run = std::make_unique<DeviceRun>();
    run->index = static_cast<int>(i);
    run->device = spec_.devices[i];
    run->id = run->device->info().id;
    run->target = spec_.target_ids[i];
    by_id_[run->id] = run.get();
    devices_.push_back(std::move(run));
  }
}

SourceMigration::~SourceMigration() {
  Cancel("the daemon is shutting down");
  Join();
}

void SourceMigration::Start() {
  thread_ = std::thread([this] {
    NameThisThread("migd-migrate");
    Run();
  });
}

void SourceMigration::Shutdown() {
  shutting_down_.store(true);
  Cancel("the daemon is shutting down");
  absl::MutexLock lock(&mu_);
  stop_waiting_ = true;
  // Breaks a Commit call in flight after the commit point (Cancel leaves
  // it alone): the next start sends it again.
  if (handed_over_ && peer_ != nullptr) peer_->CancelPending();
}

void SourceMigration::Join() {
  if (thread_.joinable()) thread_.join();
}

void SourceMigration::Cancel(const std::string& reason) {
  if (tracker_->finished()) return;
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_.load()) return;
    cancel_reason_ = reason;
  }
  cancelled_.store(true);
  // Paired with Migrate's store of committing_ and load of cancelled_: one
  // of the two threads sees the other's flag.
  if (committing_.load()) {
    spdlog::warn("migration {}: cancel ({}) too late: commit in progress",
                 spec_.id, reason);
    return;
  }
  spdlog::info("migration {}: cancelling: {}", spec_.id, reason);
  spec_.switchover->Cancel();
  StopStreams();
  absl::MutexLock lock(&mu_);
  if (peer_ != nullptr) peer_->CancelPending();
}

absl::Status SourceMigration::ProceedSwitchover() {
  if (tracker_->finished()) {
    return absl::FailedPreconditionError(
        absl::StrCat("migration ", spec_.id, " has finished"));
  }
  return spec_.switchover->Proceed();
}

SwitchoverContext SourceMigration::MakeSwitchoverContext() const {
  SwitchoverContext context;
  context.migration_id = spec_.id;
  context.destination = spec_.destination;
  for (const auto& d : devices_) context.devices.push_back(d->id);
  context.vmm_socket = spec_.source_vmm_socket;
  context.domain = spec_.domain;
  context.timeout = spec_.switchover_timeout;
  return context;
}

void SourceMigration::EnterRollback() { observer_->SetWave(0, "rollback"); }

SourceMigration::DeviceRun* SourceMigration::Find(const std::string& id) {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

void SourceMigration::Run() {
  spdlog::info(
      "migration {}: source of {} to {} ({} policy, drain {} ms, arc "
      "{} ms)",
      spec_.id, DeviceList(), spec_.destination,
      spec_.policy == DeadlinePolicy::kSla ? "sla" : "mandatory",
      absl::ToInt64Milliseconds(spec_.deadlines.drain),
      absl::ToInt64Milliseconds(spec_.deadlines.arc));
  absl::Cleanup release_snapshots = [this] { snapshot_hold_.Release(); };
  if (spec_.recover_from.has_value()) {
    Recover();
    return;
  }
  absl::Status status;
  try {
    status = Migrate();
    if (status.ok()) status = HandOver();
  } catch (const std::exception& e) {
    // Nothing here throws by design; if a library does, roll back anyway
    // (HandOver sets handed_over_ only once nothing can throw any more).
    status =
        absl::InternalError(absl::StrCat("unexpected exception: ", e.what()));
  }
  if (!status.ok()) {
    Fail(status);
    return;
  }
  CompleteHandOver();
}

std::string SourceMigration::DeviceList() const {
  std::vector<std::string> parts;
  for (const auto& d : devices_) {
    parts.push_back(d->id == d->target ? d->id
                                       : absl::StrCat(d->id, "->", d->target));
  }
  return absl::StrJoin(parts, ",");
}

absl::Status SourceMigration::Migrate() {
  tracker_->Publish(
      [](v1::Migration& m) { m.set_phase(v1::MIGRATION_PHASE_PREPARING); },
      EventInfo(absl::StrCat("preparing destination ", spec_.destination)));
  if (absl::Status s = PrepareDestination(); !s.ok()) return s;
  if (absl::Status s = OpenStreams(); !s.ok()) return s;
  if (absl::Status s = CheckContinue(); !s.ok()) return s;
  // Its device workers run on threads the daemon started in advance
  // (WorkerThreads()), so building it here costs no thread start-up.
  executor_ = MakeExecutor();

  const std::vector<Wave>& waves = spec_.plan.source;
  // stop-after-copy only closes the source's save sessions: nothing on the
  // destination waits for it, so it starts as soon as the stop-copy data is
  // sent, and the destination's stream summaries and Load are awaited
  // beside it (all three waits are inside the downtime window).
  const bool tidy_last =
      !waves.empty() && waves.back().phase == WavePhase::kStopAfterCopy;
  const size_t before_load = tidy_last ? waves.size() - 1 : waves.size();
  // The stop-copy wave whose summaries Load waits for, if any (1-based).
  int unconfirmed_wave = 0;
  bool switched = false;
  for (size_t i = 0; i < before_load; ++i) {
    const int wave = static_cast<int>(i) + 1;
    if (waves[i].phase != WavePhase::kPreCopy && !switched) {
      if (absl::Status s = Switchover(wave); !s.ok()) return s;
      switched = true;
      observer_->EnterDowntime();
      if (spec_.journal != nullptr) {
        snapshot_hold_ = spec_.journal->HoldSnapshots(kDowntimeSnapshotHold);
      }
    }
    if (absl::Status s = CheckContinue(); !s.ok()) return s;
    if (absl::Status s = RunWave(i); !s.ok()) return s;
    CrashPoint(absl::StrCat("source:wave:",
                            std::string(WavePhaseName(waves[i].phase))));
    if (waves[i].phase == WavePhase::kPreCopy) {
      if (absl::Status s = RunPrecopy(wave); !s.ok()) return s;
    } else if (waves[i].phase == WavePhase::kStopCopy) {
      const bool last = tidy_last && i + 1 == before_load;
      if (absl::Status s = last ? PumpStopCopy(wave) : StreamStopCopy(wave);
          !s.ok()) {
        return s;
      }
      if (last) unconfirmed_wave = wave;
    }
  }

  committing_.store(true);
  if (absl::Status s = CheckContinue(); !s.ok()) return s;
  PeerClient* peer = StartLoad(/*overlapped=*/tidy_last);
  if (!tidy_last) {
    for (const auto& d : devices_) d->session.reset();
    return CheckLoaded(SendLoad(*peer));
  }
  // Off this thread, in order: the summaries of the stop-copy streams, then
  // Load if they all came. Calls only: the tracker and the devices stay
  // with this thread, which closes the save sessions meanwhile.
  const std::vector<DeviceRun*> all = AllDevices();
  std::vector<absl::Status> summaries(all.size());
  absl::Time confirmed;
  absl::StatusOr<v1::LoadResponse> loaded =
      absl::UnavailableError("Load was not sent");
  auto confirm_and_load = [&] {
    if (unconfirmed_wave != 0) {
      summaries = CollectSummaries(all);
      confirmed = absl::Now();
    }
    for (const absl::Status& s : summaries) {
      if (!s.ok()) return;
    }
    loaded = SendLoad(*peer);
  };
  // A Mutex, not a Notification: ThreadSanitizer sees its ordering.
  absl::Mutex side_mu;
  bool side_done = false;
  bool beside = true;
  try {
    WorkerThreads().Run([&] {
      NameThisThread("migd-load");
      confirm_and_load();
      absl::MutexLock lock(&side_mu);
      side_done = true;
    });
  } catch (const std::exception& e) {
    spdlog::warn("migration {}: no thread for Load ({}): loading first",
                 spec_.id, e.what());
    beside = false;
    confirm_and_load();
  }
  absl::Status tidied = RunWave(waves.size() - 1);
  if (beside) {
    absl::MutexLock lock(&side_mu);
    side_mu.Await(absl::Condition(&side_done));
  }
  for (const auto& d : devices_) d->session.reset();
  if (unconfirmed_wave != 0) {
    streaming_time_ += confirmed - stop_copy_start_;
    if (absl::Status s = FirstCause(all, summaries); !s.ok()) return s;
    ReportStopCopy(unconfirmed_wave, confirmed);
  }
  // A failed stop-after-copy still fails the migration (the destination,
  // loaded or not, gets the Abort): the source's devices must be where the
  // plan says before it gives them up.
  if (!tidied.ok()) return tidied;
  CrashPoint("source:wave:stop-after-copy");
  tracker_->Publish(
      [](v1::Migration& m) { m.set_phase(v1::MIGRATION_PHASE_COMMITTING); },
      EventInfo(loaded.ok() ? "every destination device loaded its state"
                            : "the destination's load failed"));
  return CheckLoaded(std::move(loaded));
}

PeerClient* SourceMigration::StartLoad(bool overlapped) {
  tracker_->Publish(
      [&](v1::Migration& m) {
        // The last wave's phase until it is done.
        if (!overlapped) m.set_phase(v1::MIGRATION_PHASE_COMMITTING);
      },
      EventInfo(overlapped ? "loading: every destination device loads its "
                             "state while the source closes its sessions"
                           : "loading: every destination device loads its "
                             "state"));
  load_sent_ = true;
  absl::MutexLock lock(&mu_);
  return peer_.get();
}

absl::StatusOr<v1::LoadResponse> SourceMigration::SendLoad(PeerClient& peer) {
  return peer.Load(spec_.id, spec_.peer_timeout +
                                 DestinationBudget({WavePhase::kResumeStop}));
}

absl::Status SourceMigration::CheckLoaded(
    absl::StatusOr<v1::LoadResponse> response) {
  if (!response.ok()) return response.status();
  std::vector<std::string> not_stopped;
  for (const v1::DeviceStatus& device : response->devices()) {
    if (device.state() != v1::DEVICE_STATE_STOP) {
      not_stopped.push_back(
          absl::StrCat(device.device_id(), " ", device.state_name()));
    }
  }
  if (!not_stopped.empty() ||
      response->devices_size() != static_cast<int>(devices_.size())) {
    return absl::InternalError(
        absl::StrCat("destination loaded, but not every device is STOP: ",
                     absl::StrJoin(not_stopped, ", ")));
  }
  CrashPoint("source:loaded");
  return absl::OkStatus();
}

absl::Status SourceMigration::HandOver() {
  if (spec_.journal != nullptr) {
    absl::Status s = spec_.journal->Update(
        [](JournalEntry& e) {
          e.stage = JournalStage::kHandedOver;
          e.pending = PeerVerdict::kCommit;
        },
        Durability::kDurable);
    if (!s.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "cannot record the hand-over in the journal, so the group stays "
          "here: ",
          s.message()));
    }
  }
  {
    absl::MutexLock lock(&mu_);
    handed_over_ = true;
  }
  spdlog::info(
      "migration {}: commit point: hand-over recorded; the devices belong to "
      "the destination now",
      spec_.id);
  tracker_->Publish(
      [](v1::Migration& m) { m.set_handed_over(true); },
      EventInfo("commit point: hand-over recorded; committing on the "
                "destination"));
  CrashPoint("source:handed-over");
  return absl::OkStatus();
}

void SourceMigration::CompleteHandOver() {
  absl::StatusOr<v1::CommitResponse> response = DeliverCommit();
  commit_done_ = absl::Now();
  if (!response.ok() && shutting_down_.load()) {
    spdlog::warn(
        "migration {}: stopping before the destination confirmed the "
        "commit; the next start of the daemon sends it again",
        spec_.id);
    return;
  }
  if (!response.ok()) {
    FinishUnresumed(response.status(), nullptr);
    return;
  }
  CrashPoint("source:committed");
  for (const v1::DeviceStatus& device : response->devices()) {
    if (device.state() != v1::DEVICE_STATE_RUNNING) {
      FinishUnresumed(absl::InternalError(absl::StrCat(
                          "destination committed, but device ",
                          device.device_id(), " is ", device.state_name(),
                          device.error().empty() ? "" : ": ", device.error())),
                      &*response);
      return;
    }
  }
  Succeed(*response);
}

absl::StatusOr<v1::CommitResponse> SourceMigration::DeliverCommit() {
  absl::Duration budget = DestinationBudget(kCommitWaves);
  if (spec_.plan.destination.empty()) {
    // Recovery has no plan: room for a drain and an arc per device wave.
    budget = 2 * (spec_.deadlines.drain + spec_.deadlines.arc);
  }
  const absl::Duration timeout = spec_.peer_timeout + budget;
  absl::Duration backoff = absl::Milliseconds(200);
  for (int attempt = 1;; ++attempt) {
    PeerClient* peer;
    {
      absl::MutexLock lock(&mu_);
      if (stop_waiting_) {
        return absl::AbortedError("the daemon is shutting down");
      }
      // A fresh connection after a failure: the destination may be a new
      // process by now, and the old channel may sit in reconnect backoff.
      if (peer_ == nullptr || attempt > 1) {
        peer_ = PeerClient::Connect(spec_.destination, spec_.peer_credentials);
      }
      peer = peer_.get();
    }
    absl::StatusOr<v1::CommitResponse> response =
        peer->Commit(spec_.id, timeout);
    if (response.ok()) return response;
    switch (response.status().code()) {
      case absl::StatusCode::kFailedPrecondition:
      case absl::StatusCode::kNotFound:
      case absl::StatusCode::kInvalidArgument:
      case absl::StatusCode::kUnimplemented:
        // The destination answered: it has nothing to commit.
        return response.status();
      default:
        break;
    }
    if (attempt == 1 || attempt % 10 == 0) {
      const std::string message =
          absl::StrCat("commit not confirmed yet (attempt ", attempt,
                       "): ", response.status().message(), "; retrying");
      spdlog::warn("migration {}: {}", spec_.id, message);
      tracker_->Publish([](v1::Migration&) {}, EventInfo(message, true));
    }
    absl::MutexLock lock(&mu_);
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_waiting_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&stop), backoff);
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

void SourceMigration::Recover() {
  const JournalStage stage = *spec_.recover_from;
  const std::string note = absl::StrCat(
      "recovering after a restart of the source daemon (journal stage ",
      std::string(JournalStageName(stage)), ")");
  spdlog::warn("migration {}: {}", spec_.id, note);
  prepare_sent_ = true;
  prepared_ = true;
  load_sent_ = true;
  paused_ = spec_.workload_paused;
  if (paused_) spec_.switchover->AssumePaused();
  {
    absl::MutexLock lock(&mu_);
    peer_ = PeerClient::Connect(spec_.destination, spec_.peer_credentials);
  }
  executor_ = MakeExecutor();
  for (const auto& d : devices_) {
    absl::StatusOr<DeviceState> state = executor_->GetState(d->id);
    d->state = state.ok() ? *state : DeviceState::ERROR;
  }
  tracker_->Publish(
      [&](v1::Migration& m) {
        m.set_recovered(true);
        m.add_warnings(note);
        for (const auto& d : devices_) {
          SetState(m.mutable_devices(d->index), d->state);
        }
      },
      EventInfo(note, true));
  if (stage != JournalStage::kHandedOver) {
    Fail(absl::AbortedError(
        "interrupted by a restart of the source daemon before the commit "
        "point"));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    handed_over_ = true;
  }
  committing_.store(true);
  // The hand-over is recorded: the devices stay stopped. A save session
  // that died with the old daemon leaves its device in STOP_COPY; STOP is
  // where a device that no longer runs belongs.
  Wave close;
  close.phase = WavePhase::kStopAfterCopy;
  for (const auto& d : devices_) {
    if (d->state == DeviceState::STOP_COPY) {
      close.arcs.push_back(PlannedArc{.device = d->id,
                                      .from = DeviceState::STOP_COPY,
                                      .to = DeviceState::STOP});
    }
  }
  if (!close.arcs.empty()) {
    observer_->SetWave(0, "recovery");
    WaveResult result = executor_->RunWave(close);
    if (!result.status.ok()) {
      spdlog::warn("migration {}: closing save sessions: {}", spec_.id,
                   std::string(result.status.message()));
    }
  }
  tracker_->Publish(
      [](v1::Migration& m) {
        m.set_handed_over(true);
        m.set_phase(v1::MIGRATION_PHASE_COMMITTING);
      },
      EventInfo("the hand-over was recorded before the restart: committing "
                "on the destination"));
  CompleteHandOver();
}

std::unique_ptr<TransitionExecutor> SourceMigration::MakeExecutor() {
  std::map<std::string, std::shared_ptr<Device>> devices;
  for (const auto& d : devices_) devices[d->id] = d->device;
  return std::make_unique<TransitionExecutor>(std::move(devices),
                                              spec_.deadlines, spec_.policy,
                                              observer_.get(), spec_.id);
}

absl::Status SourceMigration::PrepareDestination() {
  v1::PrepareRequest request;
  request.set_migration_id(spec_.id);
  request.set_source_host(spec_.source_host);
  request.mutable_plan_options()->set_allow_no_p2p(
      spec_.plan_options.allow_no_p2p);
  request.set_policy(spec_.policy == DeadlinePolicy::kSla
                         ? v1::DEADLINE_POLICY_SLA
                         : v1::DEADLINE_POLICY_MANDATORY);
  request.set_drain_timeout_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(spec_.deadlines.drain)));
  request.set_arc_timeout_ms(
      static_cast<uint32_t>(absl::ToInt64Milliseconds(spec_.deadlines.arc)));
  // What the destination needs to start the workload after the commit;
  // the source's own socket stays here.
  v1::Workload* workload = request.mutable_workload();
  workload->set_domain(spec_.domain);
  workload->set_switchover(std::string(spec_.switchover->name()));
  workload->set_destination_qmp_socket(spec_.destination_vmm_socket);
  workload->set_switchover_timeout_ms(static_cast<uint32_t>(
      absl::ToInt64Milliseconds(spec_.switchover_timeout)));
  for (const auto& d : devices_) {
    absl::StatusOr<uint64_t> size = d->device->StopCopySize();
    if (!size.ok()) {
      failed_device_ = d->id;
      return absl::Status(
          size.status().code(),
          absl::StrCat(d->id, ": stop-copy size: ", size.status().message()));
    }
    d->header.source_host = spec_.source_host;
    d->header.migration_id = spec_.id;
    d->header.device = DeviceIdentityOf(d->device->info());
    d->header.stop_copy_bytes = *size;
    absl::StatusOr<std::string> payload =
        stream::EncodeHeaderPayload(d->header);
    if (!payload.ok()) return payload.status();
    v1::PeerDevice* peer_device = request.add_devices();
    peer_device->set_source_device_id(d->id);
    peer_device->set_target_device_id(d->target);
    if (auto own = spec_.deadlines.by_device.find(d->id);
        own != spec_.deadlines.by_device.end()) {
      peer_device->set_drain_timeout_ms(
          static_cast<uint32_t>(absl::ToInt64Milliseconds(own->second.drain)));
      peer_device->set_arc_timeout_ms(
          static_cast<uint32_t>(absl::ToInt64Milliseconds(own->second.arc)));
    }
    // The same bytes the HEADER frame will carry.
    if (!peer_device->mutable_header()->ParseFromString(*payload)) {
      return absl::InternalError("stream header does not round-trip");
    }
  }
  PeerClient* peer;
  {
    absl::MutexLock lock(&mu_);
    peer_ = PeerClient::Connect(spec_.destination, spec_.peer_credentials);
    peer = peer_.get();
    if (cancelled_.load()) peer_->CancelPending();
  }
  prepare_sent_ = true;
  const absl::Duration timeout =
      spec_.peer_timeout + DestinationBudget(kPrepareWaves);
  absl::StatusOr<v1::PrepareResponse> response =
      peer->Prepare(request, timeout);
  if (!response.ok()) return response.status();
  if (!response->ready()) {
    std::vector<std::string> refusals;
    tracker_->Publish(
        [&](v1::Migration& m) {
          for (const v1::DeviceVerdict& verdict : response->verdicts()) {
            if (verdict.accepted()) continue;
            refusals.push_back(absl::StrCat(verdict.target_device_id(), ": ",
                                            verdict.reason()));
            for (const auto& d : devices_) {
              if (d->target != verdict.target_device_id()) continue;
              if (failed_device_.empty()) failed_device_ = d->id;
              m.mutable_devices(d->index)->set_error(verdict.reason());
            }
          }
        },
        EventInfo("destination refused the migration", true));
    if (refusals.empty()) refusals.push_back("no reason given");
    return absl::FailedPreconditionError(
        absl::StrCat("destination ", spec_.destination,
                     " refused: ", absl::StrJoin(refusals, "; ")));
  }
  prepared_ = true;
  if (spec_.data_channel) data_channel_offer_ = response->data_channel();
  spdlog::info("migration {}: destination {} prepared {} devices", spec_.id,
               spec_.destination, devices_.size());
  tracker_->Publish(
      [](v1::Migration&) {},
      EventInfo(absl::StrCat("destination prepared: ", devices_.size(),
                             " devices in RESUMING")));
  return absl::OkStatus();
}

absl::Status SourceMigration::OpenStreams() {
  PeerClient* peer;
  {
    absl::MutexLock lock(&mu_);
    peer = peer_.get();
    for (const auto& d : devices_) {
      d->stream =
          std::make_unique<DeviceStream>(spec_.id, d->id, d->target, d->header);
      if (stop_.load()) d->stream->Cancel();
    }
  }
  std::vector<DeviceRun*> all;
  for (const auto& d : devices_) all.push_back(d.get());
  if (all.empty()) return absl::OkStatus();
  // The first stream finds out whether the data channel the destination
  // offered (if any) can be reached; the others then use what it found.
  if (absl::Status s = OpenFirstStream(*all.front(), *peer); !s.ok()) {
    failed_device_ = all.front()->id;
    return s;
  }
  all.erase(all.begin());
  // Each Open waits for the call or connection to start and the HEADER to
  // leave; opened a few at a time those waits overlap (a group of many
  // small devices spent most of its orchestration time here).
  return ForEachDevice(all, [&](DeviceRun& d) { return OpenStream(d, *peer); });
}

datachannel::Hello SourceMigration::HelloFor(const DeviceRun& device) const {
  datachannel::Hello hello;
  const std::string& token = data_channel_offer_.token();
  std::copy_n(token.begin(), std::min(token.size(), hello.token.size()),
              hello.token.begin());
  hello.migration_id = spec_.id;
  hello.target_device_id = device.target;
  return hello;
}

absl::Status SourceMigration::OpenFirstStream(DeviceRun& device,
                                              PeerClient& peer) {
  std::vector<std::string> failures;
  for (const datachannel::Target& target : datachannel::DataChannelTargets(
           data_channel_offer_, spec_.destination)) {
    absl::StatusOr<std::unique_ptr<FrameTransport>> transport =
        datachannel::OpenDataConnection(target.host, target.port,
                                        HelloFor(device),
                                        kDataChannelConnectTimeout);
    if (transport.ok()) {
      data_channel_target_ = target;
      spdlog::info("migration {}: streaming over the data channel {}:{}",
                   spec_.id, target.host, target.port);
      return device.stream->Open(*std::move(transport));
    }
    failures.push_back(absl::StrCat(target.host, ":", target.port, ": ",
                                    transport.status().message()));
  }
  if (!failures.empty()) {
    spdlog::warn(
        "migration {}: data channel unusable ({}); streaming over the peer "
        "link instead",
        spec_.id, absl::StrJoin(failures, "; "));
  }
  return device.stream->Open(peer.stub());
}

absl::Status SourceMigration::OpenStream(DeviceRun& device, PeerClient& peer) {
  if (data_channel_target_.has_value()) {
    const datachannel::Target& target = *data_channel_target_;
    absl::StatusOr<std::unique_ptr<FrameTransport>> transport =
        datachannel::OpenDataConnection(target.host, target.port,
                                        HelloFor(device),
                                        kDataChannelConnectTimeout);
    if (transport.ok()) return device.stream->Open(*std::move(transport));
    // This device's state takes the peer link; the destination accepts
    // either for any device.
    spdlog::warn(
        "migration {} device {}: data channel {}:{}: {}; streaming over the "
        "peer link instead",
        spec_.id, device.id, target.host, target.port,
        std::string(transport.status().message()));
  }
  return device.stream->Open(peer.stub());
}

absl::Status SourceMigration::RunWave(size_t index) {
  const Wave& wave = spec_.plan.source[index];
  const int number = static_cast<int>(index) + 1;
  const std::string phase(WavePhaseName(wave.phase));
  observer_->SetWave(number, phase);
  tracker_->Publish(
      [&](v1::Migration& m) { m.set_phase(MigrationPhaseOf(wave.phase)); },
      EventInfo(absl::StrCat("wave ", number, " ", phase,
                             " started: ", wave.arcs.size(), " arcs"),
                number, phase));
  const absl::Time start = absl::Now();
  WaveResult result = executor_->RunWave(wave);
  const absl::Duration elapsed = absl::Now() - start;
  for (ArcResult& arc : result.arcs) {
    if (arc.session == nullptr) continue;
    if (DeviceRun* device = Find(arc.arc.device)) {
      device->session = std::move(arc.session);
    }
  }
  measured_wave_time_ += elapsed;
  ++measured_waves_;
  if (!result.status.ok()) {
    if (result.failed_arc.has_value()) {
      failed_device_ = result.failed_arc->device;
      failed_arc_ = ArcName(result.failed_arc->from, result.failed_arc->to);
    }
    return result.status;
  }
  tracker_->Publish(
      [](v1::Migration&) {},
      EventInfo(absl::StrCat("wave ", number, " ", phase, " done in ",
                             absl::ToInt64Milliseconds(elapsed), " ms"),
                number, phase));
  return absl::OkStatus();
}

absl::Status SourceMigration::CheckContinue() {
  if (cancelled_.load()) {
    absl::MutexLock lock(&mu_);
    return absl::CancelledError(absl::StrCat("cancelled: ", cancel_reason_));
  }
  if (prepared_) {
    absl::MutexLock lock(&mu_);
    if (peer_ != nullptr && !peer_->Connected()) {
      return absl::UnavailableError(absl::StrCat("connection to destination ",
                                                 spec_.destination, " lost"));
    }
  }
  return absl::OkStatus();
}

absl::Duration SourceMigration::DestinationBudget(
    std::initializer_list<WavePhase> phases) const {
  absl::Duration budget = absl::ZeroDuration();
  for (const Wave& wave : spec_.plan.destination) {
    if (std::find(phases.begin(), phases.end(), wave.phase) == phases.end()) {
      continue;
    }
    absl::Duration longest = absl::ZeroDuration();
    for (const PlannedArc& arc : wave.arcs) {
      longest =
          std::max(longest, spec_.deadlines.For(arc.device, arc.from, arc.to));
    }
    budget += longest;
  }
  return budget;
}

}  // namespace vfiomig
