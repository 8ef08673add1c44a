// RunRollback: TransitionExecutor::Rollback over the executor's workers.
//
// Kept apart from the executor's wave logic: rollback is a loop of its own
// (wait for hung calls, GET, reset, step with core/rollback.h) with its own
// rules (deadlines only warn; a device that cannot go back is reset).
//
// Internal to daemon/engine.
#ifndef VFIOMIG_DAEMON_ENGINE_ROLLBACK_DRIVER_H_
#define VFIOMIG_DAEMON_ENGINE_ROLLBACK_DRIVER_H_

#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "daemon/engine/device_worker.h"
#include "daemon/engine/transition_executor.h"

namespace vfiomig {

// `mu` is the mutex every worker in `workers` shares. `observer` may be
// null. Returns when every device is RUNNING or was given up on.
RollbackReport RunRollback(
    const std::map<std::string, std::unique_ptr<DeviceWorker>>& workers,
    absl::Mutex& mu, const ArcDeadlines& deadlines, ExecutorObserver* observer,
    const std::string& migration_id);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_ENGINE_ROLLBACK_DRIVER_H_
