#include "daemon/control_service.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "daemon/core/planner.h"
#include "daemon/migration/destination_request.h"
#include "daemon/proto_convert.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

absl::Status ValidateDeviceIds(
    const google::protobuf::RepeatedPtrField<std::string>& ids) {
  if (ids.empty()) {
    return absl::InvalidArgumentError("device_ids is empty: name the group");
  }
  if (static_cast<size_t>(ids.size()) > kMaxDevicesPerRequest) {
    return absl::InvalidArgumentError(
        absl::StrCat("device_ids has ", ids.size(), " entries; at most ",
                     kMaxDevicesPerRequest, " are accepted"));
  }
  absl::flat_hash_set<std::string_view> seen;
  for (const std::string& id : ids) {
    if (absl::Status status = ValidateDeviceId(id); !status.ok()) {
      return status;
    }
    // A device cannot take two places in one group's waves.
    if (!seen.insert(id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("device '", id, "' is listed twice in device_ids"));
    }
  }
  return absl::OkStatus();
}

// Client mistakes are logged at info: they say nothing about the daemon's
// health, but an operator debugging a control plane wants to see them.
grpc::Status Reject(std::string_view method, const absl::Status& status) {
  spdlog::info("{}: rejected: {}", method, status.ToString());
  return ToGrpcStatus(status);
}

// Migration ids come from clients and end up in log lines.
absl::Status ValidateId(const std::string& id) {
  if (absl::Status status = ValidateMigrationId(id); !status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("migration id: ", status.message()));
  }
  return absl::OkStatus();
}

grpc::Status NoMigrations() {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      "this daemon does not run migrations");
}

std::string Summarise(const GroupPlan& plan) {
  if (plan.migratable) {
    return absl::StrCat(
        "migratable, ", plan.source.size(), " source waves, ",
        plan.destination.size(), " destination waves",
        plan.warnings.empty()
            ? ""
            : absl::StrCat(", warnings: ", absl::StrJoin(plan.warnings, "; ")));
  }
  return absl::StrCat(
      "blocked: ", absl::StrJoin(plan.blockers, "; ",
                                 [](std::string* out, const Blocker& blocker) {
                                   if (blocker.device.empty()) {
                                     absl::StrAppend(out, blocker.reason);
                                   } else {
                                     absl::StrAppend(out, blocker.device, ": ",
                                                     blocker.reason);
                                   }
                                 }));
}

}  // namespace

absl::Status ValidateDeviceId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("device id is empty");
  if (id.size() > kMaxDeviceIdLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("device id of ", id.size(), " bytes; at most ",
                     kMaxDeviceIdLength, " are accepted"));
  }
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) {
      return absl::InvalidArgumentError(
          "device id contains a byte that is not printable ASCII");
    }
  }
  return absl::OkStatus();
}

ControlService::ControlService(const Inventory* inventory,
                               MigrationManager* migrations)
    : inventory_(inventory), migrations_(migrations) {}

grpc::Status ControlService::ListDevices(grpc::ServerContext* /*context*/,
                                         const v1::ListDevicesRequest* request,
                                         v1::ListDevicesResponse* response) {
  const CallScope scope(calls_in_flight_);
  for (const std::shared_ptr<Device>& device : inventory_->devices()) {
    DeviceSnapshotToProto(Inventory::Snapshot(*device, {}),
                          response->add_devices());
  }
  if (request->include_host_devices()) {
    for (const HostDevice& device : inventory_->host_devices()) {
      HostDeviceToProto(device, response->add_host_devices());
    }
  }
  spdlog::debug("ListDevices: {} devices, {} host devices",
                response->devices_size(), response->host_devices_size());
  return grpc::Status::OK;
}

grpc::Status ControlService::GetDevice(grpc::ServerContext* /*context*/,
                                       const v1::GetDeviceRequest* request,
                                       v1::Device* response) {
  const CallScope scope(calls_in_flight_);
  if (absl::Status status = ValidateDeviceId(request->id()); !status.ok()) {
    return Reject("GetDevice", status);
  }
  absl::StatusOr<std::shared_ptr<Device>> device =
      inventory_->Find(request->id());
  if (!device.ok()) return Reject("GetDevice", device.status());
  DeviceSnapshotToProto(Inventory::Snapshot(**device, {.digest = true}),
                        response);
  spdlog::debug("GetDevice {}: {}", request->id(),
                response->state_name().empty() ? "state unknown"
                                               : response->state_name());
  return grpc::Status::OK;
}

grpc::Status ControlService::PlanMigration(
    grpc::ServerContext* context, const v1::PlanMigrationRequest* request,
    v1::MigrationPlan* response) {
  const CallScope scope(calls_in_flight_);
  if (absl::Status status = ValidateDeviceIds(request->device_ids());
      !status.ok()) {
    return Reject("PlanMigration", status);
  }
  const std::vector<std::string> ids(request->device_ids().begin(),
                                     request->device_ids().end());
  absl::StatusOr<std::vector<PlanDevice>> devices =
      inventory_->PlanDevices(ids);
  if (!devices.ok()) return Reject("PlanMigration", devices.status());
  const PlanOptions options = PlanOptionsFromProto(request->options());
  const GroupPlan plan = vfiomig::PlanMigration(*devices, options);
  GroupPlanToProto(plan, response);
  spdlog::info("PlanMigration {} allow_no_p2p={} from {}: {}",
               absl::StrJoin(ids, ","), options.allow_no_p2p,
               context != nullptr ? context->peer() : "-", Summarise(plan));
  return grpc::Status::OK;
}

grpc::Status ControlService::StartMigration(
    grpc::ServerContext* context, const v1::StartMigrationRequest* request,
    v1::Migration* response) {
  const CallScope scope(calls_in_flight_);
  if (migrations_ == nullptr) return NoMigrations();
  absl::StatusOr<v1::Migration> migration = migrations_->Start(*request);
  if (!migration.ok()) return Reject("StartMigration", migration.status());
  spdlog::info("StartMigration {} from {}: {} devices to {}", migration->id(),
               context != nullptr ? context->peer() : "-",
               migration->devices_size(), migration->peer());
  *response = *std::move(migration);
  return grpc::Status::OK;
}

grpc::Status ControlService::GetMigration(
    grpc::ServerContext* /*context*/, const v1::GetMigrationRequest* request,
    v1::Migration* response) {
  const CallScope scope(calls_in_flight_);
  if (migrations_ == nullptr) return NoMigrations();
  if (absl::Status status = ValidateId(request->id()); !status.ok()) {
    return Reject("GetMigration", status);
  }
  absl::StatusOr<v1::Migration> migration = migrations_->Get(request->id());
  if (!migration.ok()) return Reject("GetMigration", migration.status());
  *response = *std::move(migration);
  return grpc::Status::OK;
}

grpc::Status ControlService::ListMigrations(
    grpc::ServerContext* /*context*/, const v1::ListMigrationsRequest*,
    v1::ListMigrationsResponse* response) {
  const CallScope scope(calls_in_flight_);
  if (migrations_ == nullptr) return NoMigrations();
  for (v1::Migration& migration : migrations_->List()) {
    *response->add_migrations() = std::move(migration);
  }
  return grpc::Status::OK;
}

grpc::Status ControlService::WatchMigration(
    grpc::ServerContext* context, const v1::WatchMigrationRequest* request,
    grpc::ServerWriter<v1::MigrationEvent>* writer) {
  const CallScope scope(calls_in_flight_);
  if (migrations_ == nullptr) return NoMigrations();
  if (absl::Status status = ValidateId(request->id()); !status.ok()) {
    return Reject("WatchMigration", status);
  }
  absl::StatusOr<std::unique_ptr<MigrationSubscription>> subscription =
      migrations_->Watch(request->id());
  if (!subscription.ok()) {
    return Reject("WatchMigration", subscription.status());
  }
  spdlog::debug("WatchMigration {} from {}", request->id(), context->peer());
  v1::MigrationEvent event;
  for (;;) {
    switch ((*subscription)->Next(&event, kWatchPoll)) {
      case MigrationSubscription::Result::kEvent:
        // Write blocks while the client is slow; the subscription's bounded
        // queue keeps the migration from waiting for it.
        if (!writer->Write(event)) {
          return grpc::Status(grpc::StatusCode::CANCELLED,
                              "the client stopped watching");
        }
        break;
      case MigrationSubscription::Result::kEnded:
        return grpc::Status::OK;
      case MigrationSubscription::Result::kTimeout:
        if (context->IsCancelled()) {
          return grpc::Status(grpc::StatusCode::CANCELLED,
                              "the client stopped watching");
        }
        break;
    }
  }
}

grpc::Status ControlService::CancelMigration(
    grpc::ServerContext* context, const v1::CancelMigrationRequest* request,
    v1::Migration* response) {
  const CallScope scope(calls_in_flight_);
  if (migrations_ == nullptr) return NoMigrations();
  if (absl::Status status = ValidateId(request->id()); !status.ok()) {
    return Reject("CancelMigration", status);
  }
  // Compared in chrono: a call without deadline has time_point::max(),
  // which absl::Time cannot represent.
  std::chrono::system_clock::time_point wait_until =
      std::chrono::system_clock::now() +
      absl::ToChronoMilliseconds(kCancelWait);
  if (context != nullptr)
    wait_until = std::min(wait_until, context->deadline());
  const absl::Time deadline = absl::FromChrono(wait_until);
  spdlog::info("CancelMigration {} from {}", request->id(),
               context != nullptr ? context->peer() : "-");
  absl::StatusOr<v1::Migration> migration =
      migrations_->Cancel(request->id(), deadline);
  if (!migration.ok()) return Reject("CancelMigration", migration.status());
  *response = *std::move(migration);
  return grpc::Status::OK;
}

grpc::Status ControlService::Switchover(grpc::ServerContext* context,
                                        const v1::SwitchoverRequest* request,
                                        v1::Migration* response) {
  const CallScope scope(calls_in_flight_);
  if (migrations_ == nullptr) return NoMigrations();
  if (absl::Status status = ValidateId(request->id()); !status.ok()) {
    return Reject("Switchover", status);
  }
  spdlog::info("Switchover {} from {}", request->id(),
               context != nullptr ? context->peer() : "-");
  absl::StatusOr<v1::Migration> migration =
      migrations_->Switchover(request->id());
  if (!migration.ok()) return Reject("Switchover", migration.status());
  *response = *std::move(migration);
  return grpc::Status::OK;
}

grpc::Status ControlService::AdmitDomain(grpc::ServerContext* context,
                                         const v1::AdmitDomainRequest* request,
                                         v1::AdmitDomainResponse* response) {
  const CallScope scope(calls_in_flight_);
  if (domains_ == nullptr) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        "this daemon does not admit libvirt domains");
  }
  absl::StatusOr<v1::AdmitDomainResponse> admitted = domains_->Admit(*request);
  if (!admitted.ok()) return Reject("AdmitDomain", admitted.status());
  *response = *std::move(admitted);
  return grpc::Status::OK;
}

grpc::Status ControlService::ReleaseDomain(
    grpc::ServerContext* context, const v1::ReleaseDomainRequest* request,
    v1::ReleaseDomainResponse* response) {
  const CallScope scope(calls_in_flight_);
  if (domains_ == nullptr) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                        "this daemon does not admit libvirt domains");
  }
  *response = domains_->Release(*request);
  return grpc::Status::OK;
}

}  // namespace vfiomig
