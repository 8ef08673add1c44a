// ThreadPool: every job gets a thread at once, finished threads are reused,
// and Prestart makes them ready before the first job.
#include "daemon/engine/thread_pool.h"

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace vfiomig {
namespace {

// Waits until `predicate` holds (a pool thread turns idle after its job
// returned, a moment later), failing after 10 s.
template <typename Predicate>
bool Eventually(Predicate predicate) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!predicate()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

TEST(ThreadPoolTest, EveryJobRunsAtOnceEvenWhenOthersBlock) {
  ThreadPool pool;
  // Eight jobs that each wait for all eight to be running: with any job
  // queued behind another, none would finish.
  constexpr int kJobs = 8;
  absl::Mutex mu;
  int running = 0;
  absl::Notification all_done[kJobs];
  for (int i = 0; i < kJobs; ++i) {
    pool.Run([&, i] {
      absl::MutexLock lock(&mu);
      ++running;
      mu.Await(absl::Condition(
          +[](int* n) { return *n == kJobs; }, &running));
      all_done[i].Notify();
    });
  }
  for (auto& done : all_done) {
    EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  }
  EXPECT_EQ(pool.size(), static_cast<size_t>(kJobs));
}

TEST(ThreadPoolTest, FinishedThreadsAreReused) {
  ThreadPool pool;
  absl::Mutex mu;
  std::set<std::thread::id> seen;
  for (int round = 0; round < 5; ++round) {
    // Two jobs that wait for each other, so each round needs two threads.
    int arrived = 0;
    absl::Notification a_done, b_done;
    auto job = [&](absl::Notification* done) {
      absl::MutexLock lock(&mu);
      seen.insert(std::this_thread::get_id());
      ++arrived;
      mu.Await(absl::Condition(
          +[](int* n) { return *n == 2; }, &arrived));
      done->Notify();
    };
    pool.Run([&] { job(&a_done); });
    pool.Run([&] { job(&b_done); });
    a_done.WaitForNotification();
    b_done.WaitForNotification();
    ASSERT_TRUE(Eventually([&] { return pool.idle() == pool.size(); }));
  }
  // Ten jobs, two at a time: the first round's two threads ran them all.
  EXPECT_EQ(pool.size(), 2u);
  EXPECT_EQ(seen.size(), 2u);
}

TEST(ThreadPoolTest, PrestartedThreadsTakeTheFirstJobs) {
  ThreadPool pool;
  pool.Prestart(4);
  EXPECT_EQ(pool.size(), 4u);
  ASSERT_TRUE(Eventually([&] { return pool.idle() == 4; }));
  std::atomic<int> ran{0};
  std::vector<absl::Notification> done(4);
  for (int i = 0; i < 4; ++i) {
    pool.Run([&, i] {
      ran.fetch_add(1);
      done[i].Notify();
    });
  }
  for (auto& d : done) d.WaitForNotification();
  EXPECT_EQ(ran.load(), 4);
  EXPECT_EQ(pool.size(), 4u) << "a prestarted pool started more threads";
  pool.Prestart(2);
  EXPECT_EQ(pool.size(), 4u) << "Prestart never shrinks or adds below size";
}

TEST(ThreadPoolTest, DestructionRunsQueuedJobsAndJoins) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool;
    pool.Prestart(3);
    ASSERT_TRUE(Eventually([&] { return pool.idle() == 3; }));
    for (int i = 0; i < 3; ++i) {
      pool.Run([&] {
        absl::SleepFor(absl::Milliseconds(20));
        ran.fetch_add(1);
      });
    }
  }
  EXPECT_EQ(ran.load(), 3);
}

}  // namespace
}  // namespace vfiomig
