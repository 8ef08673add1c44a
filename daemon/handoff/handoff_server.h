// HandoffServer: serves the device hand-off side channel (protocol.h).
//
// A thread accepts connections on a unix socket and answers each
// "OPEN <id>" with a duplicate of the device's fd (Device::DuplicateFd)
// after checking the caller's SO_PEERCRED. The socket follows the control
// socket's rules (daemon/socket_permissions.h): its directory must not be
// world-writable or someone else's, a stale socket is replaced only when it
// is ours, and it is created 0660 with the --socket-group group. Callers
// allowed: root, the daemon's own user, and members of that group when one
// is configured (the file mode lets them connect; the check makes sure
// nothing else does). The daemon keeps its own fd, so migration arcs still
// run while a VMM uses the device. Every hand-off and refusal is logged
// with the device and the caller's pid and uid.
//
// `inventory` must outlive the server. Destruction stops the thread and
// removes the socket file it created.
#ifndef VFIOMIG_DAEMON_HANDOFF_HANDOFF_SERVER_H_
#define VFIOMIG_DAEMON_HANDOFF_HANDOFF_SERVER_H_

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/inventory.h"
#include "daemon/listen_address.h"
#include "daemon/socket_permissions.h"

namespace vfiomig {

class HandoffServer {
 public:
  // Binds `path` (creating its directory, replacing a stale socket) with
  // mode 0660 and `access`'s group, and starts serving. FailedPrecondition
  // naming the path when the socket_permissions.h rules refuse it.
  static absl::StatusOr<std::unique_ptr<HandoffServer>> Start(
      const std::filesystem::path& path, const Inventory* inventory,
      const SocketAccess& access = {});
  ~HandoffServer();

  HandoffServer(const HandoffServer&) = delete;
  HandoffServer& operator=(const HandoffServer&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Whether a caller with `uid`, in the groups `caller_groups`, may take
  // devices from a daemon running as `daemon_uid` whose socket group is
  // `socket_group` (unset: no group admits anybody).
  static bool CallerAllowed(uid_t uid, uid_t daemon_uid,
                            std::optional<gid_t> socket_group = std::nullopt,
                            const std::vector<gid_t>& caller_groups = {});

 private:
  HandoffServer(std::filesystem::path path, const Inventory* inventory,
                SocketAccess access, int listen_fd, int stop_fd,
                SocketFileId id);

  void Serve();
  void Handle(int connection);

  const std::filesystem::path path_;
  const Inventory* const inventory_;
  const SocketAccess access_;
  const int listen_fd_;
  // An eventfd the destructor signals to end Serve().
  const int stop_fd_;
  const SocketFileId socket_id_;
  std::thread thread_;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_HANDOFF_HANDOFF_SERVER_H_
