// DeviceWorker: the one thread on which every backend call for a device runs
// (a thread of the pool, daemon/engine/thread_pool.h, for as long as the
// worker lives).
//
// A kernel ioctl cannot be interrupted, so a call that hangs (a drain waiting
// for page requests a guest never answers) must not hold up anything but its
// own device. Callers post a DeviceCall and wait for it with a deadline of
// their choosing; the call carries on after they stop waiting, and its
// outcome lands in the shared DeviceCall whoever still looks at it.
//
// Locking: every worker of an executor shares the executor's mutex. A worker
// publishes a call's outcome and becomes idle in one critical section, so a
// caller that has seen the outcome never finds the worker still busy.
//
// Internal to daemon/engine.
#ifndef VFIOMIG_DAEMON_ENGINE_DEVICE_WORKER_H_
#define VFIOMIG_DAEMON_ENGINE_DEVICE_WORKER_H_

#include <deque>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/core/fsm.h"
#include "plugins/backend.h"

namespace vfiomig {

enum class CallKind {
  kSetState,  // one arc; on failure also a GET, since the state is unknown
  kGetState,
  kReset,  // VFIO_DEVICE_RESET, then a GET to confirm RUNNING
};

// One backend call and, once `done`, what it returned. Shared between the
// poster and the worker. Fields above `done` are fixed before posting;
// `done` and everything below it are written by the worker under the
// executor's mutex and read only after `done` was seen under it.
struct DeviceCall {
  CallKind kind = CallKind::kGetState;
  std::string device;
  // kSetState: the arc. kReset: ERROR > RUNNING, for logs.
  DeviceState from = DeviceState::RUNNING;
  DeviceState to = DeviceState::RUNNING;
  // When it was posted (workers are idle when arcs are posted), and how long
  // it may take before the poster fails or warns.
  absl::Time started;
  absl::Duration deadline = absl::InfiniteDuration();

  bool done = false;
  absl::Time finished;
  // The SET or RESET's result (kGetState: the GET's).
  absl::Status status;
  std::unique_ptr<DataSession> session;
  // kGetState: the state. kSetState after a failure, and kReset: the state a
  // GET reported afterwards, or that GET's error.
  absl::StatusOr<DeviceState> state = absl::UnknownError("state not read");

  // "RUNNING>RUNNING_P2P", "GET", "RESET": what the worker is busy with.
  std::string Describe() const;
  // Time since `started`: up to `now` while running, else to `finished`.
  absl::Duration Elapsed(absl::Time now) const;
};

// Renders a duration as whole milliseconds, "300 ms", for messages.
std::string Millis(absl::Duration d);

class DeviceWorker {
 public:
  // `mu` is the executor's mutex and must outlive the worker.
  DeviceWorker(std::string id, std::shared_ptr<Device> device, absl::Mutex* mu);
  // Lets queued calls finish, then waits for the loop to end (for a hung
  // call to return); its thread goes back to the pool.
  ~DeviceWorker();

  DeviceWorker(const DeviceWorker&) = delete;
  DeviceWorker& operator=(const DeviceWorker&) = delete;

  const std::string& id() const { return id_; }
  const DeviceInfo& info() const { return device_->info(); }

  // True when no call is queued or running.
  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(*mu_);
  // The call running now, or null.
  std::shared_ptr<const DeviceCall> Current() const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(*mu_);
  // Queues `call` behind any call already queued.
  void Post(std::shared_ptr<DeviceCall> call)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(*mu_);

 private:
  void Loop();

  const std::string id_;
  const std::shared_ptr<Device> device_;
  absl::Mutex* const mu_;
  std::deque<std::shared_ptr<DeviceCall>> queue_ ABSL_GUARDED_BY(*mu_);
  std::shared_ptr<DeviceCall> current_ ABSL_GUARDED_BY(*mu_);
  bool stopping_ ABSL_GUARDED_BY(*mu_) = false;
  // True while Loop runs on a pool thread (WorkerThreads()).
  bool looping_ ABSL_GUARDED_BY(*mu_) = false;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_ENGINE_DEVICE_WORKER_H_
