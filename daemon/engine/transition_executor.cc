#include "daemon/engine/transition_executor.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "daemon/engine/device_worker.h"
#include "daemon/engine/rollback_driver.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

// Debian's abseil has its own string_view type; std views cross through this.
absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }

// How often a caller that waits without a deadline says so in the log.
constexpr absl::Duration kWarnEvery = absl::Seconds(1);
// How often a mandatory wave reminds the log of an arc it keeps waiting for:
// an evacuation stuck on one device must stay visible, without flooding.
constexpr absl::Duration kRemindEvery = absl::Seconds(5);

std::string DeadlineKind(const PlannedArc& arc) {
  return IsDrainArc(arc.from, arc.to) ? "drain timeout" : "arc timeout";
}

// "gpu0: RUNNING>RUNNING_P2P", the prefix of every message about an arc.
std::string ArcLabel(const PlannedArc& arc) {
  return absl::StrCat(arc.device, ": ", ArcName(arc.from, arc.to));
}

// The backend's status with the device and arc in front; the code is kept
// so that callers can still tell a refused arc from a broken device.
absl::Status ArcFailed(const PlannedArc& arc, const DeviceCall& call) {
  const std::string label = ArcLabel(arc);
  // Backends that already name the device and arc are not named twice.
  std::string text =
      absl::StartsWith(call.status.message(), label)
          ? std::string(call.status.message())
          : absl::StrCat(label, " failed: ", call.status.message());
  if (call.state.ok()) {
    absl::StrAppend(&text, "; GET says ",
                    AbslView(DeviceStateName(*call.state)));
  } else {
    absl::StrAppend(&text, "; GET failed too: ", call.state.status().message());
  }
  return absl::Status(call.status.code(), text);
}

}  // namespace

TransitionExecutor::TransitionExecutor(
    std::map<std::string, std::shared_ptr<Device>> devices,
    ArcDeadlines deadlines, DeadlinePolicy policy, ExecutorObserver* observer,
    std::string migration_id)
    : deadlines_(deadlines),
      policy_(policy),
      observer_(observer),
      migration_id_(std::move(migration_id)) {
  for (auto& [id, device] : devices) {
    if (device == nullptr) {
      // Arcs for it then fail as for an unknown device.
      spdlog::error("[{}] {}: no device object; it cannot be driven",
                    migration_id_, id);
      continue;
    }
    workers_.emplace(
        id, std::make_unique<DeviceWorker>(id, std::move(device), &mu_));
  }
}

TransitionExecutor::~TransitionExecutor() {
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    for (const auto& [id, worker] : workers_) {
      if (std::shared_ptr<const DeviceCall> call = worker->Current()) {
        spdlog::warn("[{}] {}: executor waits for {} to return (running {})",
                     migration_id_, id, call->Describe(),
                     Millis(now - call->started));
      }
    }
  }
  // Each worker joins its thread: a hung call is waited for, so the device
  // is never handed to anyone else mid-arc.
  workers_.clear();
}

WaveResult TransitionExecutor::RunWave(const Wave& wave) {
  const size_t n = wave.arcs.size();
  WaveResult result;
  result.arcs.resize(n);
  for (size_t i = 0; i < n; ++i) result.arcs[i].arc = wave.arcs[i];
  const std::string_view phase = WavePhaseName(wave.phase);

  // Check every arc, then post all of them in the same critical section: a
  // wave starts whole or not at all.
  std::vector<std::shared_ptr<DeviceCall>> calls(n);
  absl::Status refused;
  size_t refused_at = 0;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    std::vector<DeviceWorker*> workers(n, nullptr);
    for (size_t i = 0; i < n && refused.ok(); ++i) {
      const PlannedArc& arc = wave.arcs[i];
      auto it = workers_.find(arc.device);
      if (it == workers_.end()) {
        refused = absl::InvalidArgumentError(
            absl::StrCat(ArcLabel(arc), ": no such device in this migration"));
      } else if (std::find(workers.begin(), workers.end(), it->second.get()) !=
                 workers.end()) {
        refused = absl::InvalidArgumentError(absl::StrCat(
            ArcLabel(arc), ": a second arc for the device in wave ",
            AbslView(phase)));
      } else if (!it->second->Idle()) {
        std::shared_ptr<const DeviceCall> busy = it->second->Current();
        refused = absl::FailedPreconditionError(absl::StrCat(
            ArcLabel(arc), ": not started, the device's previous call ",
            busy ? absl::StrCat(busy->Describe(), " has not returned after ",
                                Millis(now - busy->started))
                 : std::string("is still queued")));
      }
      if (!refused.ok()) {
        refused_at = i;
      } else {
        workers[i] = it->second.get();
      }
    }
    for (size_t i = 0; i < n && refused.ok(); ++i) {
      const PlannedArc& arc = wave.arcs[i];
      auto call = std::make_shared<DeviceCall>();
      call->kind = CallKind::kSetState;
      call->device = arc.device;
      call->from = arc.from;
      call->to = arc.to;
      call->started = now;
      call->deadline = deadlines_.For(arc.device, arc.from, arc.to);
      workers[i]->Post(call);
      calls[i] = std::move(call);
    }
  }

  if (!refused.ok()) {
    spdlog::warn("[{}] wave {} refused: {}", migration_id_, phase,
                 std::string(refused.message()));
    for (size_t i = 0; i < n; ++i) {
      result.arcs[i].status =
          i == refused_at
              ? refused
              : absl::AbortedError(absl::StrCat(ArcLabel(wave.arcs[i]),
                                                ": not started, the wave was "
                                                "refused: ",
                                                refused.message()));
    }
    result.status = refused;
    result.failed_arc = wave.arcs[refused_at];
    return result;
  }

  for (size_t i = 0; i < n; ++i) {
    spdlog::debug("[{}] {}: {} started (wave {}, deadline {})", migration_id_,
                  wave.arcs[i].device,
                  ArcName(wave.arcs[i].from, wave.arcs[i].to), phase,
                  Millis(calls[i]->deadline));
    if (observer_ != nullptr) observer_->OnArcStarted(wave.arcs[i]);
  }

  std::vector<bool> reported(n, false);  // finished and handled
  std::vector<bool> late(n, false);      // deadline passed and handled
  // kMandatory: when a late arc is next mentioned in the log.
  std::vector<absl::Time> remind(n, absl::InfiniteFuture());
  size_t remaining = n;
  std::optional<size_t> failed;
  absl::Time now = absl::Now();
  while (remaining > 0 && !failed.has_value()) {
    std::vector<size_t> finished;
    std::vector<size_t> newly_late;
    std::vector<size_t> reminders;
    {
      absl::MutexLock lock(&mu_);
      auto any_finished = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        for (size_t i = 0; i < n; ++i) {
          if (!reported[i] && calls[i]->done) return true;
        }
        return false;
      };
      // Under kMandatory a late arc has no deadline left, only reminders.
      absl::Time wake = absl::InfiniteFuture();
      for (size_t i = 0; i < n; ++i) {
        if (reported[i]) continue;
        wake = std::min(
            wake, late[i] ? remind[i] : calls[i]->started + calls[i]->deadline);
      }
      mu_.AwaitWithDeadline(absl::Condition(&any_finished), wake);
      now = absl::Now();
      for (size_t i = 0; i < n; ++i) {
        if (reported[i]) continue;
        if (calls[i]->done) {
          finished.push_back(i);
          reported[i] = true;
          --remaining;
        } else if (!late[i] && now >= calls[i]->started + calls[i]->deadline) {
          newly_late.push_back(i);
          late[i] = true;
          remind[i] = now + kRemindEvery;
        } else if (late[i] && now >= remind[i]) {
          reminders.push_back(i);
          remind[i] = now + kRemindEvery;
        }
      }
    }

    // Outcomes are read outside the lock: the worker never touches a call
    // again once `done` was seen set under it.
    for (size_t i : finished) {
      const PlannedArc& arc = wave.arcs[i];
      DeviceCall& call = *calls[i];
      ArcResult& r = result.arcs[i];
      r.elapsed = call.finished - call.started;
      r.late = r.elapsed > call.deadline;
      r.session = std::move(call.session);
      if (!call.status.ok()) {
        r.status = ArcFailed(arc, call);
        spdlog::warn("[{}] {}", migration_id_, std::string(r.status.message()));
        if (!failed) failed = i;
      } else if (r.late && policy_ == DeadlinePolicy::kSla) {
        // It returned, but later than the SLA allows: as good as hung.
        r.status = absl::DeadlineExceededError(absl::StrCat(
            ArcLabel(arc), " took ", Millis(r.elapsed), ", over its ",
            Millis(call.deadline), " deadline (", DeadlineKind(arc), ")"));
        spdlog::warn("[{}] {}", migration_id_, std::string(r.status.message()));
        if (!failed) failed = i;
      } else if (r.late) {
        spdlog::warn("[{}] {}: {} finished late, after {} (deadline {})",
                     migration_id_, arc.device, ArcName(arc.from, arc.to),
                     Millis(r.elapsed), Millis(call.deadline));
        if (!late[i] && observer_ != nullptr) {
          // It finished between two looks; it was late all the same.
          observer_->OnArcLate(arc, r.elapsed, call.deadline);
        }
        late[i] = true;
      } else {
        spdlog::debug("[{}] {}: {} finished in {}", migration_id_, arc.device,
                      ArcName(arc.from, arc.to), Millis(r.elapsed));
      }
      if (observer_ != nullptr) observer_->OnArcFinished(r);
    }

    for (size_t i : newly_late) {
      const PlannedArc& arc = wave.arcs[i];
      const absl::Duration elapsed = now - calls[i]->started;
      if (policy_ == DeadlinePolicy::kSla) {
        ArcResult& r = result.arcs[i];
        r.status = absl::DeadlineExceededError(absl::StrCat(
            ArcLabel(arc), " did not finish within ",
            Millis(calls[i]->deadline), " (", DeadlineKind(arc), ")"));
        spdlog::warn("[{}] {}; the call keeps running, the wave ends",
                     migration_id_, std::string(r.status.message()));
        if (!failed) failed = i;
      } else {
        spdlog::warn(
            "[{}] {}: {} still running after {}, past its {} deadline ({}); "
            "waiting (mandatory policy)",
            migration_id_, arc.device, ArcName(arc.from, arc.to),
            Millis(elapsed), Millis(calls[i]->deadline), DeadlineKind(arc));
        if (observer_ != nullptr) {
          observer_->OnArcLate(arc, elapsed, calls[i]->deadline);
        }
      }
    }
    for (size_t i : reminders) {
      spdlog::warn("[{}] {}: still waiting for {} ({} so far, deadline {})",
                   migration_id_, wave.arcs[i].device,
                   ArcName(wave.arcs[i].from, wave.arcs[i].to),
                   Millis(now - calls[i]->started), Millis(calls[i]->deadline));
    }
  }

  if (!failed.has_value()) {
    spdlog::debug("[{}] wave {} done ({} arcs)", migration_id_, phase, n);
    return result;
  }
  // The wave ends now; calls still running carry on, and their outcome is
  // left to Rollback (which GETs every device).
  const PlannedArc& culprit = wave.arcs[*failed];
  for (size_t i = 0; i < n; ++i) {
    if (reported[i]) continue;
    ArcResult& r = result.arcs[i];
    r.still_running = true;
    r.elapsed = now - calls[i]->started;
    r.late = r.elapsed > calls[i]->deadline;
    if (r.status.ok()) {
      r.status = absl::AbortedError(absl::StrCat(
          ArcLabel(wave.arcs[i]), " still running when the wave ended on ",
          ArcLabel(culprit)));
    }
  }
  result.status = result.arcs[*failed].status;
  result.failed_arc = culprit;
  spdlog::warn("[{}] wave {} failed: {}", migration_id_, phase,
               std::string(result.status.message()));
  return result;
}

RollbackReport TransitionExecutor::Rollback() {
  return RunRollback(workers_, mu_, deadlines_, observer_, migration_id_);
}

absl::StatusOr<DeviceState> TransitionExecutor::GetState(
    const std::string& device) {
  auto call = std::make_shared<DeviceCall>();
  call->kind = CallKind::kGetState;
  call->device = device;
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(device);
    if (it == workers_.end()) {
      return absl::NotFoundError(
          absl::StrCat(device, ": no such device in this migration"));
    }
    call->started = absl::Now();
    it->second->Post(call);
    while (!mu_.AwaitWithTimeout(absl::Condition(&call->done), kWarnEvery)) {
      std::shared_ptr<const DeviceCall> busy = it->second->Current();
      spdlog::warn("[{}] {}: GET still waiting; the worker is busy with {}",
                   migration_id_, device, busy ? busy->Describe() : "nothing");
    }
  }
  if (!call->state.ok()) {
    return absl::Status(
        call->state.status().code(),
        absl::StrCat(device, ": GET failed: ", call->state.status().message()));
  }
  return *call->state;
}

}  // namespace vfiomig
