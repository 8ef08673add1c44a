// Crash points: deterministic places where a test makes the daemon die.
//
// The fault-injection suite (tests/faults) must SIGKILL a daemon at a given
// point of a migration - after the commit point but before the Commit call,
// say - and races on timing or log lines would make such tests flaky. So
// the daemon names those points in its code, and the environment variable
//
//   VFIOMIG_CRASH_AT=POINT[#N]
//
// makes it SIGKILL itself the Nth time (default: the first) it passes
// POINT. SIGKILL, not abort(): nothing runs after it, no destructor, no
// flush, exactly as when the kernel or an operator kills the process.
// Unset (always, in production) a crash point costs one relaxed atomic
// load. The daemon logs a warning at start-up when it is set.
//
// Point names: "<side>:<what>", e.g. source:handed-over,
// destination:wave:resume-stop. PROTOCOL.md lists them; the debug log
// names every point as it passes.
#ifndef VFIOMIG_DAEMON_CRASH_POINT_H_
#define VFIOMIG_DAEMON_CRASH_POINT_H_

#include <optional>
#include <string>
#include <string_view>

namespace vfiomig {

inline constexpr char kCrashAtEnv[] = "VFIOMIG_CRASH_AT";

// Kills the process with SIGKILL when `point` is the armed point and this
// is its Nth pass.
void CrashPoint(std::string_view point);

// The armed point ("source:handed-over#1"), if any.
std::optional<std::string> ArmedCrashPoint();

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_CRASH_POINT_H_
