// The CLI's only gRPC touch point: channel creation, deadlines, and turning
// transport failures into one clear sentence.
#ifndef VFIOMIG_CLIENT_RPC_H_
#define VFIOMIG_CLIENT_RPC_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/common.h"
#include "vfiomig/v1/control.grpc.pb.h"

namespace vfiomig::cli {

// "/run/x.sock" -> "unix:/run/x.sock"; other targets pass through. Empty is
// an error.
absl::StatusOr<std::string> NormalizeTarget(absl::string_view server);

class MigrationWatch;

class ControlClient {
 public:
  // Creates the channel. No I/O happens until the first call, so this only
  // fails for a malformed target.
  static absl::StatusOr<ControlClient> Create(const GlobalOptions& options);

  // With `include_host_devices`, also the host devices the daemon found
  // but does not manage, with the reason.
  absl::StatusOr<v1::ListDevicesResponse> ListDevices(
      bool include_host_devices = false) const;
  absl::StatusOr<v1::Device> GetDevice(const std::string& id) const;
  absl::StatusOr<v1::MigrationPlan> PlanMigration(
      const v1::PlanMigrationRequest& request) const;

  absl::StatusOr<v1::Migration> StartMigration(
      const v1::StartMigrationRequest& request) const;
  absl::StatusOr<v1::Migration> GetMigration(const std::string& id) const;
  absl::StatusOr<v1::ListMigrationsResponse> ListMigrations() const;
  // Returns once the daemon has rolled the migration back, which takes as
  // long as the slowest device's arcs: only connecting is bounded by
  // --timeout. `context` (optional) lets another thread TryCancel the wait.
  absl::StatusOr<v1::Migration> CancelMigration(
      const std::string& id, grpc::ClientContext* context = nullptr) const;

  absl::StatusOr<v1::Migration> Switchover(const std::string& id) const;
  absl::StatusOr<v1::AdmitDomainResponse> AdmitDomain(
      const v1::AdmitDomainRequest& request) const;
  absl::StatusOr<v1::ReleaseDomainResponse> ReleaseDomain(
      const v1::ReleaseDomainRequest& request) const;

  // Opens WatchMigration. Migrations run for minutes or hours, so the
  // stream has no deadline; connecting still gives up after --timeout.
  absl::StatusOr<std::unique_ptr<MigrationWatch>> WatchMigration(
      const std::string& id) const;

  const std::string& target() const { return target_; }

 private:
  ControlClient(std::string target, double timeout_seconds,
                std::shared_ptr<grpc::Channel> channel);

  // Fills a context with the call deadline.
  void PrepareContext(grpc::ClientContext* context) const;
  // For calls without a deadline: waits up to --timeout for the channel to
  // connect. A channel that fails to connect returns OK so that the call
  // itself fails at once with gRPC's reason (Translate words it).
  absl::Status AwaitConnection() const;
  // Maps a failed call to an absl::Status whose message is the full,
  // user-facing sentence (it names the target when the daemon is
  // unreachable).
  absl::Status Translate(const grpc::Status& status) const;

  std::string target_;
  double timeout_seconds_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ControlService::Stub> stub_;

  friend class MigrationWatch;
};

// An open WatchMigration stream. Read from one thread; Cancel may be called
// from any thread (it makes a blocked Read return false). The ControlClient
// that opened it must stay alive and in place while it is used.
class MigrationWatch {
 public:
  // False at the end of the stream or on error; then call Finish.
  bool Read(v1::MigrationEvent* event);
  // The stream's final status, translated like any call's.
  absl::Status Finish();
  void Cancel() { context_.TryCancel(); }

 private:
  friend class ControlClient;
  explicit MigrationWatch(const ControlClient* client) : client_(client) {}

  const ControlClient* client_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::MigrationEvent>> reader_;
};

// Prints `status` (from ControlClient) as one error line and returns the
// exit code: kExitUsage when the daemon rejected the request itself
// (unknown device, invalid argument), kExitDaemon otherwise.
int ReportRpcError(const absl::Status& status);

}  // namespace vfiomig::cli

#endif  // VFIOMIG_CLIENT_RPC_H_
