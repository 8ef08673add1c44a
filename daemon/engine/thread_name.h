// Thread names, so that `top -H`, `ps -L`, `perf` and /proc/PID/task tell
// the daemon's threads apart by role instead of showing "vfio-migd" for
// every one of them.
//
// Names the daemon uses (at most 15 bytes, the kernel's limit):
//   migd-pool       an idle pooled thread (engine/thread_pool.h)
//   dw:<device>     a device's worker, while it serves that device
//   st:<device>     a source stream pumping that device's state
//   dc:<device>     a destination data connection receiving its stream
//   migd-<role>     a thread with one job (migd-journal, migd-migrate, ...)
// Device ids longer than fit are cut at the end; a PCI address
// (0000:3b:00.0) fits whole.
#ifndef VFIOMIG_DAEMON_ENGINE_THREAD_NAME_H_
#define VFIOMIG_DAEMON_ENGINE_THREAD_NAME_H_

#include <string>
#include <string_view>

namespace vfiomig {

// The kernel's limit on a thread name, without the terminating NUL.
inline constexpr size_t kMaxThreadName = 15;

// Names the calling thread `name`, cut to kMaxThreadName bytes. Best
// effort: a name is for people, so a failure changes nothing else.
void NameThisThread(std::string_view name);
// "<prefix><id>", cut to fit: NameThisThread(ThreadName("dw:", id)).
std::string ThreadName(std::string_view prefix, std::string_view id);
// The calling thread's name ("" if it cannot be read).
std::string ThisThreadName();

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_ENGINE_THREAD_NAME_H_
