#include "daemon/engine/thread_pool.h"

#include <utility>

#include "daemon/engine/thread_name.h"

namespace vfiomig {

ThreadPool::~ThreadPool() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    threads = std::move(threads_);
  }
  for (std::thread& t : threads) t.join();
}

void ThreadPool::Run(std::function<void()> job) {
  absl::MutexLock lock(&mu_);
  // Each queued job is taken by a different idle thread, so a job waits in
  // the queue only while an idle thread is on its way to it.
  if (idle_ > jobs_.size()) {
    jobs_.push_back(std::move(job));
    return;
  }
  StartLocked(std::move(job));
}

void ThreadPool::Prestart(size_t threads) {
  absl::MutexLock lock(&mu_);
  while (threads_.size() < threads) StartLocked(nullptr);
}

size_t ThreadPool::size() const {
  absl::MutexLock lock(&mu_);
  return threads_.size();
}

size_t ThreadPool::idle() const {
  absl::MutexLock lock(&mu_);
  return idle_;
}

void ThreadPool::StartLocked(std::function<void()> first) {
  threads_.emplace_back(
      [this, first = std::move(first)]() mutable { Loop(std::move(first)); });
}

void ThreadPool::Loop(std::function<void()> first) {
  NameThisThread(kIdleName);
  if (first) {
    first();
    NameThisThread(kIdleName);
  }
  first = nullptr;  // Its captures go now, not when the thread ends.
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !jobs_.empty();
  };
  for (;;) {
    std::function<void()> job;
    {
      absl::MutexLock lock(&mu_);
      ++idle_;
      mu_.Await(absl::Condition(&ready));
      --idle_;
      // Queued jobs run even when stopping: Run promised them a thread.
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();
    // A job may have named the thread for what it did.
    NameThisThread(kIdleName);
  }
}

ThreadPool& WorkerThreads() {
  static ThreadPool* const pool = new ThreadPool();
  return *pool;
}

}  // namespace vfiomig
