#include "daemon/engine/rollback_driver.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/core/rollback.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }

// How often a wait on a hung call is logged.
constexpr absl::Duration kWarnEvery = absl::Seconds(1);
// Failed arcs back a device may have before it is reset. An arc that fails
// yet moves the device elsewhere may work from there; one that keeps failing
// will not, and rollback must end.
constexpr int kMaxFailedArcs = 3;

// Rollback's view of one device.
struct Tracked {
  DeviceWorker* worker = nullptr;
  std::string id;
  MigrationFeatures features;
  // Last known state; while `call` is a SET, the arc's `from`.
  DeviceState state = DeviceState::ERROR;
  // The call in flight, if any. Only this thread changes the pointer.
  std::shared_ptr<DeviceCall> call;
  // The call passed its deadline and was warned about; next reminder when.
  bool late = false;
  absl::Time next_warn;
  // Not OK: the device needs VFIO_DEVICE_RESET, and why.
  absl::Status reset_why;
  bool was_reset = false;
  // Its reset failed: rollback leaves it alone and lets its peers go on.
  bool given_up = false;
  int failed_arcs = 0;
  std::vector<std::string> errors;
};

class Driver {
 public:
  Driver(const std::map<std::string, std::unique_ptr<DeviceWorker>>& workers,
         absl::Mutex& mu, const ArcDeadlines& deadlines,
         ExecutorObserver* observer, const std::string& migration_id)
      : mu_(mu),
        deadlines_(deadlines),
        observer_(observer),
        migration_id_(migration_id) {
    for (const auto& [id, worker] : workers) {
      Tracked t;
      t.worker = worker.get();
      t.id = id;
      t.features = worker->info().features;
      tracked_.push_back(std::move(t));
    }
  }

  RollbackReport Run();

 private:
  void WaitUntilIdle();
  void Post(Tracked& t, CallKind kind, DeviceState from, DeviceState to,
            absl::Duration deadline);
  void StartArc(Tracked& t, const PlannedArc& arc);
  void StartReset(Tracked& t);
  bool AnyInFlight() const;
  // Waits until a call returns or a late call is due a warning, and acts.
  void WaitAndHandle();
  void HandleFinished(Tracked& t, DeviceCall& call);
  void HandleFailedArc(Tracked& t, const DeviceCall& call);
  Tracked* Find(const std::string& id);
  RollbackReport Report() const;

  absl::Mutex& mu_;
  const ArcDeadlines& deadlines_;
  ExecutorObserver* const observer_;
  const std::string& migration_id_;
  std::vector<Tracked> tracked_;
};

RollbackReport Driver::Run() {
  spdlog::info("[{}] rollback: returning {} device(s) to RUNNING",
               migration_id_, tracked_.size());
  WaitUntilIdle();
  // Only a GET says where a device is after a failed or abandoned arc.
  for (Tracked& t : tracked_) {
    Post(t, CallKind::kGetState, DeviceState::RUNNING, DeviceState::RUNNING,
         deadlines_.Of(t.id).arc);
  }
  while (AnyInFlight()) WaitAndHandle();

  // Each round finishes at least one call, each device has a bounded number
  // of arcs and failures before it is reset or given up: the bound is only a
  // guard against a bug turning into a hung daemon.
  const size_t max_rounds = 64 * (tracked_.size() + 1);
  for (size_t round = 0;; ++round) {
    std::vector<RollbackDevice> view;
    for (const Tracked& t : tracked_) {
      if (t.given_up) continue;
      RollbackDevice d;
      d.id = t.id;
      d.features = t.features;
      // A device waiting for (or in) a reset counts as ERROR: it may not
      // accept DMA, so no P2P peer enters RUNNING meanwhile.
      d.state = t.reset_why.ok() ? t.state : DeviceState::ERROR;
      if (t.call) d.in_flight_to = t.call->to;
      view.push_back(std::move(d));
    }
    RollbackStep step = NextRollbackStep(view);
    if (step.done) break;
    for (const std::string& id : step.need_reset) StartReset(*Find(id));
    for (const PlannedArc& arc : step.arcs) StartArc(*Find(arc.device), arc);
    if (!AnyInFlight() || round >= max_rounds) {
      // Nothing can move safely (not expected: NextRollbackStep always
      // moves some device unless a call is in flight).
      for (Tracked& t : tracked_) {
        if (t.given_up || (t.state == DeviceState::RUNNING && !t.call)) {
          continue;
        }
        t.given_up = true;
        t.errors.push_back(absl::StrCat("no safe arc back to RUNNING from ",
                                        AbslView(DeviceStateName(t.state))));
        spdlog::error("[{}] {}: rollback gives up: {}", migration_id_, t.id,
                      t.errors.back());
      }
      break;
    }
    WaitAndHandle();
  }
  return Report();
}

void Driver::WaitUntilIdle() {
  absl::MutexLock lock(&mu_);
  auto all_idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return std::all_of(tracked_.begin(), tracked_.end(),
                       [](const Tracked& t) { return t.worker->Idle(); });
  };
  while (!mu_.AwaitWithTimeout(absl::Condition(&all_idle), kWarnEvery)) {
    const absl::Time now = absl::Now();
    for (const Tracked& t : tracked_) {
      if (t.worker->Idle()) continue;
      std::shared_ptr<const DeviceCall> call = t.worker->Current();
      spdlog::warn("[{}] {}: rollback waits for {} to return (running {})",
                   migration_id_, t.id, call ? call->Describe() : "a call",
                   call ? Millis(now - call->started) : "-");
    }
  }
}

void Driver::Post(Tracked& t, CallKind kind, DeviceState from, DeviceState to,
                  absl::Duration deadline) {
  auto call = std::make_shared<DeviceCall>();
  call->kind = kind;
  call->device = t.id;
  call->from = from;
  call->to = to;
  call->deadline = deadline;
  absl::MutexLock lock(&mu_);
  call->started = absl::Now();
  t.worker->Post(call);
  t.call = std::move(call);
  t.late = false;
}

void Driver::StartArc(Tracked& t, const PlannedArc& arc) {
  Post(t, CallKind::kSetState, arc.from, arc.to,
       deadlines_.For(t.id, arc.from, arc.to));
  spdlog::debug("[{}] {}: rollback arc {} started", migration_id_, t.id,
                ArcName(arc.from, arc.to));
  if (observer_ != nullptr) observer_->OnArcStarted(arc);
}

void Driver::StartReset(Tracked& t) {
  if (t.reset_why.ok()) {
    t.reset_why = absl::FailedPreconditionError(
        t.state == DeviceState::ERROR
            ? absl::StrCat(t.id, " is in ERROR")
            : absl::StrCat(t.id, " reports ",
                           AbslView(DeviceStateName(t.state)),
                           ", which its features (", t.features.ToString(),
                           ") do not allow"));
  }
  t.was_reset = true;
  t.errors.push_back(absl::StrCat("reset: ", t.reset_why.message()));
  // Loud: the device loses its state, and the guest must recover it.
  spdlog::error("[{}] {}: VFIO_DEVICE_RESET, because {}", migration_id_, t.id,
                std::string(t.reset_why.message()));
  Post(t, CallKind::kReset, t.state, DeviceState::RUNNING,
       deadlines_.Of(t.id).arc);
  if (observer_ != nullptr) observer_->OnDeviceReset(t.id, t.reset_why);
}

bool Driver::AnyInFlight() const {
  return std::any_of(tracked_.begin(), tracked_.end(),
                     [](const Tracked& t) { return t.call != nullptr; });
}

void Driver::WaitAndHandle() {
  std::vector<std::pair<Tracked*, std::shared_ptr<DeviceCall>>> finished;
  std::vector<Tracked*> due;
  absl::Time now;
  {
    absl::MutexLock lock(&mu_);
    auto any_finished = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return std::any_of(
          tracked_.begin(), tracked_.end(),
          [](const Tracked& t) { return t.call != nullptr && t.call->done; });
    };
    absl::Time wake = absl::InfiniteFuture();
    for (const Tracked& t : tracked_) {
      if (!t.call) continue;
      wake = std::min(
          wake, t.late ? t.next_warn : t.call->started + t.call->deadline);
    }
    mu_.AwaitWithDeadline(absl::Condition(&any_finished), wake);
    now = absl::Now();
    for (Tracked& t : tracked_) {
      if (!t.call) continue;
      if (t.call->done) {
        finished.emplace_back(&t, std::move(t.call));
        t.call = nullptr;
      } else if (now >=
                 (t.late ? t.next_warn : t.call->started + t.call->deadline)) {
        due.push_back(&t);
      }
    }
  }

  // Rollback never gives up on a slow call: a deadline only warns.
  for (Tracked* t : due) {
    const DeviceCall& call = *t->call;
    const absl::Duration elapsed = now - call.started;
    if (!t->late) {
      spdlog::warn(
          "[{}] {}: rollback {} past its {} deadline ({} so far); "
          "still waiting",
          migration_id_, t->id, call.Describe(), Millis(call.deadline),
          Millis(elapsed));
      if (observer_ != nullptr && call.kind == CallKind::kSetState) {
        observer_->OnArcLate(PlannedArc{t->id, call.from, call.to}, elapsed,
                             call.deadline);
      }
      t->late = true;
    } else {
      spdlog::warn("[{}] {}: rollback still waiting for {} ({} so far)",
                   migration_id_, t->id, call.Describe(), Millis(elapsed));
    }
    t->next_warn = now + kWarnEvery;
  }
  for (auto& [t, call] : finished) HandleFinished(*t, *call);
}

void Driver::HandleFinished(Tracked& t, DeviceCall& call) {
  switch (call.kind) {
    case CallKind::kGetState:
      if (call.state.ok()) {
        t.state = *call.state;
        spdlog::debug("[{}] {}: rollback starts from {}", migration_id_, t.id,
                      DeviceStateName(t.state));
      } else {
        t.state = DeviceState::ERROR;
        t.reset_why = absl::Status(call.state.status().code(),
                                   absl::StrCat(t.id, ": GET failed: ",
                                                call.state.status().message()));
        spdlog::warn("[{}] {}", migration_id_,
                     std::string(t.reset_why.message()));
      }
      return;

    case CallKind::kSetState: {
      ArcResult r;
      r.arc = PlannedArc{t.id, call.from, call.to};
      r.elapsed = call.finished - call.started;
      r.late = r.elapsed > call.deadline;
      r.session = std::move(call.session);
      if (call.status.ok()) {
        t.state = call.to;
        spdlog::debug("[{}] {}: rollback arc {} finished in {}", migration_id_,
                      t.id, call.Describe(), Millis(r.elapsed));
      } else {
        r.status =
            absl::Status(call.status.code(),
                         absl::StrCat(t.id, ": rollback arc ", call.Describe(),
                                      " failed: ", call.status.message()));
        HandleFailedArc(t, call);
      }
      if (observer_ != nullptr) observer_->OnArcFinished(r);
      return;
    }

    case CallKind::kReset:
      if (call.state.ok() && *call.state == DeviceState::RUNNING) {
        t.state = DeviceState::RUNNING;
        t.reset_why = absl::OkStatus();
        if (!call.status.ok()) {
          t.errors.push_back(
              absl::StrCat("reset reported: ", call.status.message()));
        }
        spdlog::warn("[{}] {}: reset; RUNNING again, with its state lost",
                     migration_id_, t.id);
      } else {
        t.given_up = true;
        t.state = call.state.ok() ? *call.state : DeviceState::ERROR;
        t.errors.push_back(
            !call.status.ok() ? absl::StrCat("VFIO_DEVICE_RESET failed: ",
                                             call.status.message())
            : !call.state.ok()
                ? absl::StrCat("GET after reset failed: ",
                               call.state.status().message())
                : absl::StrCat("still ", AbslView(DeviceStateName(t.state)),
                               " after reset"));
        spdlog::error("[{}] {}: rollback gives up on the device: {}",
                      migration_id_, t.id, t.errors.back());
      }
      return;
  }
}

void Driver::HandleFailedArc(Tracked& t, const DeviceCall& call) {
  ++t.failed_arcs;
  std::string what = absl::StrCat("rollback arc ", call.Describe(),
                                  " failed: ", call.status.message());
  if (!call.state.ok()) {
    absl::StrAppend(&what, "; GET failed: ", call.state.status().message());
    t.state = DeviceState::ERROR;
  } else if (*call.state == DeviceState::ERROR) {
    absl::StrAppend(&what, "; the device is in ERROR");
    t.state = DeviceState::ERROR;
  } else if (*call.state == call.from) {
    absl::StrAppend(&what, "; the device stayed in ",
                    AbslView(DeviceStateName(call.from)));
  } else {
    // It moved anyway: carry on from where it is, a few times at most.
    t.state = *call.state;
    absl::StrAppend(&what, "; the device is now in ",
                    AbslView(DeviceStateName(t.state)));
    if (t.failed_arcs < kMaxFailedArcs) {
      t.errors.push_back(what);
      spdlog::warn("[{}] {}: {}", migration_id_, t.id, what);
      return;
    }
  }
  t.errors.push_back(what);
  t.reset_why =
      absl::Status(call.status.code(), absl::StrCat(t.id, ": ", what));
  spdlog::warn("[{}] {}: {}; it will be reset", migration_id_, t.id, what);
}

Tracked* Driver::Find(const std::string& id) {
  for (Tracked& t : tracked_) {
    if (t.id == id) return &t;
  }
  return nullptr;  // NextRollbackStep names only devices it was given
}

RollbackReport Driver::Report() const {
  RollbackReport report;
  std::vector<std::string> bad;
  int resets = 0;
  for (const Tracked& t : tracked_) {
    DeviceRollback d;
    d.device = t.id;
    d.final_state = t.state;
    d.was_reset = t.was_reset;
    d.error = absl::StrJoin(t.errors, "; ");
    if (t.was_reset) ++resets;
    if (t.given_up || t.state != DeviceState::RUNNING) {
      bad.push_back(absl::StrCat(t.id, " in ",
                                 AbslView(DeviceStateName(t.state)), " (",
                                 d.error, ")"));
    }
    report.devices.push_back(std::move(d));
  }
  if (bad.empty()) {
    spdlog::info("[{}] rollback done: every device RUNNING ({} reset)",
                 migration_id_, resets);
  } else {
    report.status = absl::InternalError(
        absl::StrCat("rollback left ", bad.size(), " of ", tracked_.size(),
                     " device(s) out of RUNNING: ", absl::StrJoin(bad, "; ")));
    spdlog::error("[{}] {}", migration_id_,
                  std::string(report.status.message()));
  }
  return report;
}

}  // namespace

RollbackReport RunRollback(
    const std::map<std::string, std::unique_ptr<DeviceWorker>>& workers,
    absl::Mutex& mu, const ArcDeadlines& deadlines, ExecutorObserver* observer,
    const std::string& migration_id) {
  return Driver(workers, mu, deadlines, observer, migration_id).Run();
}

}  // namespace vfiomig
