// ControlService: the vfiomig.v1.ControlService gRPC service.
//
// The gRPC edge of the daemon: it validates requests, asks the inventory and
// the pure planner, converts the answers to the wire types, and turns
// absl::Status errors into gRPC status codes. No migration state lives
// here: the migration RPCs delegate to the MigrationManager; planning
// touches no device state.
//
// `inventory` and `migrations` must outlive the service. Handlers run
// concurrently on gRPC's threads; they share only the (thread-safe)
// inventory and manager.
#ifndef VFIOMIG_DAEMON_CONTROL_SERVICE_H_
#define VFIOMIG_DAEMON_CONTROL_SERVICE_H_

#include <atomic>
#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "daemon/domains/domain_admission.h"
#include "daemon/inventory.h"
#include "daemon/migration/migration_manager.h"
#include "grpcpp/grpcpp.h"
#include "vfiomig/v1/control.grpc.pb.h"

namespace vfiomig {

// Request bounds. Device ids are PCI addresses (12 chars), mdev UUIDs (36)
// or sim names; anything far longer is a client bug or an attack on logs.
inline constexpr size_t kMaxDeviceIdLength = 256;
// Far more devices than one VM can have.
inline constexpr size_t kMaxDevicesPerRequest = 256;
// How long CancelMigration waits for the rollback when the call has no
// earlier deadline; the response then shows the migration still rolling
// back (a drain the kernel cannot interrupt).
inline constexpr absl::Duration kCancelWait = absl::Seconds(60);
// How often a WatchMigration handler with nothing to send checks whether
// its client went away.
inline constexpr absl::Duration kWatchPoll = absl::Milliseconds(250);

// OK when `id` is a plausible device id: non-empty, at most
// kMaxDeviceIdLength bytes, printable ASCII (ids end up in log lines).
absl::Status ValidateDeviceId(const std::string& id);

class ControlService final : public v1::ControlService::Service {
 public:
  // Without `migrations`, the migration RPCs answer UNIMPLEMENTED.
  explicit ControlService(const Inventory* inventory,
                          MigrationManager* migrations = nullptr);

  grpc::Status ListDevices(grpc::ServerContext* context,
                           const v1::ListDevicesRequest* request,
                           v1::ListDevicesResponse* response) override;
  grpc::Status GetDevice(grpc::ServerContext* context,
                         const v1::GetDeviceRequest* request,
                         v1::Device* response) override;
  grpc::Status PlanMigration(grpc::ServerContext* context,
                             const v1::PlanMigrationRequest* request,
                             v1::MigrationPlan* response) override;

  grpc::Status StartMigration(grpc::ServerContext* context,
                              const v1::StartMigrationRequest* request,
                              v1::Migration* response) override;
  grpc::Status GetMigration(grpc::ServerContext* context,
                            const v1::GetMigrationRequest* request,
                            v1::Migration* response) override;
  grpc::Status ListMigrations(grpc::ServerContext* context,
                              const v1::ListMigrationsRequest* request,
                              v1::ListMigrationsResponse* response) override;
  // Streams every event of the migration until its final one, then closes
  // with OK. Ends with CANCELLED when the client goes away.
  grpc::Status WatchMigration(
      grpc::ServerContext* context, const v1::WatchMigrationRequest* request,
      grpc::ServerWriter<v1::MigrationEvent>* writer) override;
  grpc::Status CancelMigration(grpc::ServerContext* context,
                               const v1::CancelMigrationRequest* request,
                               v1::Migration* response) override;
  grpc::Status Switchover(grpc::ServerContext* context,
                          const v1::SwitchoverRequest* request,
                          v1::Migration* response) override;

  // The libvirt hook's calls; UNIMPLEMENTED without SetDomainAdmission.
  grpc::Status AdmitDomain(grpc::ServerContext* context,
                           const v1::AdmitDomainRequest* request,
                           v1::AdmitDomainResponse* response) override;
  grpc::Status ReleaseDomain(grpc::ServerContext* context,
                             const v1::ReleaseDomainRequest* request,
                             v1::ReleaseDomainResponse* response) override;

  // Set once, before the service serves calls; must outlive it.
  void SetDomainAdmission(DomainAdmission* domains) { domains_ = domains; }

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
  MigrationManager* migrations_;
  DomainAdmission* domains_ = nullptr;
  std::atomic<int> calls_in_flight_{0};
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_CONTROL_SERVICE_H_
