#include "daemon/store/state_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace vfiomig {
namespace {

absl::Status ErrnoStatus(int err, const std::string& what) {
  std::string message = absl::StrCat(what, ": ", std::strerror(err));
  if (err == EACCES || err == EPERM || err == EROFS) {
    return absl::PermissionDeniedError(message);
  }
  return absl::UnavailableError(message);
}

std::string ReadPid(int fd) {
  char buf[32] = {};
  const ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  if (n <= 0) return "";
  int pid = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(buf), &pid)) return "";
  return absl::StrCat(" (pid ", pid, ")");
}

}  // namespace

absl::StatusOr<std::unique_ptr<StateDir>> StateDir::Open(
    const std::filesystem::path& path) {
  const std::string dir = path.string();
  if (dir.empty()) {
    return absl::InvalidArgumentError("the state directory path is empty");
  }
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    // Parents as root creates them (umask applies); the directory itself
    // is private.
    std::filesystem::create_directories(path, error);
    if (error) {
      return ErrnoStatus(error.value(),
                         absl::StrCat("cannot create state directory ", dir));
    }
    if (chmod(dir.c_str(), 0700) != 0) {
      return ErrnoStatus(errno, absl::StrCat("chmod 0700 ", dir));
    }
  } else if (!std::filesystem::is_directory(path, error)) {
    return absl::FailedPreconditionError(
        absl::StrCat("state directory ", dir, " is not a directory"));
  }
  const std::string lock_path = (path / "lock").string();
  const int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return ErrnoStatus(errno, absl::StrCat("cannot open ", lock_path));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    const std::string holder = ReadPid(fd);
    close(fd);
    if (err == EWOULDBLOCK) {
      return absl::FailedPreconditionError(absl::StrCat(
          "state directory ", dir, " is in use by another vfio-migd", holder,
          "; give each daemon its own --state-dir"));
    }
    return ErrnoStatus(err, absl::StrCat("cannot lock ", lock_path));
  }
  const std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) !=
                                   static_cast<ssize_t>(pid.size())) {
    const int err = errno;
    close(fd);
    return ErrnoStatus(err, absl::StrCat("cannot write ", lock_path));
  }
  return std::unique_ptr<StateDir>(new StateDir(path, fd));
}

StateDir::~StateDir() { close(lock_fd_); }

}  // namespace vfiomig
