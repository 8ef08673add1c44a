// PeerService: the vfiomig.v1.PeerService gRPC service, the destination side
// of a migration (api/vfiomig/v1/peer.proto).
//
// A thin edge: it bounds request sizes, feeds stream messages to the
// registry and maps absl::Status to grpc::Status. The migrations themselves
// live in DestinationRegistry (daemon/migration/destination_registry.h).
//
// Status codes:
//  - Prepare: OK with ready=false and per-device verdicts when a device is
//    refused (nothing was touched) or a wave failed (rolled back); a sync
//    handler cannot return verdicts with an error status. INVALID_ARGUMENT
//    for malformed requests, ALREADY_EXISTS for a migration id in progress.
//  - StreamState: the first message names the migration and the device; a
//    message's `frame` holds one frame or several packed back to back.
//    INVALID_ARGUMENT / DATA_LOSS / RESOURCE_EXHAUSTED naming the device and
//    the frame for a bad stream, NOT_FOUND / FAILED_PRECONDITION for a
//    stream the migration does not expect, CANCELLED when the source went
//    away. Every failure after the stream was accepted aborts the whole
//    migration before the call returns.
//  - Load: OK when every device loaded its state (STOP) and the load is
//    recorded; otherwise the error, the migration rolled back.
//  - Commit: OK with every device's final state once the commit is
//    recorded and the resume ran (idempotent); FAILED_PRECONDITION /
//    NOT_FOUND when the migration holds no state to commit.
//  - Abort: always OK (unknown ids included).
//
// With a data channel (EnableDataChannel), a ready PrepareResponse also
// offers data channel endpoints and a token; the source may then send its
// streams over them (daemon/datachannel/) instead of StreamState calls.
//
// `inventory` and `leases` must outlive the service. Destroy it only after
// the gRPC server has shut down: it aborts incoming migrations still in
// progress.
#ifndef VFIOMIG_DAEMON_PEER_SERVICE_H_
#define VFIOMIG_DAEMON_PEER_SERVICE_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/datachannel/listener.h"
#include "daemon/inventory.h"
#include "daemon/migration/destination_options.h"
#include "daemon/migration/destination_registry.h"
#include "daemon/migration/device_leases.h"
#include "grpcpp/grpcpp.h"
#include "vfiomig/v1/control.pb.h"
#include "vfiomig/v1/peer.grpc.pb.h"

namespace vfiomig {

class PeerService final : public v1::PeerService::Service {
 public:
  PeerService(const Inventory* inventory, DeviceLeases* leases,
              DestinationOptions options = {});
  ~PeerService() override;

  grpc::Status Prepare(grpc::ServerContext* context,
                       const v1::PrepareRequest* request,
                       v1::PrepareResponse* response) override;
  grpc::Status StreamState(grpc::ServerContext* context,
                           grpc::ServerReader<v1::StateFrame>* reader,
                           v1::StreamSummary* response) override;
  grpc::Status Load(grpc::ServerContext* context,
                    const v1::LoadRequest* request,
                    v1::LoadResponse* response) override;
  grpc::Status Commit(grpc::ServerContext* context,
                      const v1::CommitRequest* request,
                      v1::CommitResponse* response) override;
  grpc::Status Abort(grpc::ServerContext* context,
                     const v1::AbortRequest* request,
                     v1::AbortResponse* response) override;

  // Incoming migrations for the control API (role "destination"): those in
  // progress, then the finished ones, newest first.
  std::vector<v1::Migration> ListMigrations() const;
  // NotFound when this daemon has no incoming migration `id`.
  absl::StatusOr<v1::Migration> GetMigration(const std::string& id) const;

  DestinationRegistry& registry() { return registry_; }

  // Listens for data channel connections on every host of `hosts` (the
  // daemon's TCP listen hosts) and offers them in ready PrepareResponses.
  // Call before the server starts. Fails when no host can be bound.
  absl::Status EnableDataChannel(const std::vector<std::string>& hosts);
  // The listener's endpoints; empty without a data channel.
  std::vector<datachannel::Endpoint> data_channel_endpoints() const;
  // Streams opened over the data channel so far.
  uint64_t data_channel_streams() const;
  // Stops accepting data channel connections and breaks open ones (their
  // streams fail). Prepare keeps offering the endpoints, which then refuse
  // connections: sources fall back to StreamState. Idempotent.
  void StopDataChannel();

  // Calls being handled right now; lets shutdown stop waiting early.
  int calls_in_flight() const { return calls_in_flight_.load(); }

 private:
  // The migration ended (Commit, Abort): its data channel token goes.
  void Withdraw(const std::string& migration_id);

  DestinationRegistry registry_;
  // Declared after registry_, so destroyed first: its connections feed the
  // registry's streams.
  std::unique_ptr<datachannel::DataChannelListener> data_channel_;
  std::atomic<int> calls_in_flight_{0};
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_PEER_SERVICE_H_
