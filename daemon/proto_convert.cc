#include "daemon/proto_convert.h"

#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"

namespace vfiomig {
namespace {

constexpr MigrationFlag kFlagOrder[] = {
    VFIO_MIGRATION_STOP_COPY, VFIO_MIGRATION_P2P, VFIO_MIGRATION_PRE_COPY};

void PathToProto(const std::vector<DeviceState>& path,
                 google::protobuf::RepeatedField<int>* out) {
  for (DeviceState state : path) out->Add(DeviceStateToProto(state));
}

}  // namespace

v1::DeviceState DeviceStateToProto(DeviceState state) {
  if (state == DeviceState::ERROR) return v1::DEVICE_STATE_ERROR;
  const auto value = static_cast<uint32_t>(state);
  // Values 1..7 are the kernel's on both sides (static_asserts below).
  if (value >= 1 && value <= 7) return static_cast<v1::DeviceState>(value);
  return v1::DEVICE_STATE_UNSPECIFIED;
}

absl::StatusOr<DeviceState> DeviceStateFromProto(v1::DeviceState state) {
  if (state == v1::DEVICE_STATE_ERROR) return DeviceState::ERROR;
  if (state >= 1 && state <= 7) {
    return static_cast<DeviceState>(static_cast<uint32_t>(state));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("invalid device state ", static_cast<int>(state)));
}

void MigrationFeaturesToProto(MigrationFeatures features,
                              google::protobuf::RepeatedField<int>* out) {
  for (MigrationFlag flag : kFlagOrder) {
    // MigrationFeature values are the kernel's flag bits.
    if (features.flags() & flag) out->Add(static_cast<int>(flag));
  }
}

absl::StatusOr<MigrationFeatures> MigrationFeaturesFromProto(
    const google::protobuf::RepeatedField<int>& features) {
  uint32_t flags = 0;
  for (int feature : features) {
    if (feature == v1::MIGRATION_FEATURE_UNSPECIFIED ||
        !v1::MigrationFeature_IsValid(feature)) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid migration feature ", feature));
    }
    flags |= static_cast<uint32_t>(feature);
  }
  return MigrationFeatures(flags);
}

void DeviceSnapshotToProto(const DeviceSnapshot& snapshot, v1::Device* out) {
  const DeviceInfo& info = snapshot.info;
  out->set_id(info.id);
  out->set_backend(info.backend);
  out->set_driver(info.driver);
  out->set_description(info.description);
  MigrationFeaturesToProto(info.features, out->mutable_features());
  out->set_migration_flags(info.features.flags());
  if (snapshot.state.ok()) {
    out->set_state(DeviceStateToProto(*snapshot.state));
    out->set_state_name(std::string(DeviceStateName(*snapshot.state)));
  }
  out->set_migratable(snapshot.migratable());
  out->set_not_migratable_reason(snapshot.not_migratable_reason());
  if (snapshot.stop_copy_bytes.has_value()) {
    out->set_stop_copy_bytes(*snapshot.stop_copy_bytes);
  }
  if (snapshot.digest.has_value()) out->set_digest(*snapshot.digest);
  out->set_pci_vendor_id(info.pci_vendor_id);
  out->set_pci_device_id(info.pci_device_id);
  out->set_mdev_type(info.mdev_type);
  out->set_mdev_parent(info.mdev_parent);
  out->set_iommu_group(info.iommu_group);
  out->set_access(info.access);
  out->set_mig_data_size(info.mig_data_size);
  out->set_dma_logging(info.dma_logging);
}

void HostDeviceToProto(const HostDevice& device, v1::HostDevice* out) {
  out->set_id(device.id);
  out->set_driver(device.driver);
  out->set_description(device.description);
  out->set_reason(device.reason);
  out->set_pci_vendor_id(device.pci_vendor_id);
  out->set_pci_device_id(device.pci_device_id);
  out->set_iommu_group(device.iommu_group);
}

PlanOptions PlanOptionsFromProto(const v1::PlanOptions& options) {
  PlanOptions result;
  result.allow_no_p2p = options.allow_no_p2p();
  return result;
}

void WaveToProto(const Wave& wave, v1::Wave* out) {
  out->set_phase(std::string(WavePhaseName(wave.phase)));
  out->set_description(std::string(WavePhaseDescription(wave.phase)));
  for (const PlannedArc& arc : wave.arcs) {
    v1::Arc* a = out->add_arcs();
    a->set_device_id(arc.device);
    a->set_from(DeviceStateToProto(arc.from));
    a->set_to(DeviceStateToProto(arc.to));
    a->set_drain(IsDrainArc(arc.from, arc.to));
  }
}

void GroupPlanToProto(const GroupPlan& plan, v1::MigrationPlan* out) {
  out->set_migratable(plan.migratable);
  for (const Blocker& blocker : plan.blockers) {
    v1::Blocker* b = out->add_blockers();
    b->set_device_id(blocker.device);
    b->set_reason(blocker.reason);
  }
  for (const Wave& wave : plan.source)
    WaveToProto(wave, out->add_source_waves());
  for (const Wave& wave : plan.destination) {
    WaveToProto(wave, out->add_destination_waves());
  }
  for (const DeviceRoute& route : plan.devices) {
    v1::DevicePath* d = out->add_devices();
    d->set_device_id(route.device);
    PathToProto(route.source_path, d->mutable_source_path());
    PathToProto(route.destination_path, d->mutable_destination_path());
    for (const std::string& reason : route.reasons) d->add_reasons(reason);
  }
  for (const std::string& warning : plan.warnings) out->add_warnings(warning);
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

// The wire enums are defined to equal the kernel's values; a drift in
// either header must not compile.
static_assert(v1::DEVICE_STATE_STOP == static_cast<int>(DeviceState::STOP));
static_assert(v1::DEVICE_STATE_RUNNING ==
              static_cast<int>(DeviceState::RUNNING));
static_assert(v1::DEVICE_STATE_STOP_COPY ==
              static_cast<int>(DeviceState::STOP_COPY));
static_assert(v1::DEVICE_STATE_RESUMING ==
              static_cast<int>(DeviceState::RESUMING));
static_assert(v1::DEVICE_STATE_RUNNING_P2P ==
              static_cast<int>(DeviceState::RUNNING_P2P));
static_assert(v1::DEVICE_STATE_PRE_COPY ==
              static_cast<int>(DeviceState::PRE_COPY));
static_assert(v1::DEVICE_STATE_PRE_COPY_P2P ==
              static_cast<int>(DeviceState::PRE_COPY_P2P));
static_assert(static_cast<uint32_t>(v1::MIGRATION_FEATURE_STOP_COPY) ==
              VFIO_MIGRATION_STOP_COPY);
static_assert(static_cast<uint32_t>(v1::MIGRATION_FEATURE_P2P) ==
              VFIO_MIGRATION_P2P);
static_assert(static_cast<uint32_t>(v1::MIGRATION_FEATURE_PRE_COPY) ==
              VFIO_MIGRATION_PRE_COPY);
static_assert(static_cast<int>(absl::StatusCode::kUnauthenticated) ==
              grpc::StatusCode::UNAUTHENTICATED);
static_assert(static_cast<int>(absl::StatusCode::kNotFound) ==
              grpc::StatusCode::NOT_FOUND);

}  // namespace vfiomig
