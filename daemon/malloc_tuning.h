// TuneMallocForStreaming: glibc malloc settings for a process that moves
// GiBs through short-lived buffers of a MiB or so.
//
// gRPC reads a peer stream into fresh buffers of up to a few MiB and frees
// them once the message is consumed. With glibc's defaults every such free
// of a chunk at the top of a thread's arena trims it (madvise DONTNEED,
// with a TLB shootdown across cores), and every such malloc above the
// dynamic mmap threshold maps fresh zero pages; the next read then faults
// each 4 KiB page in again. Profiles of a destination daemon showed most of
// its time in those page faults and madvise calls, and a 5x lower migration
// rate. Fixed thresholds keep freed memory in the arenas for reuse.
// Memory stays bounded: the arenas keep at most what was in use at the
// peak, which gRPC flow control bounds (server.cc), and there are only two.
//
// Call first thing in main, before any thread starts. A no-op when the C
// library is not glibc.
#ifndef VFIOMIG_DAEMON_MALLOC_TUNING_H_
#define VFIOMIG_DAEMON_MALLOC_TUNING_H_

namespace vfiomig {

void TuneMallocForStreaming();

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MALLOC_TUNING_H_
