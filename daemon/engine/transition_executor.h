// TransitionExecutor: runs a group's waves of kernel arcs against real
// devices, with a deadline on every arc, and rolls the group back.
//
// Each device gets its own worker thread for the life of the executor, and
// every backend call for that device runs there, one at a time. A kernel
// ioctl cannot be interrupted, so a hung drain occupies only its device's
// worker: the executor stops waiting at the deadline and reports, while the
// call carries on; the device is rolled back as soon as the call returns.
//
// Policy:
//  - kSla: the first arc that fails or passes its deadline ends RunWave at
//    once with an error naming the device and the arc.
//  - kMandatory: a late arc is reported through the observer (a warning)
//    and waited for; only a failed arc ends the wave.
//
// Thread-safety: RunWave and Rollback are called from one thread (the
// migration's); the observer is called from that thread too. The destructor
// waits for every in-flight backend call to return: a migration's executor
// lives until its devices are idle.
#ifndef VFIOMIG_DAEMON_ENGINE_TRANSITION_EXECUTOR_H_
#define VFIOMIG_DAEMON_ENGINE_TRANSITION_EXECUTOR_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/core/fsm.h"
#include "daemon/core/planner.h"
#include "plugins/backend.h"

namespace vfiomig {

class DeviceWorker;  // daemon/engine/device_worker.h

enum class DeadlinePolicy { kSla, kMandatory };

struct ArcDeadlines {
  // Arcs into RUNNING_P2P, PRE_COPY_P2P and STOP (fsm.h IsDrainArc).
  absl::Duration drain = absl::Milliseconds(5000);
  // Every other arc.
  absl::Duration arc = absl::Milliseconds(10000);

  // Devices whose arcs take other deadlines than the two above, by device
  // id: a driver known to drain slowly gets longer ones from the daemon's
  // config (migration/driver_deadlines.h resolves them per device).
  struct Kinds {
    absl::Duration drain;
    absl::Duration arc;
  };
  std::map<std::string, Kinds> by_device;

  // The deadline of `device`'s arc from -> to.
  absl::Duration For(const std::string& device, DeviceState from,
                     DeviceState to) const {
    const Kinds kinds = Of(device);
    return IsDrainArc(from, to) ? kinds.drain : kinds.arc;
  }
  // The deadlines of `device`.
  Kinds Of(const std::string& device) const {
    auto it = by_device.find(device);
    return it == by_device.end() ? Kinds{drain, arc} : it->second;
  }
};

struct ArcResult {
  PlannedArc arc;
  // OK; the backend's error; DeadlineExceeded when the arc passed its
  // deadline under kSla (still running, or finished too late); Aborted when
  // the wave ended on another arc while this call still runs, or when the
  // wave was refused before this arc started.
  absl::Status status;
  absl::Duration elapsed;
  // Passed its deadline (kMandatory: a warning; kSla: the failure).
  bool late = false;
  // The call had not returned when RunWave returned.
  bool still_running = false;
  // The data session the arc opened, if any (fsm.h ArcOpensDataSession).
  std::unique_ptr<DataSession> session;
};

struct WaveResult {
  // OK when every arc succeeded (on time, or late under kMandatory).
  // Otherwise the first failure, naming the device and the arc.
  absl::Status status;
  std::vector<ArcResult> arcs;
  // The failed arc when status is not OK.
  std::optional<PlannedArc> failed_arc;
};

struct DeviceRollback {
  std::string device;
  DeviceState final_state = DeviceState::ERROR;
  // VFIO_DEVICE_RESET was needed (ERROR, or an arc back failed).
  bool was_reset = false;
  // Empty when the device is back in RUNNING without trouble.
  std::string error;
};

struct RollbackReport {
  // OK when every device is RUNNING.
  absl::Status status;
  std::vector<DeviceRollback> devices;
};

// Notified on the executor's calling thread.
class ExecutorObserver {
 public:
  virtual ~ExecutorObserver() = default;
  virtual void OnArcStarted(const PlannedArc& arc) {}
  virtual void OnArcFinished(const ArcResult& result) {}
  // kMandatory: an arc passed its deadline and is still being waited for.
  // Also during Rollback, whose deadlines only warn. Once per late arc.
  virtual void OnArcLate(const PlannedArc& arc, absl::Duration elapsed,
                         absl::Duration deadline) {}
  virtual void OnDeviceReset(const std::string& device,
                             const absl::Status& why) {}
};

class TransitionExecutor {
 public:
  // `devices` by id; every arc's device must be among them. `observer` may
  // be null and must outlive the executor. `migration_id` tags log lines.
  TransitionExecutor(std::map<std::string, std::shared_ptr<Device>> devices,
                     ArcDeadlines deadlines, DeadlinePolicy policy,
                     ExecutorObserver* observer, std::string migration_id);
  ~TransitionExecutor();

  TransitionExecutor(const TransitionExecutor&) = delete;
  TransitionExecutor& operator=(const TransitionExecutor&) = delete;

  // Starts every arc of `wave` concurrently, each on its device's worker,
  // and returns when all have finished, or earlier as the policy says. An
  // arc on a device whose previous call has not returned yet fails at once
  // (FailedPrecondition): a wave never queues behind a hung call. A wave
  // with such an arc, an unknown device or two arcs for one device
  // (InvalidArgument) starts none of its arcs. `arcs` holds one result per
  // arc of `wave`, in its order.
  WaveResult RunWave(const Wave& wave);

  // Brings every device back to RUNNING: waits for each in-flight call to
  // return, GETs each device's state, resets devices in ERROR, and steps the
  // rest with NextRollbackStep (core/rollback.h), each arc with the
  // deadlines as a warning only (rollback never gives up on a device). An
  // arc back that fails -> GET; ERROR or unchanged -> VFIO_DEVICE_RESET,
  // reported. Devices already RUNNING are left alone. A device whose reset
  // fails is reported with the state GET gives and no longer holds back its
  // P2P peers: keeping the whole VM stopped would not help it.
  RollbackReport Rollback();

  // Runs GET on `device`'s worker after its in-flight call (if any), and
  // waits for it. For reads the engine wants serialised with arcs. NotFound
  // for a device the executor does not have.
  absl::StatusOr<DeviceState> GetState(const std::string& device);

 private:
  // Guards every worker's queue and every posted call's outcome: a worker
  // publishes an outcome and goes idle in one step (device_worker.h).
  // Declared before workers_, so it outlives their threads.
  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<DeviceWorker>> workers_;
  ArcDeadlines deadlines_;
  DeadlinePolicy policy_;
  ExecutorObserver* observer_;
  std::string migration_id_;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_ENGINE_TRANSITION_EXECUTOR_H_
