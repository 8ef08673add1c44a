#include "daemon/datachannel/socket.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace vfiomig::datachannel {
namespace {

absl::Status Errno(const std::string& what, int err) {
  const std::string message = absl::StrCat(what, ": ", std::strerror(err));
  switch (err) {
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
      return absl::UnavailableError(message);
    default:
      return absl::InternalError(message);
  }
}

// "[::1]" -> "::1": getaddrinfo takes IPv6 literals without brackets.
std::string Unbracket(const std::string& host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return host.substr(1, host.size() - 2);
  }
  return host;
}

struct AddrInfoDeleter {
  void operator()(addrinfo* a) const { freeaddrinfo(a); }
};
using AddrInfo = std::unique_ptr<addrinfo, AddrInfoDeleter>;

absl::StatusOr<AddrInfo> Resolve(const std::string& host, uint16_t port,
                                 bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  std::string name = Unbracket(host);
  addrinfo* result = nullptr;
  const int err = getaddrinfo(name.empty() ? nullptr : name.c_str(),
                              std::to_string(port).c_str(), &hints, &result);
  if (err != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve '", host, "': ", gai_strerror(err)));
  }
  return AddrInfo(result);
}

uint16_t PortOf(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET) {
    return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
}

}  // namespace

Socket::~Socket() {
  if (fd_ >= 0) close(fd_);
}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

void Socket::Shutdown() const {
  if (fd_ >= 0) shutdown(fd_, SHUT_RDWR);
}

absl::Status Socket::ShutdownWrite() const {
  if (shutdown(fd_, SHUT_WR) != 0) return Errno("shutdown", errno);
  return absl::OkStatus();
}

absl::StatusOr<Socket> Listen(const std::string& host, uint16_t* port) {
  absl::StatusOr<AddrInfo> addrs = Resolve(host, 0, /*passive=*/true);
  if (!addrs.ok()) return addrs.status();
  absl::Status last = absl::UnavailableError(
      absl::StrCat("no address to listen on for '", host, "'"));
  for (addrinfo* a = addrs->get(); a != nullptr; a = a->ai_next) {
    Socket s(socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, 0));
    if (!s.valid()) {
      last = Errno("socket", errno);
      continue;
    }
    if (bind(s.fd(), a->ai_addr, a->ai_addrlen) != 0 ||
        listen(s.fd(), SOMAXCONN) != 0) {
      last = Errno(absl::StrCat("listen on '", host, "'"), errno);
      continue;
    }
    *port = PortOf(s.fd());
    return s;
  }
  return last;
}

absl::StatusOr<Socket> Accept(const Socket& listener) {
  for (;;) {
    const int fd = accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) return Socket(fd);
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EINVAL || errno == EBADF) {
      return absl::CancelledError("the data channel listener stopped");
    }
    // EMFILE and the like: the caller backs off and retries.
    return Errno("accept", errno);
  }
}

absl::StatusOr<Socket> Connect(const std::string& host, uint16_t port,
                               absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<AddrInfo> addrs = Resolve(host, port, /*passive=*/false);
  if (!addrs.ok()) return addrs.status();
  const std::string where = absl::StrCat(host, ":", port);
  absl::Status last = absl::UnavailableError(
      absl::StrCat("no address to connect to for ", where));
  for (addrinfo* a = addrs->get(); a != nullptr; a = a->ai_next) {
    Socket s(
        socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!s.valid()) {
      last = Errno("socket", errno);
      continue;
    }
    if (connect(s.fd(), a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        last = Errno(absl::StrCat("connect to ", where), errno);
        continue;
      }
      pollfd p{.fd = s.fd(), .events = POLLOUT, .revents = 0};
      const int64_t ms = std::max<int64_t>(
          0, absl::ToInt64Milliseconds(deadline - absl::Now()));
      const int ready = poll(&p, 1, static_cast<int>(ms));
      if (ready == 0) {
        last = absl::DeadlineExceededError(
            absl::StrCat("connect to ", where, ": no answer within ",
                         absl::FormatDuration(timeout)));
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      if (ready < 0) {
        err = errno;
      } else if (getsockopt(s.fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
        err = errno;
      }
      if (err != 0) {
        last = Errno(absl::StrCat("connect to ", where), err);
        continue;
      }
    }
    // Blocking from here on: one thread per connection.
    const int flags = fcntl(s.fd(), F_GETFL);
    if (flags < 0 || fcntl(s.fd(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
      return Errno("fcntl", errno);
    }
    return s;
  }
  return last;
}

absl::Status ConfigureConnection(const Socket& socket) {
  const int on = 1;
  const int idle = kKeepaliveIdleSeconds;
  const int interval = kKeepaliveIntervalSeconds;
  const int count = kKeepaliveCount;
  const unsigned user_timeout =
      static_cast<unsigned>(absl::ToInt64Milliseconds(kUserTimeout));
  const int fd = socket.fd();
  if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval)) !=
          0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count)) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout,
                 sizeof(user_timeout)) != 0 ||
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0) {
    return Errno("setsockopt", errno);
  }
  return absl::OkStatus();
}

absl::Status SetReceiveTimeout(const Socket& socket, absl::Duration timeout) {
  timeval tv = absl::ToTimeval(timeout);
  if (setsockopt(socket.fd(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
    return Errno("setsockopt SO_RCVTIMEO", errno);
  }
  return absl::OkStatus();
}

absl::Status SendAll(const Socket& socket, absl::Span<const uint8_t> data) {
  while (!data.empty()) {
    const ssize_t n = send(socket.fd(), data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("send", errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status RecvAll(const Socket& socket, absl::Span<uint8_t> data) {
  const size_t want = data.size();
  while (!data.empty()) {
    const ssize_t n = recv(socket.fd(), data.data(), data.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return absl::DeadlineExceededError("receive timed out");
      }
      return Errno("recv", errno);
    }
    if (n == 0) {
      if (data.size() == want) {
        return absl::OutOfRangeError("the peer closed the connection");
      }
      return absl::DataLossError(
          absl::StrCat("the peer closed the connection after ",
                       want - data.size(), " of ", want, " bytes"));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

bool Readable(const Socket& socket) {
  pollfd p{.fd = socket.fd(), .events = POLLIN, .revents = 0};
  return poll(&p, 1, 0) > 0;
}

}  // namespace vfiomig::datachannel
