// PeerClient: the source's connection to a destination daemon's
// vfiomig.v1.PeerService (api/vfiomig/v1/peer.proto).
//
// One channel per migration, with HTTP/2 keepalive pings so that a dead peer
// (host gone, network cut) breaks the open StreamState calls within
// kKeepaliveTime + kKeepaliveTimeout instead of the kernel's TCP timeouts.
// The unary calls get deadlines from their caller; gRPC errors come back as
// absl::Status naming the destination and the call.
//
// Thread-safe: the calls may be made from any thread; CancelPending may be
// called from any thread to break a Prepare or Commit in flight (cancel
// from the control API).
#ifndef VFIOMIG_DAEMON_MIGRATION_SOURCE_PEER_H_
#define VFIOMIG_DAEMON_MIGRATION_SOURCE_PEER_H_

#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "vfiomig/v1/peer.grpc.pb.h"

namespace vfiomig {

// Keepalive: a ping every kKeepaliveTime, the connection declared dead when
// one is not answered within kKeepaliveTimeout. The destination's server
// must accept pings this often: server.cc accepts one every 2.5 s without
// data, and answers more frequent ones with GOAWAY "too_many_pings".
inline constexpr absl::Duration kKeepaliveTime = absl::Seconds(3);
inline constexpr absl::Duration kKeepaliveTimeout = absl::Seconds(3);

// Bound of one peer message both ways; equal to the server's
// kMaxMessageBytes (daemon/server.h), which this module cannot include.
inline constexpr int kMaxPeerMessageBytes = 16 << 20;

// The channel arguments every source-to-destination channel uses.
grpc::ChannelArguments PeerChannelArguments();

class PeerClient {
 public:
  // Connects lazily (the first call connects); never fails here: a bad or
  // unreachable target, or a failed TLS handshake, fails the first call
  // with UNAVAILABLE. `credentials` come from TransportSecurity.
  static std::unique_ptr<PeerClient> Connect(
      const std::string& target,
      std::shared_ptr<grpc::ChannelCredentials> credentials);

  PeerClient(std::string target, std::shared_ptr<grpc::Channel> channel);

  const std::string& target() const { return target_; }
  v1::PeerService::Stub& stub() { return *stub_; }

  // A PrepareResponse as the destination sent it, ready or not; an error
  // when the call itself failed.
  absl::StatusOr<v1::PrepareResponse> Prepare(const v1::PrepareRequest& request,
                                              absl::Duration timeout);
  absl::StatusOr<v1::LoadResponse> Load(const std::string& migration_id,
                                        absl::Duration timeout);
  absl::StatusOr<v1::CommitResponse> Commit(const std::string& migration_id,
                                            absl::Duration timeout);
  // Never cancelled by CancelPending: an abort must get through.
  absl::StatusOr<v1::AbortResponse> Abort(const std::string& migration_id,
                                          const std::string& reason,
                                          absl::Duration timeout);

  // Cancels the Prepare, Load or Commit in flight, if any, and every later
  // one (the migration is over, or the daemon stops; only Abort may
  // follow).
  void CancelPending();

  // False when the connection the open streams use is gone: the channel is
  // not READY any more (it reconnects, if at all, on a new connection the
  // open calls do not use). Only meaningful once a call succeeded.
  bool Connected();

 private:
  // Registers `context` for CancelPending while a call runs.
  class PendingCall;

  const std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::PeerService::Stub> stub_;
  absl::Mutex mu_;
  std::set<grpc::ClientContext*> pending_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

// gRPC's status as an absl::Status whose message starts with `what`.
absl::Status FromGrpc(const grpc::Status& status, const std::string& what);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_SOURCE_PEER_H_
