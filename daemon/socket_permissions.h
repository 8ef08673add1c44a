// Who may connect to the daemon's unix sockets: file permissions.
//
// A unix socket on the file system is reachable by whoever may write to the
// socket file and search its directory, so these two carry the daemon's
// local access control (the control API moves devices between hosts; the
// fd hand-off socket passes device fds). The rules, for every socket the
// daemon binds:
//  - the socket's directory is owned by this process's effective uid (or by
//    root, who can replace anything anyway) and is not world-writable:
//    otherwise another user could swap the socket for their own and see
//    every request. A missing directory is created with mode 0750 and the
//    socket group.
//  - a file already at the socket path (a stale socket) is replaced only
//    when it is ours or root's, never another user's.
//  - the socket is born with mode 0660 at most (umask while binding, see
//    ScopedSocketUmask) and then set to exactly 0660 with the configured
//    group (--socket-group; the process's own group when unset).
//
// Used by the gRPC server (daemon/server.cc) and by any other socket the
// daemon binds: call PrepareSocketDirectory and CheckReplaceableSocket
// before bind(), bind inside a ScopedSocketUmask, then RestrictSocket.
#ifndef VFIOMIG_DAEMON_SOCKET_PERMISSIONS_H_
#define VFIOMIG_DAEMON_SOCKET_PERMISSIONS_H_

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vfiomig {

// The mode of every socket the daemon binds: owner and group read/write.
inline constexpr mode_t kSocketMode = 0660;
// The mode of a socket directory the daemon creates.
inline constexpr mode_t kSocketDirectoryMode = 0750;

struct SocketAccess {
  // The group whose members may connect; unset: the process's own group.
  std::optional<gid_t> group;
  // The name it was given as, for messages ("kvm"); empty when unset.
  std::string group_name;
};

// --socket-group NAME (or a numeric gid): InvalidArgument naming it when
// the system knows no such group.
absl::StatusOr<SocketAccess> SocketAccessForGroup(absl::string_view name);

// Makes `dir` ready to hold a socket: creates it (and missing parents) with
// kSocketDirectoryMode and `access.group` when missing; checks ownership
// and world-writability when present (a directory we created passes too).
// FailedPrecondition naming the directory and the problem otherwise.
absl::Status PrepareSocketDirectory(const std::filesystem::path& dir,
                                    const SocketAccess& access);

// Before a stale file at `path` is removed: OK when nothing is there or it
// belongs to this process's euid or root; FailedPrecondition otherwise.
absl::Status CheckReplaceableSocket(const std::filesystem::path& path);

// After bind(): sets the socket's group and mode kSocketMode, then checks
// the result (owner, group, mode) by lstat. FailedPrecondition naming the
// path when any step fails; the caller should then not serve on it.
absl::Status RestrictSocket(const std::filesystem::path& path,
                            const SocketAccess& access);

// Sets the umask so that a socket bound meanwhile is created with at most
// kSocketMode (never world-accessible, not even for the moment between
// bind() and RestrictSocket); restores the old umask on destruction. The
// umask is process-wide: use it only while no other thread creates files.
class ScopedSocketUmask {
 public:
  ScopedSocketUmask();
  ~ScopedSocketUmask();
  ScopedSocketUmask(const ScopedSocketUmask&) = delete;
  ScopedSocketUmask& operator=(const ScopedSocketUmask&) = delete;

 private:
  mode_t old_;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_SOCKET_PERMISSIONS_H_
