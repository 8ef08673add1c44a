// HandoffServer: serves the device hand-off side channel (protocol.h).
//
// A thread accepts connections on a unix socket (mode 0600) and answers
// each "OPEN <id>" with a duplicate of the device's fd
// (Device::DuplicateFd) after checking the caller's SO_PEERCRED: root and
// the daemon's own user only. The daemon keeps its own fd, so migration
// arcs still run while a VMM uses the device. Every hand-off and refusal is
// logged with the device and the caller's pid and uid.
//
// `inventory` must outlive the server. Destruction stops the thread and
// removes the socket file it created.
#ifndef VFIOMIG_DAEMON_HANDOFF_HANDOFF_SERVER_H_
#define VFIOMIG_DAEMON_HANDOFF_HANDOFF_SERVER_H_

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <thread>

#include "absl/status/statusor.h"
#include "daemon/inventory.h"
#include "daemon/listen_address.h"

namespace vfiomig {

class HandoffServer {
 public:
  // Binds `path` (creating its directory, replacing a stale socket) and
  // starts serving.
  static absl::StatusOr<std::unique_ptr<HandoffServer>> Start(
      const std::filesystem::path& path, const Inventory* inventory);
  ~HandoffServer();

  HandoffServer(const HandoffServer&) = delete;
  HandoffServer& operator=(const HandoffServer&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Whether a caller with `uid` may take devices from a daemon running as
  // `daemon_uid`.
  static bool CallerAllowed(uid_t uid, uid_t daemon_uid);

 private:
  HandoffServer(std::filesystem::path path, const Inventory* inventory,
                int listen_fd, int stop_fd, SocketFileId id);

  void Serve();
  void Handle(int connection);

  const std::filesystem::path path_;
  const Inventory* const inventory_;
  const int listen_fd_;
  // An eventfd the destructor signals to end Serve().
  const int stop_fd_;
  const SocketFileId socket_id_;
  std::thread thread_;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_HANDOFF_HANDOFF_SERVER_H_
