// Listen targets: parsing the --listen values and preparing unix sockets.
//
// Targets use gRPC's server address syntax: "unix:/path", "unix:///path",
// "unix-abstract:name", or "host:port" (including "[::]:port"). For a unix
// socket on the file system the daemon creates the missing directory and
// removes a stale socket file left by a crashed daemon, but refuses to touch
// a socket a live process still answers on (two daemons sharing a socket
// would split the clients between them) or a file that is not a socket.
#ifndef VFIOMIG_DAEMON_LISTEN_ADDRESS_H_
#define VFIOMIG_DAEMON_LISTEN_ADDRESS_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "daemon/socket_permissions.h"

namespace vfiomig {

struct ListenAddress {
  // The target as gRPC takes it.
  std::string target;
  // Set for file-system unix sockets.
  std::optional<std::filesystem::path> unix_path;
  // Set for TCP targets: the text before the port ("[::]", "localhost").
  std::optional<std::string> tcp_host;

  // Whether the transport itself restricts who may connect (file
  // permissions); TCP without TLS does not.
  bool is_local() const { return !tcp_host.has_value(); }
};

// InvalidArgument naming the target when it is malformed.
absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& target);

// Makes `path` bindable: prepares its directory (PrepareSocketDirectory:
// created with mode 0750 and the socket group when missing, refused when
// world-writable or another user's) and removes a stale socket of ours.
// FailedPrecondition when a live process answers on it, when the path is
// not a socket, or when it belongs to another user.
absl::Status PrepareUnixSocket(const std::filesystem::path& path,
                               const SocketAccess& access = {});

// Identity of the socket file this daemon bound, so that shutdown removes
// that file and never one a newer daemon created at the same path.
struct SocketFileId {
  uint64_t device = 0;
  uint64_t inode = 0;
};
absl::StatusOr<SocketFileId> StatSocket(const std::filesystem::path& path);
// Removes `path` when it is still the socket `id` names; errors are ignored
// because a missing file is the goal.
void RemoveUnixSocket(const std::filesystem::path& path, SocketFileId id);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_LISTEN_ADDRESS_H_
