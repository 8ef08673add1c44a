// TCP sockets for the data channel: an owned fd, listening, connecting with
// a deadline, whole-buffer sends and receives, and the keepalive that lets
// either side notice a dead peer within seconds.
//
// Errors are absl::Status naming the operation and errno. Every function
// may be called from any thread; Shutdown() of a Socket another thread is
// blocked on makes that thread's call return an error soon after.
#ifndef VFIOMIG_DAEMON_DATACHANNEL_SOCKET_H_
#define VFIOMIG_DAEMON_DATACHANNEL_SOCKET_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace vfiomig::datachannel {

// A dead peer (host gone, cable cut) breaks a connection within about
// kKeepaliveIdle + kKeepaliveCount * kKeepaliveInterval when it is quiet,
// and within kUserTimeout when sent data stays unacknowledged: like the
// gRPC peer link's keepalive (source_peer.h).
inline constexpr int kKeepaliveIdleSeconds = 3;
inline constexpr int kKeepaliveIntervalSeconds = 1;
inline constexpr int kKeepaliveCount = 3;
inline constexpr absl::Duration kUserTimeout = absl::Seconds(10);

class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket();
  Socket(Socket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Socket& operator=(Socket&& other) noexcept;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }

  // shutdown(SHUT_RDWR): blocked calls on this socket return.
  void Shutdown() const;
  // shutdown(SHUT_WR): the peer reads EOF after what was sent.
  absl::Status ShutdownWrite() const;

 private:
  int fd_ = -1;
};

// Binds `host` (a name or address, "[::]" and "0.0.0.0" included) with an
// ephemeral port and listens. The port chosen is in *port.
absl::StatusOr<Socket> Listen(const std::string& host, uint16_t* port);

// Accepts the next connection; Cancelled once the listener is shut down.
absl::StatusOr<Socket> Accept(const Socket& listener);

// Connects to host:port within `timeout` (name resolution included).
absl::StatusOr<Socket> Connect(const std::string& host, uint16_t port,
                               absl::Duration timeout);

// Keepalive and user timeout as above, and no Nagle delay (the frames are
// large; the small messages of the handshake must not wait).
absl::Status ConfigureConnection(const Socket& socket);

// A receive timeout for the blocking reads that follow (0: none).
absl::Status SetReceiveTimeout(const Socket& socket, absl::Duration timeout);

// Sends all of `data`; an error names why the connection broke.
absl::Status SendAll(const Socket& socket, absl::Span<const uint8_t> data);
// Receives exactly data.size() bytes. OutOfRange when the peer closed the
// connection before the first byte, DataLoss when it closed in the middle.
absl::Status RecvAll(const Socket& socket, absl::Span<uint8_t> data);
// True when data (or EOF, or an error) is waiting to be read; never blocks.
bool Readable(const Socket& socket);

}  // namespace vfiomig::datachannel

#endif  // VFIOMIG_DAEMON_DATACHANNEL_SOCKET_H_
