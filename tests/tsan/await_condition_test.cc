// absl_sync_annotations.cc must order what a Condition reads: built and run
// only in the TSan build, this test fails (TSan's report makes the process
// exit non-zero) when a condition's evaluation inside Await is not seen as
// holding the mutex.
//
// The shape is DeviceWorker's (daemon/engine/device_worker.cc): a worker
// Awaits "the queue is not empty", another thread pushes under the same
// mutex. The worker's first evaluation happens inside absl's Await, after
// the annotation of the release that Await implies; unless that evaluation
// is annotated too, the push looks like a race with it. The main thread
// pushes only after it has seen that evaluation (through a relaxed atomic,
// which gives TSan no ordering of its own), so the test does not depend on
// which thread the scheduler runs first.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <thread>

#include "absl/synchronization/mutex.h"

int main() {
  absl::Mutex mu;
  std::deque<int> queue;  // guarded by mu
  std::atomic<int> evaluations{0};
  int popped = 0;

  std::thread worker([&] {
    auto has_work = [&] {
      const bool ready = !queue.empty();
      evaluations.fetch_add(1, std::memory_order_relaxed);
      return ready;
    };
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&has_work));
    popped = queue.front();
    queue.pop_front();
  });

  while (evaluations.load(std::memory_order_relaxed) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  {
    absl::MutexLock lock(&mu);
    queue.push_back(7);
  }
  worker.join();

  // A second path: LockWhen's condition, first evaluated by the waiter
  // before it holds the mutex, then by the setter when it unlocks (absl
  // evaluates a sleeping waiter's condition in the unlocking thread), which
  // reads what the waiter wrote (the condition) and the waiter then reads
  // what the setter wrote. The setter waits for the first evaluation, so
  // the second one runs in the setter's thread.
  bool flag = false;  // guarded by mu
  std::atomic<int> flag_evaluations{0};
  std::thread setter([&] {
    while (flag_evaluations.load(std::memory_order_relaxed) == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    absl::MutexLock lock(&mu);
    flag = true;
  });
  auto is_set = [&] {
    flag_evaluations.fetch_add(1, std::memory_order_relaxed);
    return flag;
  };
  mu.LockWhen(absl::Condition(&is_set));
  flag = false;
  mu.Unlock();
  setter.join();

  if (popped != 7) {
    std::fprintf(stderr, "worker popped %d, not 7\n", popped);
    return 1;
  }
  return 0;
}
