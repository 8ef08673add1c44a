// Pieces every vfio-migctl command shares: exit codes, global options and
// the single place that writes error lines.
#ifndef VFIOMIG_CLIENT_COMMON_H_
#define VFIOMIG_CLIENT_COMMON_H_

#include <string>
#include <string_view>

#include "absl/strings/string_view.h"

namespace vfiomig::cli {

// Exit codes. Scripts (libvirt hooks, control planes) branch on these, so
// they are part of the CLI's contract and documented in --help.
inline constexpr int kExitOk = 0;
// vfio-migd could not be reached, did not answer in time, or failed.
inline constexpr int kExitDaemon = 1;
// The request itself is wrong: bad flags, unknown state/feature/device, a
// state transition the kernel refuses.
inline constexpr int kExitUsage = 2;
// `plan` answered, and the answer is "this group cannot migrate". Distinct
// from 0 so that `vfio-migctl plan ... && migrate` is safe, and from 1/2
// because nothing went wrong in asking.
inline constexpr int kExitNotMigratable = 3;
// A migration ended without success: failed (4) or cancelled (5), and
// rolled back: every device RUNNING where it started, or still rolling back
// when a hung arc holds the rollback (the report says so).
inline constexpr int kExitMigrationFailed = 4;
inline constexpr int kExitMigrationCancelled = 5;
// A migration ended, but some device was left where it should not be (not
// RUNNING after a rollback, or the destination not RUNNING after success):
// an operator has to look. Beats 4 and 5, which promise a clean rollback.
inline constexpr int kExitDevicesNeedAttention = 6;
// `cancel`: the migration had already ended; nothing was cancelled.
inline constexpr int kExitAlreadyFinished = 7;
// Ctrl-C: the CLI stopped waiting (128 + SIGINT, as shells report it).
inline constexpr int kExitInterrupted = 130;

inline constexpr std::string_view kDefaultServer =
    "unix:/run/vfio-migd/vfio-migd.sock";
inline constexpr std::string_view kServerEnv = "VFIO_MIGCTL_SERVER";

inline constexpr std::string_view kTlsCaEnv = "VFIO_MIGCTL_TLS_CA";
inline constexpr std::string_view kTlsCertEnv = "VFIO_MIGCTL_TLS_CERT";
inline constexpr std::string_view kTlsKeyEnv = "VFIO_MIGCTL_TLS_KEY";

struct GlobalOptions {
  std::string server = std::string(kDefaultServer);
  // Bounds both connecting and the call itself, so the CLI never hangs on a
  // dead socket or a wedged daemon.
  double timeout_seconds = 5.0;
  // A TCP server needs mutual TLS (all three files) or `insecure`
  // (daemon/transport_security.h); unix sockets need neither.
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  bool insecure = false;
};

// Writes "vfio-migctl: <message>" as one line on stderr. Embedded newlines
// are folded so that every error stays exactly one line.
void PrintError(absl::string_view message);

}  // namespace vfiomig::cli

#endif  // VFIOMIG_CLIENT_COMMON_H_
