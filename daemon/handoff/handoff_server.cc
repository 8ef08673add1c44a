#include "daemon/handoff/handoff_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "daemon/control_service.h"
#include "daemon/handoff/protocol.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

// A client gets this long to send its request.
constexpr int kRequestTimeoutSeconds = 2;

std::string Errno(int err) { return strerror(err); }

void Reply(int connection, const absl::Status& status) {
  (void)handoff::SendLine(
      connection,
      absl::StrCat("ERR ", static_cast<int>(status.code()), " ",
                   // One line: the message must not end the reply early.
                   absl::StrReplaceAll(status.message(), {{"\n", " "}}), "\n"));
}

}  // namespace

bool HandoffServer::CallerAllowed(uid_t uid, uid_t daemon_uid) {
  return uid == 0 || uid == daemon_uid;
}

absl::StatusOr<std::unique_ptr<HandoffServer>> HandoffServer::Start(
    const std::filesystem::path& path, const Inventory* inventory) {
  if (absl::Status s = PrepareUnixSocket(path); !s.ok()) return s;
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  if (path.native().size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("hand-off socket path too long: ", path.native()));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.native().size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("socket: ", Errno(errno)));
  }
  // Owner only from the first moment: bind under a restrictive umask.
  const mode_t old_umask = ::umask(0177);
  const int bound =
      ::bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr));
  const int bind_errno = errno;
  ::umask(old_umask);
  if (bound != 0 || ::listen(fd, 16) != 0) {
    const int err = bound != 0 ? bind_errno : errno;
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot listen on hand-off socket ", path.native(), ": ", Errno(err)));
  }
  absl::StatusOr<SocketFileId> id = StatSocket(path);
  if (!id.ok()) {
    ::close(fd);
    return id.status();
  }
  const int stop = ::eventfd(0, EFD_CLOEXEC);
  if (stop < 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("eventfd: ", Errno(errno)));
  }
  std::unique_ptr<HandoffServer> server(
      new HandoffServer(path, inventory, fd, stop, *id));
  server->thread_ = std::thread([s = server.get()] { s->Serve(); });
  return server;
}

HandoffServer::HandoffServer(std::filesystem::path path,
                             const Inventory* inventory, int listen_fd,
                             int stop_fd, SocketFileId id)
    : path_(std::move(path)),
      inventory_(inventory),
      listen_fd_(listen_fd),
      stop_fd_(stop_fd),
      socket_id_(id) {}

HandoffServer::~HandoffServer() {
  const uint64_t one = 1;
  (void)::write(stop_fd_, &one, sizeof(one));
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
  ::close(stop_fd_);
  RemoveUnixSocket(path_, socket_id_);
}

void HandoffServer::Serve() {
  for (;;) {
    struct pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("handoff: poll: {}", Errno(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    if (fds[0].revents == 0) continue;
    const int connection =
        ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) continue;
    Handle(connection);
    ::close(connection);
  }
}

void HandoffServer::Handle(int connection) {
  struct ucred cred = {};
  socklen_t len = sizeof(cred);
  if (::getsockopt(connection, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    spdlog::warn("handoff: SO_PEERCRED: {}; refused", Errno(errno));
    Reply(connection, absl::InternalError("cannot identify the caller"));
    return;
  }
  struct timeval timeout = {kRequestTimeoutSeconds, 0};
  ::setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  absl::StatusOr<std::string> request = handoff::ReceiveLine(connection);
  if (!request.ok()) {
    spdlog::warn("handoff: pid {} uid {}: bad request: {}", cred.pid, cred.uid,
                 std::string(request.status().message()));
    Reply(connection, absl::InvalidArgumentError(request.status().message()));
    return;
  }
  absl::string_view id = *request;
  if (!absl::ConsumePrefix(&id, "OPEN ")) {
    Reply(connection,
          absl::InvalidArgumentError("expected 'OPEN <device-id>'"));
    return;
  }
  const std::string device_id(id);
  if (absl::Status s = ValidateDeviceId(device_id); !s.ok()) {
    Reply(connection, s);
    return;
  }
  if (!CallerAllowed(cred.uid, ::geteuid())) {
    spdlog::warn(
        "handoff: device {}: refused pid {} uid {} (only root and "
        "uid {} may take devices)",
        device_id, cred.pid, cred.uid, ::geteuid());
    Reply(connection,
          absl::PermissionDeniedError(absl::StrCat(
              "uid ", cred.uid, " may not take devices from vfio-migd")));
    return;
  }
  absl::StatusOr<std::shared_ptr<Device>> device = inventory_->Find(device_id);
  if (!device.ok()) {
    Reply(connection, device.status());
    return;
  }
  absl::StatusOr<int> fd = (*device)->DuplicateFd();
  if (!fd.ok()) {
    spdlog::warn("handoff: device {}: pid {}: {}", device_id, cred.pid,
                 std::string(fd.status().message()));
    Reply(connection, fd.status());
    return;
  }
  absl::Status sent =
      handoff::SendLine(connection, absl::StrCat("OK ", device_id, "\n"), *fd);
  ::close(*fd);
  if (!sent.ok()) {
    spdlog::warn("handoff: device {}: pid {}: {}", device_id, cred.pid,
                 std::string(sent.message()));
    return;
  }
  spdlog::info("handoff: device {}: fd handed to pid {} uid {}", device_id,
               cred.pid, cred.uid);
}

}  // namespace vfiomig
