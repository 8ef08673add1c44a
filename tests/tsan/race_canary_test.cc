// A deliberate data race, built and run only in the TSan build, where the
// test is expected to fail (WILL_FAIL). It proves that the TSan run is
// live: ThreadSanitizer is on, halts on a report, and the absl
// annotations (absl_sync_annotations.cc) do not hide a race on data that
// is read outside the lock.
#include <thread>

#include "absl/synchronization/mutex.h"

int main() {
  absl::Mutex mu;
  int guarded = 0;
  int racy = 0;
  std::thread writer([&] {
    absl::MutexLock lock(&mu);
    ++guarded;
    ++racy;
  });
  {
    absl::MutexLock lock(&mu);
    ++guarded;
  }
  ++racy;  // not under the lock: the race TSan must report
  writer.join();
  return guarded == 2 ? 0 : 1;
}
