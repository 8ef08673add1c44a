// UseSmallThreadStacks: a smaller default stack for the threads the daemon
// starts (device workers, streaming threads, gRPC's server threads).
//
// A migration starts a worker thread per device on each side, and the
// destination's gRPC server a thread per incoming state stream. With
// glibc's default (RLIMIT_STACK, 8 MiB) every thread maps a fresh 8 MiB
// stack, because glibc caches only 40 MiB of freed stacks, and unmaps it
// again when it ends (a TLB shootdown each). On this kind of VM that made
// starting 64 threads cost about 25 ms; with 512 KiB stacks, all cached,
// about 3 ms. Nothing in the daemon needs deep stacks: no recursion beyond
// protobuf's bounded depth, and no large arrays on the stack (the largest
// is 64 KiB).
//
// Call first thing in main, before any thread starts. A no-op when the C
// library is not glibc, and under sanitizers (whose instrumented frames
// need the default room).
#ifndef VFIOMIG_DAEMON_THREAD_STACKS_H_
#define VFIOMIG_DAEMON_THREAD_STACKS_H_

#include <cstddef>

namespace vfiomig {

inline constexpr size_t kThreadStackBytes = size_t{512} << 10;

void UseSmallThreadStacks();

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_THREAD_STACKS_H_
