#include "daemon/malloc_tuning.h"

#include <cstdlib>  // defines __GLIBC__ on glibc

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace vfiomig {

void TuneMallocForStreaming() {
#if defined(__GLIBC__)
  // Allocations up to this size come from the arenas, not from mmap. Far
  // above a stream frame and gRPC's largest read buffer (4 MiB).
  constexpr int kMmapThreshold = 32 << 20;
  // An arena gives memory back to the kernel only when this much is free
  // at its top. Setting either threshold also switches off glibc's dynamic
  // adjustment of both, so both are set.
  constexpr int kTrimThreshold = 32 << 20;
  // Each arena keeps what its threads had in use at their peak. glibc makes
  // up to 8 per core, one per busy thread; every state stream has a thread
  // on the destination, so a group of many devices would keep a peak per
  // device. Two arenas bound that; a few streams allocating a buffer per
  // MiB of data hardly contend for them.
  constexpr int kArenaMax = 2;
  mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
  mallopt(M_TRIM_THRESHOLD, kTrimThreshold);
  mallopt(M_ARENA_MAX, kArenaMax);
#endif
}

}  // namespace vfiomig
