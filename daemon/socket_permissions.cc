#include "daemon/socket_permissions.h"

#include <errno.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <system_error>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace vfiomig {
namespace {

namespace fs = std::filesystem;

std::string Errno(int err) { return std::strerror(err); }

std::string Mode(mode_t mode) { return absl::StrFormat("%04o", mode & 07777); }

// Root may replace any file anyway, so a root-owned directory or socket
// gives nobody more power than they have.
bool TrustedOwner(uid_t uid) { return uid == ::geteuid() || uid == 0; }

absl::Status CheckDirectory(const fs::path& dir, const struct stat& st) {
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "socket directory '", dir.native(), "' exists and is not a directory"));
  }
  if (!TrustedOwner(st.st_uid)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "socket directory '", dir.native(), "' is owned by uid ", st.st_uid,
        ", not by this daemon (uid ", ::geteuid(),
        ") or root: its owner could replace the socket; use a directory "
        "of the daemon's own"));
  }
  if ((st.st_mode & S_IWOTH) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "socket directory '", dir.native(), "' is world-writable (mode ",
        Mode(st.st_mode),
        "): any user could replace the socket; use a directory only the "
        "daemon can write (for example /run/vfio-migd)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SocketAccess> SocketAccessForGroup(absl::string_view name) {
  if (name.empty()) {
    return absl::InvalidArgumentError("--socket-group: empty group name");
  }
  const std::string text(name);
  std::vector<char> buffer(16384);
  struct group entry {};
  struct group* found = nullptr;
  int err = 0;
  while ((err = ::getgrnam_r(text.c_str(), &entry, buffer.data(), buffer.size(),
                             &found)) == ERANGE &&
         buffer.size() < (size_t{1} << 20)) {
    buffer.resize(buffer.size() * 2);
  }
  if (err == 0 && found != nullptr) {
    return SocketAccess{.group = found->gr_gid, .group_name = text};
  }
  // A numeric gid is taken as it is: containers often have no group
  // database entry for the gid they run with.
  uint32_t gid = 0;
  if (absl::SimpleAtoi(text, &gid) &&
      text.find_first_not_of("0123456789") == std::string::npos) {
    return SocketAccess{.group = static_cast<gid_t>(gid), .group_name = text};
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--socket-group: no group '", text, "' on this system",
                   err != 0 ? absl::StrCat(" (", Errno(err), ")") : ""));
}

absl::Status PrepareSocketDirectory(const fs::path& dir,
                                    const SocketAccess& access) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) return CheckDirectory(dir, st);
  if (errno != ENOENT) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot stat socket directory '", dir.native(), "': ", Errno(errno)));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create socket directory '", dir.native(), "': ", ec.message()));
  }
  // Members of the socket group must search the directory to reach the
  // socket; nobody else may.
  if (access.group.has_value() &&
      ::chown(dir.c_str(), static_cast<uid_t>(-1), *access.group) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot give socket directory '", dir.native(),
                     "' to group ", access.group_name, ": ", Errno(errno)));
  }
  if (::chmod(dir.c_str(), kSocketDirectoryMode) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot set the mode of socket directory '", dir.native(),
                     "': ", Errno(errno)));
  }
  if (::stat(dir.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot stat socket directory '", dir.native(), "': ", Errno(errno)));
  }
  return CheckDirectory(dir, st);
}

absl::Status CheckReplaceableSocket(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("cannot stat '", path.native(), "': ", Errno(errno)));
  }
  if (!TrustedOwner(st.st_uid)) {
    return absl::FailedPreconditionError(
        absl::StrCat("'", path.native(), "' belongs to uid ", st.st_uid,
                     ", not to this daemon (uid ", ::geteuid(),
                     "); refusing to replace another user's socket"));
  }
  return absl::OkStatus();
}

absl::Status RestrictSocket(const fs::path& path, const SocketAccess& access) {
  if (access.group.has_value() &&
      ::chown(path.c_str(), static_cast<uid_t>(-1), *access.group) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot give socket '", path.native(), "' to group ",
                     access.group_name, ": ", Errno(errno)));
  }
  if (::chmod(path.c_str(), kSocketMode) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot set the mode of socket '", path.native(), "': ", Errno(errno)));
  }
  // What is there now is what clients will meet: check it, not our intent.
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot stat socket '", path.native(), "': ", Errno(errno)));
  }
  if (!S_ISSOCK(st.st_mode) || st.st_uid != ::geteuid() ||
      (st.st_mode & 07777) != kSocketMode ||
      (access.group.has_value() && st.st_gid != *access.group)) {
    return absl::FailedPreconditionError(
        absl::StrCat("socket '", path.native(), "' is not as set up (mode ",
                     Mode(st.st_mode), ", uid ", st.st_uid, ", gid ", st.st_gid,
                     "): another process changed it"));
  }
  return absl::OkStatus();
}

ScopedSocketUmask::ScopedSocketUmask() : old_(::umask(0117)) {}

ScopedSocketUmask::~ScopedSocketUmask() { ::umask(old_); }

}  // namespace vfiomig
