#include "plugins/vfio/vfio_device.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "plugins/vfio/migration_data_fd.h"
#include "plugins/vfio/vfio_uapi.h"

namespace vfiomig::vfio {
namespace {

class VfioDataSession final : public DataSession {
 public:
  VfioDataSession(MigrationDataFd fd, DataSessionKind kind)
      : fd_(std::move(fd)), kind_(kind) {}

  absl::StatusOr<size_t> Read(absl::Span<uint8_t> buf) override {
    if (kind_ != DataSessionKind::kSave) {
      return absl::FailedPreconditionError("read from a resume session");
    }
    return fd_.Read(buf);
  }

  absl::Status Write(absl::Span<const uint8_t> data) override {
    if (kind_ != DataSessionKind::kResume) {
      return absl::FailedPreconditionError("write into a save session");
    }
    return fd_.WriteAll(data);
  }

  absl::StatusOr<PrecopyInfo> GetPrecopyInfo() override {
    if (kind_ != DataSessionKind::kSave) {
      return absl::FailedPreconditionError("pre-copy info of a resume session");
    }
    absl::StatusOr<uapi::vfio_precopy_info> info = fd_.GetPrecopyInfo();
    if (!info.ok()) {
      // The kernel answers EINVAL outside PRE_COPY[_P2P].
      if (absl::IsInvalidArgument(info.status())) {
        return absl::FailedPreconditionError(info.status().message());
      }
      return info.status();
    }
    return PrecopyInfo{.initial_bytes = info->initial_bytes,
                       .dirty_bytes = info->dirty_bytes};
  }

 private:
  const MigrationDataFd fd_;
  const DataSessionKind kind_;
};

std::string AccessText(const DiscoveredDevice& found) {
  switch (found.access) {
    case AccessPath::kIommufdCdev:
      return absl::StrCat("iommufd ", found.cdev_path);
    case AccessPath::kLegacyGroup:
      return absl::StrCat("group ", found.group_path);
    case AccessPath::kNone:
      break;
  }
  return "";
}

}  // namespace

DeviceInfo InfoFromDiscovery(const DiscoveredDevice& found) {
  DeviceInfo info;
  info.id = found.id;
  info.backend = "vfio";
  info.driver = found.driver;
  info.description = found.Description();
  info.pci_vendor_id = found.vendor_id;
  info.pci_device_id = found.device_id;
  info.mdev_type = found.mdev_type;
  info.mdev_parent = found.mdev_parent;
  info.iommu_group = found.iommu_group;
  info.access = AccessText(found);
  return info;
}

std::shared_ptr<VfioDevice> VfioDevice::Create(
    const DiscoveredDevice& found, absl::StatusOr<VfioDeviceFd> fd) {
  DeviceInfo info = InfoFromDiscovery(found);
  if (!fd.ok()) {
    info.migratable = false;
    info.not_migratable_reason =
        absl::StrCat("cannot open the device: ", fd.status().message());
    return std::shared_ptr<VfioDevice>(
        new VfioDevice(std::move(info), std::nullopt, fd.status()));
  }
  absl::StatusOr<uint64_t> flags = fd->GetMigrationFlags();
  if (!flags.ok()) {
    info.migratable = false;
    info.not_migratable_reason =
        absl::StrCat("no VFIO migration support in driver ", found.driver, " (",
                     flags.status().message(), ")");
  } else {
    info.features = MigrationFeatures(static_cast<uint32_t>(*flags));
    if (!info.features.stop_copy()) {
      info.migratable = false;
      info.not_migratable_reason = absl::StrFormat(
          "migration flags 0x%x lack VFIO_MIGRATION_STOP_COPY", *flags);
    }
    info.mig_data_size = fd->GetMigDataSize().ok();
    info.dma_logging = fd->ProbeFeature(uapi::kVfioDeviceFeatureDmaLoggingStart,
                                        uapi::kVfioDeviceFeatureSet)
                           .ok();
  }
  return std::shared_ptr<VfioDevice>(
      new VfioDevice(std::move(info), *std::move(fd), absl::OkStatus()));
}

absl::StatusOr<const VfioDeviceFd*> VfioDevice::Fd() const {
  if (!fd_.has_value()) {
    return absl::FailedPreconditionError(
        absl::StrCat(info_.id, " is not open: ", open_error_.message()));
  }
  return &*fd_;
}

absl::StatusOr<DeviceState> VfioDevice::GetState() {
  absl::StatusOr<const VfioDeviceFd*> fd = Fd();
  if (!fd.ok()) return fd.status();
  absl::StatusOr<uint32_t> raw = (*fd)->GetMigDeviceState();
  if (!raw.ok()) return raw.status();
  std::optional<DeviceState> state = DeviceStateFromKernel(*raw);
  if (!state.has_value()) {
    return absl::DataLossError(absl::StrCat(
        info_.id, ": the kernel reports unknown migration state ", *raw));
  }
  return *state;
}

absl::StatusOr<std::unique_ptr<DataSession>> VfioDevice::SetState(
    DeviceState next) {
  absl::StatusOr<const VfioDeviceFd*> fd = Fd();
  if (!fd.ok()) return fd.status();
  absl::StatusOr<DeviceState> current = GetState();
  if (!current.ok()) return current.status();
  if (!IsSingleArc(info_.features, *current, next)) {
    return absl::InvalidArgumentError(absl::StrCat(
        info_.id, ": ", ArcName(*current, next),
        " is not a single arc for features ", info_.features.ToString()));
  }
  absl::StatusOr<ScopedFd> data_fd =
      (*fd)->SetMigDeviceState(static_cast<uint32_t>(next));
  if (!data_fd.ok()) {
    // The device is in its old state, somewhere on the way, or in ERROR:
    // say which, so that the engine's recovery and the operator know.
    absl::StatusOr<DeviceState> now = GetState();
    return absl::Status(
        data_fd.status().code(),
        absl::StrCat(ArcName(*current, next), ": ", data_fd.status().message(),
                     "; device now ",
                     now.ok() ? std::string(DeviceStateName(*now))
                              : absl::StrCat("in an unknown state (",
                                             now.status().message(), ")")));
  }
  if (!data_fd->valid()) {
    if (ArcOpensDataSession(*current, next) != DataSessionKind::kNone) {
      return absl::InternalError(
          absl::StrCat(info_.id, ": ", ArcName(*current, next),
                       " succeeded but the kernel returned no data_fd"));
    }
    return std::unique_ptr<DataSession>();
  }
  const DataSessionKind kind = next == DeviceState::RESUMING
                                   ? DataSessionKind::kResume
                                   : DataSessionKind::kSave;
  return std::unique_ptr<DataSession>(new VfioDataSession(
      MigrationDataFd(*std::move(data_fd),
                      absl::StrCat("data_fd of ", info_.id)),
      kind));
}

absl::StatusOr<uint64_t> VfioDevice::StopCopySize() {
  absl::StatusOr<const VfioDeviceFd*> fd = Fd();
  if (!fd.ok()) return fd.status();
  if (!info_.mig_data_size) {
    return absl::UnimplementedError(
        absl::StrCat(info_.id, ": no VFIO_DEVICE_FEATURE_MIG_DATA_SIZE"));
  }
  return (*fd)->GetMigDataSize();
}

absl::Status VfioDevice::Reset() {
  absl::StatusOr<const VfioDeviceFd*> fd = Fd();
  if (!fd.ok()) return fd.status();
  return (*fd)->Reset();
}

absl::StatusOr<int> VfioDevice::DuplicateFd() {
  absl::StatusOr<const VfioDeviceFd*> fd = Fd();
  if (!fd.ok()) return fd.status();
  absl::StatusOr<ScopedFd> dup = (*fd)->Dup();
  if (!dup.ok()) return dup.status();
  return dup->Release();
}

}  // namespace vfiomig::vfio
