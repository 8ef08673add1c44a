// StateDir: the daemon's --state-dir (default /var/lib/vfio-migd), created
// if missing (mode 0700: it holds what the daemon knows about devices) and
// locked for the daemon's lifetime, so that a second daemon on the same
// directory refuses to start instead of interleaving two journals' worth of
// recovery decisions.
//
// The lock is an flock(2) on DIR/lock, released by the kernel when the
// process dies (SIGKILL included), so a crashed daemon never blocks its own
// restart. The file holds the holder's pid, for the error message.
#ifndef VFIOMIG_DAEMON_STORE_STATE_DIR_H_
#define VFIOMIG_DAEMON_STORE_STATE_DIR_H_

#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"

namespace vfiomig {

class StateDir {
 public:
  static constexpr char kDefaultPath[] = "/var/lib/vfio-migd";

  // FailedPrecondition when another process holds the directory or the
  // path is not a directory; PermissionDenied / Unavailable when it cannot
  // be created or written.
  static absl::StatusOr<std::unique_ptr<StateDir>> Open(
      const std::filesystem::path& path);
  // Releases the lock.
  ~StateDir();

  StateDir(const StateDir&) = delete;
  StateDir& operator=(const StateDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  StateDir(std::filesystem::path path, int lock_fd)
      : path_(std::move(path)), lock_fd_(lock_fd) {}

  std::filesystem::path path_;
  int lock_fd_;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_STORE_STATE_DIR_H_
