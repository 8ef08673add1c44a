#include "client/interrupt.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <utility>

namespace vfiomig::cli {
namespace {

sigset_t InterruptSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void InterruptWatcher::BlockSignals() {
  const sigset_t set = InterruptSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

InterruptWatcher::InterruptWatcher(std::function<void(int count)> on_interrupt)
    : on_interrupt_(std::move(on_interrupt)) {
  BlockSignals();
  thread_ = std::thread([this] { Loop(); });
}

InterruptWatcher::~InterruptWatcher() {
  stop_ = true;
  thread_.join();
}

void InterruptWatcher::Loop() {
  const sigset_t set = InterruptSignals();
  // sigtimedwait rather than sigwait: the thread must notice stop_ without
  // being sent a signal of its own.
  const timespec tick = {0, 100 * 1000 * 1000};
  int count = 0;
  while (!stop_) {
    siginfo_t info;
    if (sigtimedwait(&set, &info, &tick) > 0) on_interrupt_(++count);
  }
}

}  // namespace vfiomig::cli
