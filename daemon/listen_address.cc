#include "daemon/listen_address.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <system_error>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace vfiomig {
namespace {

namespace fs = std::filesystem;

absl::Status Invalid(absl::string_view target, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad listen target '", target, "': ", why));
}

std::string Errno(int err) { return std::strerror(err); }

// What connect() tells about an existing socket file.
enum class SocketLiveness { kLive, kStale };

absl::StatusOr<SocketLiveness> Probe(const fs::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string& native = path.native();
  if (native.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unix socket path '", native, "' is longer than ",
                     sizeof(addr.sun_path) - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, native.c_str(), native.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket(): ", Errno(errno)));
  }
  const int rc =
      ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int err = errno;
  ::close(fd);
  if (rc == 0) return SocketLiveness::kLive;
  // ECONNREFUSED: nobody listens; ENOENT: vanished meanwhile.
  if (err == ECONNREFUSED || err == ENOENT) return SocketLiveness::kStale;
  return absl::FailedPreconditionError(absl::StrCat(
      "cannot tell whether '", native, "' is in use: connect(): ", Errno(err)));
}

}  // namespace

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text) {
  ListenAddress address;
  address.target = text;
  absl::string_view target = text;
  if (target.empty()) return Invalid(target, "empty");
  if (absl::StartsWith(target, "unix-abstract:")) {
    if (target == "unix-abstract:") {
      return Invalid(target, "no socket name");
    }
    return address;
  }
  if (absl::ConsumePrefix(&target, "unix:")) {
    // "unix:///run/x.sock" (URI form) and "unix:/run/x.sock" name the same
    // file.
    if (absl::StartsWith(target, "//")) {
      target.remove_prefix(2);
      if (!absl::StartsWith(target, "/")) {
        return Invalid(address.target, "unix:// needs an absolute path");
      }
    }
    if (target.empty()) return Invalid(address.target, "no socket path");
    address.unix_path = fs::path(std::string(target));
    return address;
  }
  const size_t colon = target.rfind(':');
  if (colon == absl::string_view::npos) {
    return Invalid(target,
                   "expected unix:/path, unix-abstract:name or host:port");
  }
  const absl::string_view host = target.substr(0, colon);
  const absl::string_view port = target.substr(colon + 1);
  uint32_t port_number = 0;
  if (!absl::SimpleAtoi(port, &port_number) || port_number > 65535 ||
      !absl::c_all_of(port, absl::ascii_isdigit)) {
    return Invalid(target, "port must be a number from 0 to 65535");
  }
  if (host.empty()) return Invalid(target, "no host (use [::] for any)");
  address.tcp_host = std::string(host);
  return address;
}

absl::Status PrepareUnixSocket(const fs::path& path,
                               const SocketAccess& access) {
  const fs::path dir = path.has_parent_path() ? path.parent_path() : ".";
  if (absl::Status status = PrepareSocketDirectory(dir, access); !status.ok()) {
    return status;
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::FailedPreconditionError(
        absl::StrCat("cannot stat '", path.native(), "': ", Errno(errno)));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("'", path.native(),
                     "' exists and is not a socket; refusing to remove it"));
  }
  absl::StatusOr<SocketLiveness> liveness = Probe(path);
  if (!liveness.ok()) return liveness.status();
  if (*liveness == SocketLiveness::kLive) {
    return absl::FailedPreconditionError(
        absl::StrCat("'", path.native(),
                     "' is in use by a running process (another vfio-migd?)"));
  }
  if (absl::Status status = CheckReplaceableSocket(path); !status.ok()) {
    return status;
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot remove stale socket '", path.native(), "': ", Errno(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<SocketFileId> StatSocket(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return absl::NotFoundError(
        absl::StrCat("cannot stat '", path.native(), "': ", Errno(errno)));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("'", path.native(), "' is not a socket"));
  }
  return SocketFileId{static_cast<uint64_t>(st.st_dev),
                      static_cast<uint64_t>(st.st_ino)};
}

void RemoveUnixSocket(const fs::path& path, SocketFileId id) {
  absl::StatusOr<SocketFileId> now = StatSocket(path);
  if (!now.ok() || now->device != id.device || now->inode != id.inode) return;
  ::unlink(path.c_str());
}

}  // namespace vfiomig
