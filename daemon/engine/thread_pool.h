// ThreadPool: threads kept for reuse by long-running jobs.
//
// A device worker lives for one migration and a data connection for one
// stream, so a migration of N devices used to start (and join) 2N threads.
// A fresh thread costs about 0.1 ms here (its stack mapping and first page
// faults; more on a busy or virtualised host), which is most of the
// orchestration time of a many-device migration. The pool keeps finished
// threads waiting for the next job, and the daemon can start them early
// (Prestart), before any migration is waiting for them.
//
// Every job gets a thread at once, never a place in a queue behind another
// job: an idle thread if there is one, else a new thread. The jobs are
// long (a device call may hang for as long as the kernel lets it), so a
// bounded pool would let one hung device stall another device's worker.
// The pool is therefore as large as the most jobs that ever ran at once.
//
// Thread-safe.
#ifndef VFIOMIG_DAEMON_ENGINE_THREAD_POOL_H_
#define VFIOMIG_DAEMON_ENGINE_THREAD_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace vfiomig {

class ThreadPool {
 public:
  ThreadPool() = default;
  // Joins every thread. Jobs still running are waited for: the owner must
  // have ended them (an executor's workers end with the executor).
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // The name of a thread waiting for a job (engine/thread_name.h). A job
  // may rename its thread; the name goes back when the job returns.
  static constexpr const char* kIdleName = "migd-pool";

  // Runs `job` on an idle thread, or on a new one. Throws std::system_error
  // when a thread is needed and none can be started, as std::thread does.
  void Run(std::function<void()> job);

  // Starts idle threads until the pool has at least `threads`.
  void Prestart(size_t threads);

  // Threads started so far, and how many of them wait for a job.
  size_t size() const;
  size_t idle() const;

 private:
  void Loop(std::function<void()> first);
  void StartLocked(std::function<void()> first)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> jobs_ ABSL_GUARDED_BY(mu_);
  size_t idle_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

// The daemon's pool for device workers and data connections. Never
// destroyed: its idle threads end with the process.
ThreadPool& WorkerThreads();

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_ENGINE_THREAD_POOL_H_
