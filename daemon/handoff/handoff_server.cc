#include "daemon/handoff/handoff_server.h"

#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "daemon/control_service.h"
#include "daemon/engine/thread_name.h"
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

// The groups of a caller: its primary gid (SO_PEERCRED) and what the group
// database lists for its user (supplementary groups).
std::vector<gid_t> CallerGroups(uid_t uid, gid_t gid) {
  std::vector<gid_t> groups = {gid};
  std::vector<char> buffer(16384);
  struct passwd pw = {};
  struct passwd* found = nullptr;
  if (::getpwuid_r(uid, &pw, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return groups;
  }
  int count = 64;
  std::vector<gid_t> listed(static_cast<size_t>(count));
  if (::getgrouplist(pw.pw_name, pw.pw_gid, listed.data(), &count) < 0) {
    listed.resize(static_cast<size_t>(count));
    if (::getgrouplist(pw.pw_name, pw.pw_gid, listed.data(), &count) < 0) {
      return groups;
    }
  }
  listed.resize(static_cast<size_t>(count));
  groups.insert(groups.end(), listed.begin(), listed.end());
  return groups;
}

}  // namespace

bool HandoffServer::CallerAllowed(uid_t uid, uid_t daemon_uid,
                                  std::optional<gid_t> socket_group,
                                  const std::vector<gid_t>& caller_groups) {
  if (uid == 0 || uid == daemon_uid) return true;
  return socket_group.has_value() &&
         std::find(caller_groups.begin(), caller_groups.end(), *socket_group) !=
             caller_groups.end();
}

absl::StatusOr<std::unique_ptr<HandoffServer>> HandoffServer::Start(
    const std::filesystem::path& path, const Inventory* inventory,
    const SocketAccess& access) {
  if (absl::Status s = PrepareUnixSocket(path, access); !s.ok()) return s;
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
  int bound;
  int bind_errno;
  {
    // Never world-accessible, not even before RestrictSocket.
    const ScopedSocketUmask umask;
    bound = ::bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof(addr));
    bind_errno = errno;
  }
  if (bound == 0) {
    if (absl::Status s = RestrictSocket(path, access); !s.ok()) {
      ::close(fd);
      ::unlink(path.c_str());
      return absl::FailedPreconditionError(
          absl::StrCat("hand-off socket ", path.native(), ": ", s.message()));
    }
  }
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
      new HandoffServer(path, inventory, access, fd, stop, *id));
  server->thread_ = std::thread([s = server.get()] {
    NameThisThread("migd-handoff");
    s->Serve();
  });
  return server;
}

HandoffServer::HandoffServer(std::filesystem::path path,
                             const Inventory* inventory, SocketAccess access,
                             int listen_fd, int stop_fd, SocketFileId id)
    : path_(std::move(path)),
      inventory_(inventory),
      access_(std::move(access)),
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
  if (!CallerAllowed(cred.uid, ::geteuid(), access_.group,
                     CallerGroups(cred.uid, cred.gid))) {
    spdlog::warn(
        "handoff: device {}: refused pid {} uid {} (only root, uid {}{} may "
        "take devices)",
        device_id, cred.pid, cred.uid, ::geteuid(),
        access_.group.has_value()
            ? absl::StrCat(" and members of group ",
                           access_.group_name.empty()
                               ? absl::StrCat(*access_.group)
                               : access_.group_name)
            : "");
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
