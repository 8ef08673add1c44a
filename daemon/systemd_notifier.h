// SystemdNotifier: tells systemd what the daemon is doing, through
// sd_notify(3) (libsystemd), for a unit with Type=notify and WatchdogSec=.
//
//  - Ready() sends READY=1 once the daemon serves: systemd then counts the
//    unit as started, so units ordered after it (libvirtd, a control plane
//    agent) find the socket answering.
//  - Stopping() sends STOPPING=1 when shutdown begins (rollbacks of outgoing
//    migrations may take a while; systemd shows "deactivating").
//  - Status() sends a STATUS= line (systemctl status shows it).
//  - When systemd asked for a watchdog (WATCHDOG_USEC, sd_watchdog_enabled
//    (3)), a thread runs `probe` every half interval and sends WATCHDOG=1
//    only when it returned OK. A probe that fails or hangs (a deadlocked
//    lock, a gRPC server that no longer answers) stops the pings, and
//    systemd kills and restarts the daemon after WatchdogSec.
//
// Without NOTIFY_SOCKET (not started by systemd) every call does nothing.
// Thread-safe. The probe runs on the notifier's thread and must stay valid
// until the destructor, which stops the thread (waiting for a running
// probe).
#ifndef VFIOMIG_DAEMON_SYSTEMD_NOTIFIER_H_
#define VFIOMIG_DAEMON_SYSTEMD_NOTIFIER_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace vfiomig {

class SystemdNotifier {
 public:
  using Probe = std::function<absl::Status()>;

  explicit SystemdNotifier(Probe probe);
  ~SystemdNotifier();

  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  // READY=1 with a STATUS= line; starts the watchdog pings, if systemd
  // asked for them.
  void Ready(const std::string& status);
  // STOPPING=1 with a STATUS= line; the watchdog keeps pinging while the
  // probe passes (a long rollback is not a hang).
  void Stopping(const std::string& status);
  void Status(const std::string& status);
  // Stops the watchdog thread (waiting for a running probe): call before
  // the probe's target goes away. Later calls to the others still work.
  void StopWatchdog();

  // The watchdog interval systemd asked for; zero when none.
  absl::Duration watchdog_interval() const { return watchdog_; }

 private:
  void WatchdogLoop();

  Probe probe_;
  absl::Duration watchdog_ = absl::ZeroDuration();
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_SYSTEMD_NOTIFIER_H_
