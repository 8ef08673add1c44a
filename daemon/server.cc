#include "daemon/server.h"

#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/engine/thread_name.h"
#include "grpc/grpc.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

// HTTP/2 flow-control window of each incoming stream: four 1 MiB frames of
// a source daemon (source_stream.h).
constexpr int kStreamWindowBytes = 4 << 20;
constexpr absl::Duration kKeepaliveTime = absl::Seconds(5);
constexpr absl::Duration kKeepaliveTimeout = absl::Seconds(5);

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(
    absl::Span<const std::string> listen_targets,
    absl::Span<const HostedService> services, const ServerOptions& options) {
  if (listen_targets.empty()) {
    return absl::InvalidArgumentError("no listen target");
  }
  std::vector<ListenAddress> addresses;
  absl::flat_hash_set<std::string> seen;
  for (const std::string& target : listen_targets) {
    absl::StatusOr<ListenAddress> address = ParseListenAddress(target);
    if (!address.ok()) return address.status();
    if (!seen.insert(target).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("listen target '", target, "' given twice"));
    }
    addresses.push_back(*std::move(address));
  }
  // Every target's credentials before anything is touched: a TCP target
  // without TLS files (or --insecure) stops the start here.
  std::vector<std::shared_ptr<grpc::ServerCredentials>> credentials;
  for (const ListenAddress& address : addresses) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> c =
        options.transport.ServerCredentialsFor(address.target);
    if (!c.ok()) return c.status();
    credentials.push_back(*std::move(c));
  }
  for (const ListenAddress& address : addresses) {
    if (!address.unix_path.has_value()) continue;
    if (absl::Status status =
            PrepareUnixSocket(*address.unix_path, options.sockets);
        !status.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot listen on '", address.target, "': ", status.message()));
    }
  }

  // Both are process-wide switches that take effect for builders created
  // afterwards.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which would let a second daemon bind
  // the same TCP port and silently take half of the clients.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Deliberate bounds both ways (gRPC's defaults are 4 MiB in, unlimited
  // out): a larger message fails its call with RESOURCE_EXHAUSTED before
  // it is buffered, and the daemon serves on.
  builder.SetMaxReceiveMessageSize(kMaxMessageBytes);
  builder.SetMaxSendMessageSize(kMaxMessageBytes);
  // A destination must notice a dead source within seconds, not when TCP
  // gives up after minutes: its devices sit in RESUMING until then. The
  // server pings every connection that is quiet for kKeepaliveTime and
  // drops it when no ack arrives within kKeepaliveTimeout, which cancels
  // its calls (a broken state stream aborts its migration).
  builder.AddChannelArgument(
      GRPC_ARG_KEEPALIVE_TIME_MS,
      static_cast<int>(kKeepaliveTime / absl::Milliseconds(1)));
  builder.AddChannelArgument(
      GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
      static_cast<int>(kKeepaliveTimeout / absl::Milliseconds(1)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  // By default gRPC stops pinging after two pings without data; a source
  // in a long drain sends no data but must still be watched.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Accept the same keepalive from clients (a source daemon watching its
  // destination) instead of answering it with GOAWAY "too_many_pings".
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      static_cast<int>(kKeepaliveTime / absl::Milliseconds(2)));
  // Flow control of incoming state streams: a fixed window per stream
  // instead of gRPC's bandwidth-delay probing, which on a fast link grows
  // the windows (and what a destination buffers) to many MiB per stream
  // and measured slower: the source then races ahead of the devices and
  // the destination spends its time allocating and faulting in buffers.
  // A window of kStreamWindowBytes (a few frames) keeps a stream busy
  // while bounding what each one holds.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES,
                             kStreamWindowBytes);
  // Filled by BuildAndStart in target order; a 0 left behind marks the
  // target that failed (gRPC stops at the first failure).
  std::vector<int> selected_ports(addresses.size(), 0);
  for (size_t i = 0; i < addresses.size(); ++i) {
    builder.AddListeningPort(addresses[i].target, credentials[i],
                             &selected_ports[i]);
  }
  for (const HostedService& hosted : services) {
    builder.RegisterService(hosted.service);
  }
  std::unique_ptr<grpc::Server> grpc_server;
  {
    // gRPC binds the unix sockets here: born 0660 at most.
    const ScopedSocketUmask umask;
    grpc_server = builder.BuildAndStart();
  }
  if (grpc_server == nullptr) {
    for (size_t i = 0; i < addresses.size(); ++i) {
      if (selected_ports[i] == 0) {
        return absl::UnavailableError(absl::StrCat(
            "cannot listen on '", addresses[i].target,
            "' (address in use, no permission, or unknown host; gRPC's "
            "message above has the detail)"));
      }
    }
    return absl::UnavailableError("cannot start the gRPC server");
  }

  auto server = std::unique_ptr<Server>(new Server());
  server->server_ = std::move(grpc_server);
  for (size_t i = 0; i < addresses.size(); ++i) {
    const ListenAddress& address = addresses[i];
    if (address.tcp_host.has_value()) {
      server->endpoints_.push_back(
          absl::StrCat(*address.tcp_host, ":", selected_ports[i]));
    } else if (address.unix_path.has_value()) {
      const std::filesystem::path path =
          std::filesystem::absolute(*address.unix_path);
      server->endpoints_.push_back(absl::StrCat("unix:", path.native()));
      // Remembered so that shutdown removes exactly this file.
      if (absl::StatusOr<SocketFileId> id = StatSocket(path); id.ok()) {
        server->sockets_.push_back({path, *id});
      }
      if (absl::Status status = RestrictSocket(path, options.sockets);
          !status.ok()) {
        return absl::FailedPreconditionError(absl::StrCat(
            "cannot listen on '", address.target, "': ", status.message()));
      }
    } else {
      server->endpoints_.push_back(address.target);
    }
  }

  grpc::HealthCheckServiceInterface* health =
      server->server_->GetHealthCheckService();
  if (health == nullptr) {
    return absl::InternalError("gRPC health checking is not available");
  }
  health->SetServingStatus("", true);
  for (const HostedService& hosted : services) {
    health->SetServingStatus(hosted.name, true);
  }
  return server;
}

Server::~Server() { Shutdown(absl::ZeroDuration()); }

void Server::Shutdown(absl::Duration grace, const std::function<bool()>& busy) {
  if (shut_down_) return;
  shut_down_ = true;
  // Health watchers learn first, so a load balancer stops sending work
  // while in-flight calls drain.
  if (grpc::HealthCheckServiceInterface* health =
          server_->GetHealthCheckService()) {
    health->Shutdown();
  }
  const absl::Time deadline = absl::Now() + grace;
  if (busy == nullptr) {
    server_->Shutdown(absl::ToChronoTime(deadline));
  } else {
    // grpc::Server::Shutdown blocks until every connection is gone, so it
    // runs aside while this thread watches for the calls to finish.
    std::thread shutdown([this, deadline] {
      NameThisThread("migd-shutdown");
      server_->Shutdown(absl::ToChronoTime(deadline));
    });
    while (busy() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    // What Shutdown itself does at the deadline: drops idle connections.
    grpc_server_cancel_all_calls(server_->c_server());
    shutdown.join();
  }
  server_->Wait();
  for (const BoundSocket& socket : sockets_) {
    RemoveUnixSocket(socket.path, socket.id);
  }
}

}  // namespace vfiomig
