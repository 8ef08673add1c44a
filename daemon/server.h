// Server: the daemon's gRPC server on its listen targets.
//
// Besides the daemon's own services it serves grpc.health.v1.Health (every
// hosted service and "" report SERVING while the server runs) and server
// reflection, so generic gRPC tools can discover and call the API.
//
// Who may connect: unix sockets on the file system get mode 0660 and the
// configured group, in a directory checked by PrepareSocketDirectory
// (daemon/socket_permissions.h); TCP targets get mutual TLS, or plaintext
// only when the TransportSecurity allows it (daemon/transport_security.h).
// A target the options do not allow fails Start() with the reason.
//
// Services are not owned and must outlive the Server. Start() binds every
// target or none: if one target fails, the server is not started and the
// error names the target.
#ifndef VFIOMIG_DAEMON_SERVER_H_
#define VFIOMIG_DAEMON_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "daemon/listen_address.h"
#include "daemon/socket_permissions.h"
#include "daemon/transport_security.h"
#include "grpcpp/grpcpp.h"

namespace vfiomig {

struct HostedService {
  // Full service name ("vfiomig.v1.ControlService"), for health checking.
  std::string name;
  grpc::Service* service = nullptr;
};

struct ServerOptions {
  // TCP needs TLS files or --insecure; the default allows unix sockets only.
  TransportSecurity transport;
  // Group of the unix sockets.
  SocketAccess sockets;

  // Plaintext TCP allowed: for in-process tests on 127.0.0.1.
  static ServerOptions Plaintext() {
    ServerOptions options;
    options.transport = TransportSecurity::Plaintext();
    return options;
  }
};

// Bounds of one gRPC message, both ways. A peer stream message carries a
// frame of up to 8 MiB of device data plus its header
// (daemon/stream/format.h; gRPC's default receive limit is 4 MiB); every
// other request is a few KiB, and the largest response (ListMigrations
// with its history) stays far below.
inline constexpr int kMaxMessageBytes = 16 << 20;

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> Start(
      absl::Span<const std::string> listen_targets,
      absl::Span<const HostedService> services,
      const ServerOptions& options = {});

  // Shuts down with no grace period if Shutdown() was not called.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Where clients reach the server, with TCP port 0 resolved to the chosen
  // port: "unix:/run/vfio-migd/vfio-migd.sock", "127.0.0.1:40713".
  const std::vector<std::string>& endpoints() const { return endpoints_; }

  // For in-process clients (tests).
  grpc::Server* grpc_server() { return server_.get(); }

  // Reports NOT_SERVING, stops accepting calls, lets in-flight calls finish
  // for up to `grace` and then cancels them, and removes the unix socket
  // files it created. Safe to call more than once.
  //
  // `busy` says whether calls are still in flight. Without it, shutdown
  // takes the whole grace period whenever a client keeps an idle connection
  // open and does not act on the server's GOAWAY (Python's grpcio does not
  // while no call is active): gRPC only drops such connections when it
  // cancels everything at the deadline. With it, that happens as soon as
  // `busy` returns false.
  void Shutdown(absl::Duration grace,
                const std::function<bool()>& busy = nullptr);

 private:
  struct BoundSocket {
    std::filesystem::path path;
    SocketFileId id;
  };

  Server() = default;

  std::unique_ptr<grpc::Server> server_;
  std::vector<std::string> endpoints_;
  std::vector<BoundSocket> sockets_;
  bool shut_down_ = false;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_SERVER_H_
