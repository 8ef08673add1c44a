#include "daemon/systemd_notifier.h"

#include <systemd/sd-daemon.h>

#include <cstdint>
#include <utility>

#include "daemon/engine/thread_name.h"
#include "spdlog/spdlog.h"

namespace vfiomig {

SystemdNotifier::SystemdNotifier(Probe probe) : probe_(std::move(probe)) {
  uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set (and WATCHDOG_PID, if set, is us).
  if (sd_watchdog_enabled(/*unset_environment=*/0, &usec) > 0 && usec > 0) {
    watchdog_ = absl::Microseconds(static_cast<int64_t>(usec));
  }
}

SystemdNotifier::~SystemdNotifier() { StopWatchdog(); }

void SystemdNotifier::StopWatchdog() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void SystemdNotifier::Ready(const std::string& status) {
  sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str());
  absl::MutexLock lock(&mu_);
  if (watchdog_ > absl::ZeroDuration() && !started_ && !stop_) {
    started_ = true;
    spdlog::info("systemd watchdog: every {} ms, probing the daemon first",
                 absl::ToInt64Milliseconds(watchdog_ / 2));
    thread_ = std::thread([this] {
      NameThisThread("migd-sd-notify");
      WatchdogLoop();
    });
  }
}

void SystemdNotifier::Stopping(const std::string& status) {
  sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status.c_str());
}

void SystemdNotifier::Status(const std::string& status) {
  sd_notifyf(0, "STATUS=%s", status.c_str());
}

void SystemdNotifier::WatchdogLoop() {
  // Half the interval, as sd_watchdog_enabled(3) recommends: one late ping
  // must not be fatal.
  const absl::Duration every = watchdog_ / 2;
  bool failing = false;
  while (true) {
    absl::Status alive = probe_();
    if (alive.ok()) {
      sd_notify(0, "WATCHDOG=1");
      if (failing) spdlog::info("systemd watchdog: the daemon answers again");
      failing = false;
    } else if (!failing) {
      // Once per failure streak: systemd restarts the daemon if it lasts.
      spdlog::error(
          "systemd watchdog: liveness probe failed, not pinging systemd: {}",
          std::string(alive.message()));
      failing = true;
    }
    absl::MutexLock lock(&mu_);
    if (mu_.AwaitWithTimeout(absl::Condition(&stop_), every)) return;
  }
}

}  // namespace vfiomig
