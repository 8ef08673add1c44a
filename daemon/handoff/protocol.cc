#include "daemon/handoff/protocol.h"

#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace vfiomig::handoff {
namespace {

absl::Status Errno(const std::string& what, int err) {
  return absl::Status(absl::ErrnoToStatusCode(err),
                      absl::StrCat(what, ": ", strerror(err)));
}

// The daemon answers at once; a peer that stalls longer is broken.
constexpr int kTimeoutSeconds = 10;

}  // namespace

std::string HandoffPathFor(const std::string& control_socket_path) {
  absl::string_view path = control_socket_path;
  if (absl::ConsumeSuffix(&path, ".sock")) {
    return absl::StrCat(path, "-handoff.sock");
  }
  return absl::StrCat(path, "-handoff");
}

absl::Status SendLine(int socket, const std::string& line, int fd) {
  struct iovec iov = {const_cast<char*>(line.data()), line.size()};
  struct msghdr msg = {};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
  }
  for (;;) {
    const ssize_t n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(line.size())) return absl::OkStatus();
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("sendmsg", errno);
    // Lines are far smaller than any socket buffer.
    return absl::DataLossError("sendmsg: short write");
  }
}

absl::StatusOr<std::string> ReceiveLine(int socket, int* fd) {
  if (fd != nullptr) *fd = -1;
  std::string line;
  while (line.size() <= kMaxHandoffLine) {
    char buf[256];
    struct iovec iov = {buf, sizeof(buf)};
    struct msghdr msg = {};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return absl::DeadlineExceededError("recvmsg: timed out");
      }
      return Errno("recvmsg", errno);
    }
    for (struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr;
         cmsg = CMSG_NXTHDR(&msg, cmsg)) {
      if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
        continue;
      }
      int received = -1;
      std::memcpy(&received, CMSG_DATA(cmsg), sizeof(int));
      if (fd != nullptr && *fd < 0) {
        *fd = received;
      } else {
        ::close(received);  // unasked-for or extra fds
      }
    }
    if (n == 0) {
      return absl::UnavailableError("connection closed before a full line");
    }
    line.append(buf, static_cast<size_t>(n));
    if (const size_t end = line.find('\n'); end != std::string::npos) {
      line.resize(end);
      return line;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("line longer than ", kMaxHandoffLine, " bytes"));
}

absl::StatusOr<int> RequestDeviceFd(const std::string& path,
                                    const std::string& device_id) {
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("hand-off socket path too long: ", path));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int sock = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return Errno("socket", errno);
  struct timeval timeout = {kTimeoutSeconds, 0};
  ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (::connect(sock, reinterpret_cast<struct sockaddr*>(&addr),
                sizeof(addr)) != 0) {
    const int err = errno;
    ::close(sock);
    return absl::UnavailableError(
        absl::StrCat("cannot reach the vfio-migd hand-off socket ", path, ": ",
                     strerror(err)));
  }
  absl::Status sent = SendLine(sock, absl::StrCat("OPEN ", device_id, "\n"));
  if (!sent.ok()) {
    ::close(sock);
    return sent;
  }
  int fd = -1;
  absl::StatusOr<std::string> reply = ReceiveLine(sock, &fd);
  ::close(sock);
  if (!reply.ok()) return reply.status();
  absl::string_view text = *reply;
  if (absl::ConsumePrefix(&text, "OK ") && text == device_id && fd >= 0) {
    return fd;
  }
  if (fd >= 0) ::close(fd);
  if (absl::ConsumePrefix(&text, "ERR ")) {
    // "ERR <code> <message>": the daemon's status code travels along.
    const size_t space = text.find(' ');
    int code = 0;
    if (space != absl::string_view::npos &&
        absl::SimpleAtoi(text.substr(0, space), &code) && code > 0 &&
        code <= 16) {
      return absl::Status(static_cast<absl::StatusCode>(code),
                          text.substr(space + 1));
    }
    return absl::UnknownError(text);
  }
  return absl::DataLossError(
      absl::StrCat("unexpected hand-off reply: '", *reply, "'"));
}

}  // namespace vfiomig::handoff
