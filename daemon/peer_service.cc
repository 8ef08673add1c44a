#include "daemon/peer_service.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "daemon/control_service.h"
#include "daemon/migration/destination_request.h"
#include "daemon/proto_convert.h"
#include "daemon/transport_security.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

// Counts one call for as long as it lives.
class CallScope {
 public:
  explicit CallScope(std::atomic<int>& counter) : counter_(counter) {
    ++counter_;
  }
  ~CallScope() { --counter_; }
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;

 private:
  std::atomic<int>& counter_;
};

// Where a peer call came from, for log lines: the address and, over
// mutual TLS, the certificate's name.
std::string PeerOf(const grpc::ServerContext* context) {
  return context == nullptr ? "?" : DescribePeer(*context);
}

grpc::Status Reject(std::string_view method, const grpc::ServerContext* context,
                    const absl::Status& status) {
  spdlog::warn("peer {} from {}: {}", method, PeerOf(context),
               status.ToString());
  return ToGrpcStatus(status);
}

}  // namespace

PeerService::PeerService(const Inventory* inventory, DeviceLeases* leases,
                         DestinationOptions options)
    : registry_(inventory, leases, std::move(options)) {}

PeerService::~PeerService() {
  // Its connections' streams belong to migrations the registry aborts on
  // its destruction: break them first.
  if (data_channel_ != nullptr) data_channel_->Stop();
}

absl::Status PeerService::EnableDataChannel(
    const std::vector<std::string>& hosts) {
  absl::StatusOr<std::unique_ptr<datachannel::DataChannelListener>> listener =
      datachannel::DataChannelListener::Start(
          hosts, [this](const std::string& migration_id,
                        const std::string& target_device_id) {
            return registry_.OpenStream(migration_id, target_device_id);
          });
  if (!listener.ok()) return listener.status();
  data_channel_ = *std::move(listener);
  for (const datachannel::Endpoint& e : data_channel_->endpoints()) {
    spdlog::info("data channel listening on {} port {}", e.host, e.port);
  }
  return absl::OkStatus();
}

std::vector<datachannel::Endpoint> PeerService::data_channel_endpoints() const {
  if (data_channel_ == nullptr) return {};
  return data_channel_->endpoints();
}

uint64_t PeerService::data_channel_streams() const {
  return data_channel_ == nullptr ? 0 : data_channel_->streams_opened();
}

void PeerService::StopDataChannel() {
  if (data_channel_ != nullptr) data_channel_->Stop();
}

void PeerService::Withdraw(const std::string& migration_id) {
  if (data_channel_ != nullptr) data_channel_->Withdraw(migration_id);
}

grpc::Status PeerService::Prepare(grpc::ServerContext* context,
                                  const v1::PrepareRequest* request,
                                  v1::PrepareResponse* response) {
  CallScope scope(calls_in_flight_);
  // Who asks to write device state here, before anything else happens.
  // The id is not validated yet: escaped, so it cannot forge log lines.
  spdlog::info("peer Prepare {} from {}: {} devices",
               absl::CHexEscape(
                   request->migration_id().substr(0, kMaxMigrationIdLength)),
               PeerOf(context), request->devices_size());
  absl::StatusOr<v1::PrepareResponse> result = registry_.Prepare(*request);
  if (!result.ok()) return Reject("Prepare", context, result.status());
  *response = *std::move(result);
  if (response->ready() && data_channel_ != nullptr) {
    absl::StatusOr<datachannel::Token> token =
        data_channel_->Offer(request->migration_id());
    if (token.ok()) {
      v1::DataChannelOffer* offer = response->mutable_data_channel();
      offer->set_token(token->data(), token->size());
      for (const datachannel::Endpoint& e : data_channel_->endpoints()) {
        v1::DataChannelEndpoint* endpoint = offer->add_endpoints();
        endpoint->set_host(e.host);
        endpoint->set_port(e.port);
      }
    } else {
      // The streams then take the gRPC path.
      spdlog::warn("migration {}: no data channel: {}", request->migration_id(),
                   token.status().ToString());
    }
  }
  return grpc::Status::OK;
}

grpc::Status PeerService::StreamState(
    grpc::ServerContext* context, grpc::ServerReader<v1::StateFrame>* reader,
    v1::StreamSummary* response) {
  CallScope scope(calls_in_flight_);
  v1::StateFrame message;
  if (!reader->Read(&message)) {
    return Reject("StreamState", context,
                  absl::InvalidArgumentError("empty stream: no first message"));
  }
  const std::string migration_id = message.migration_id();
  const std::string device_id = message.target_device_id();
  if (absl::Status s = ValidateMigrationId(migration_id); !s.ok()) {
    return Reject("StreamState", context, s);
  }
  if (absl::Status s = ValidateDeviceId(device_id); !s.ok()) {
    return Reject("StreamState", context, s);
  }
  absl::StatusOr<std::unique_ptr<IncomingStream>> stream =
      registry_.OpenStream(migration_id, device_id);
  if (!stream.ok()) return Reject("StreamState", context, stream.status());

  // The first message may carry only the ids.
  absl::Status status;
  if (!message.frame().empty()) status = (*stream)->Consume(message.frame());
  while (status.ok() && reader->Read(&message)) {
    // Later messages leave the ids empty; different ones mean a confused
    // sender, and a stream never changes device mid-way.
    if ((!message.migration_id().empty() &&
         message.migration_id() != migration_id) ||
        (!message.target_device_id().empty() &&
         message.target_device_id() != device_id)) {
      status = (*stream)->Fail(absl::InvalidArgumentError(
          "a later message names another migration or device"));
      break;
    }
    status = (*stream)->Consume(message.frame());
  }
  if (status.ok() && context->IsCancelled()) {
    status = (*stream)->Cancel("the source cancelled the stream");
  }
  if (!status.ok()) {
    return Reject("StreamState", context, status);
  }
  absl::StatusOr<v1::StreamSummary> summary = (*stream)->Finish();
  if (!summary.ok()) return Reject("StreamState", context, summary.status());
  *response = *std::move(summary);
  return grpc::Status::OK;
}

grpc::Status PeerService::Load(grpc::ServerContext* context,
                               const v1::LoadRequest* request,
                               v1::LoadResponse* response) {
  CallScope scope(calls_in_flight_);
  if (absl::Status s = ValidateMigrationId(request->migration_id()); !s.ok()) {
    return Reject("Load", context, s);
  }
  absl::StatusOr<v1::LoadResponse> result =
      registry_.Load(request->migration_id());
  if (!result.ok()) return Reject("Load", context, result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status PeerService::Commit(grpc::ServerContext* context,
                                 const v1::CommitRequest* request,
                                 v1::CommitResponse* response) {
  CallScope scope(calls_in_flight_);
  if (absl::Status s = ValidateMigrationId(request->migration_id()); !s.ok()) {
    return Reject("Commit", context, s);
  }
  Withdraw(request->migration_id());
  absl::StatusOr<v1::CommitResponse> result =
      registry_.Commit(request->migration_id());
  if (!result.ok()) return Reject("Commit", context, result.status());
  *response = *std::move(result);
  return grpc::Status::OK;
}

grpc::Status PeerService::Abort(grpc::ServerContext* context,
                                const v1::AbortRequest* request,
                                v1::AbortResponse* response) {
  CallScope scope(calls_in_flight_);
  // An id that cannot exist here is unknown, which Abort accepts.
  if (!ValidateMigrationId(request->migration_id()).ok()) {
    return grpc::Status::OK;
  }
  // The reason lands in logs: bound it.
  constexpr size_t kMaxReason = 1024;
  std::string reason = request->reason().substr(0, kMaxReason);
  if (reason.empty()) reason = "requested by the source";
  Withdraw(request->migration_id());
  *response = registry_.Abort(
      request->migration_id(),
      absl::StrCat("aborted by ", PeerOf(context), ": ", reason));
  return grpc::Status::OK;
}

std::vector<v1::Migration> PeerService::ListMigrations() const {
  return registry_.List();
}

absl::StatusOr<v1::Migration> PeerService::GetMigration(
    const std::string& id) const {
  return registry_.Get(id);
}

}  // namespace vfiomig
