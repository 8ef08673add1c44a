// A deliberate data race, built and run only in the TSan build, where the
// test passes only when ThreadSanitizer reports it (ctest matches the
// report). It proves that the TSan run is live: ThreadSanitizer is on and
// the absl annotations (absl_sync_annotations.cc) do not hide a race on
// data that is touched outside the lock.
//
// Both threads touch `racy` after their critical section, so whichever
// order the scheduler picks, the lock orders only the `guarded` accesses:
// the race on `racy` is reported on every run, not only when the main
// thread happens to take the lock first.
#include <thread>

#include "absl/synchronization/mutex.h"

int main() {
  absl::Mutex mu;
  int guarded = 0;
  int racy = 0;
  std::thread writer([&] {
    {
      absl::MutexLock lock(&mu);
      ++guarded;
    }
    ++racy;  // outside the lock
  });
  {
    absl::MutexLock lock(&mu);
    ++guarded;
  }
  ++racy;  // outside the lock: the race TSan must report
  writer.join();
  return guarded == 2 ? 0 : 1;
}
