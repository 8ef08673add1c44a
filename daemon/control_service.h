// ControlService: the vfiomig.v1.ControlService gRPC service.
//
// The gRPC edge of the daemon: it validates requests, asks the inventory and
// the pure planner, converts the answers to the wire types, and turns
// absl::Status errors into gRPC status codes. No migration state lives
// here; planning touches no device state.
//
// `inventory` must outlive the service. Handlers run concurrently on gRPC's
// threads; they share only the (thread-safe) inventory.
#ifndef VFIOMIG_DAEMON_CONTROL_SERVICE_H_
#define VFIOMIG_DAEMON_CONTROL_SERVICE_H_

#include <atomic>
#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "daemon/inventory.h"
#include "grpcpp/grpcpp.h"
#include "vfiomig/v1/control.grpc.pb.h"

namespace vfiomig {

// Request bounds. Device ids are PCI addresses (12 chars), mdev UUIDs (36)
// or sim names; anything far longer is a client bug or an attack on logs.
inline constexpr size_t kMaxDeviceIdLength = 256;
// Far more devices than one VM can have.
inline constexpr size_t kMaxDevicesPerRequest = 256;

// OK when `id` is a plausible device id: non-empty, at most
// kMaxDeviceIdLength bytes, printable ASCII (ids end up in log lines).
absl::Status ValidateDeviceId(const std::string& id);

class ControlService final : public v1::ControlService::Service {
 public:
  explicit ControlService(const Inventory* inventory);

  grpc::Status ListDevices(grpc::ServerContext* context,
                           const v1::ListDevicesRequest* request,
                           v1::ListDevicesResponse* response) override;
  grpc::Status GetDevice(grpc::ServerContext* context,
                         const v1::GetDeviceRequest* request,
                         v1::Device* response) override;
  grpc::Status PlanMigration(grpc::ServerContext* context,
                             const v1::PlanMigrationRequest* request,
                             v1::MigrationPlan* response) override;

  // Calls being handled right now; lets shutdown stop waiting early.
  int calls_in_flight() const { return calls_in_flight_.load(); }

 private:
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

  const Inventory* inventory_;
  std::atomic<int> calls_in_flight_{0};
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_CONTROL_SERVICE_H_
