// Turns Ctrl-C (SIGINT) and SIGTERM into calls on a thread of our own, so
// that a command blocked in a gRPC read can still react: `migrate` asks the
// daemon to cancel, a second Ctrl-C stops waiting.
#ifndef VFIOMIG_CLIENT_INTERRUPT_H_
#define VFIOMIG_CLIENT_INTERRUPT_H_

#include <atomic>
#include <functional>
#include <thread>

namespace vfiomig::cli {

class InterruptWatcher {
 public:
  // Blocks SIGINT and SIGTERM in the calling thread. Call it first thing,
  // before anything (a gRPC channel) starts threads, when the watcher
  // itself can only be built later: the signals then wait, pending, for it.
  static void BlockSignals();

  // Blocks SIGINT and SIGTERM in the calling thread, which every thread it
  // creates later inherits; so construct it before the first gRPC channel
  // (gRPC starts its threads then), or one of those threads could take the
  // signal and die of it. `on_interrupt` runs on the watcher's thread with
  // the number of interrupts so far (1, 2, ...).
  explicit InterruptWatcher(std::function<void(int count)> on_interrupt);
  // Stops the thread. The signals stay blocked: the command is about to
  // exit, and unblocking would deliver a pending Ctrl-C as a kill.
  ~InterruptWatcher();

  InterruptWatcher(const InterruptWatcher&) = delete;
  InterruptWatcher& operator=(const InterruptWatcher&) = delete;

 private:
  void Loop();

  std::function<void(int)> on_interrupt_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace vfiomig::cli

#endif  // VFIOMIG_CLIENT_INTERRUPT_H_
