#include "plugins/vfio/vfio_device_fd.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "plugins/vfio/vfio_error.h"

namespace vfiomig::vfio {

absl::StatusOr<VfioDeviceFd> VfioDeviceFd::OpenCdev(const std::string& path,
                                                    const std::string& id) {
  const std::string what = absl::StrCat(path, " (", id, ")");
  ScopedFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return SyscallError("open", what, errno);
  return VfioDeviceFd(std::move(fd), what);
}

absl::StatusOr<uint32_t> VfioDeviceFd::BindIommufd(int iommufd) const {
  uapi::vfio_device_bind_iommufd bind = {};
  bind.argsz = sizeof(bind);
  bind.iommufd = iommufd;
  if (::ioctl(fd_.get(), uapi::kVfioDeviceBindIommufd, &bind) < 0) {
    return SyscallError("VFIO_DEVICE_BIND_IOMMUFD", what_, errno);
  }
  return bind.out_devid;
}

absl::Status VfioDeviceFd::AttachIommufdPt(uint32_t pt_id) const {
  uapi::vfio_device_attach_iommufd_pt attach = {};
  attach.argsz = sizeof(attach);
  attach.pt_id = pt_id;
  if (::ioctl(fd_.get(), uapi::kVfioDeviceAttachIommufdPt, &attach) < 0) {
    return SyscallError("VFIO_DEVICE_ATTACH_IOMMUFD_PT", what_, errno);
  }
  return absl::OkStatus();
}

absl::StatusOr<uapi::vfio_device_info> VfioDeviceFd::GetInfo() const {
  uapi::vfio_device_info info = {};
  info.argsz = sizeof(info);
  if (::ioctl(fd_.get(), uapi::kVfioDeviceGetInfo, &info) < 0) {
    return SyscallError("VFIO_DEVICE_GET_INFO", what_, errno);
  }
  return info;
}

absl::Status VfioDeviceFd::Reset() const {
  if (::ioctl(fd_.get(), uapi::kVfioDeviceReset) < 0) {
    return SyscallError("VFIO_DEVICE_RESET", what_, errno);
  }
  return absl::OkStatus();
}

absl::Status VfioDeviceFd::Feature(const char* name, uint32_t flags, void* data,
                                   size_t size) const {
  // struct vfio_device_feature followed by the feature's data, 8-byte
  // aligned as the kernel's __aligned_u64 members need.
  std::vector<uint64_t> buffer(
      (sizeof(uapi::vfio_device_feature) + size + 7) / 8, 0);
  auto* feature = reinterpret_cast<uapi::vfio_device_feature*>(buffer.data());
  feature->argsz = static_cast<uint32_t>(sizeof(*feature) + size);
  feature->flags = flags;
  auto* payload = reinterpret_cast<uint8_t*>(feature + 1);
  if (size > 0) std::memcpy(payload, data, size);
  if (::ioctl(fd_.get(), uapi::kVfioDeviceFeature, feature) < 0) {
    return SyscallError(name, what_, errno);
  }
  if (size > 0) std::memcpy(data, payload, size);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> VfioDeviceFd::GetMigrationFlags() const {
  uapi::vfio_device_feature_migration migration = {};
  if (absl::Status s = Feature(
          "VFIO_DEVICE_FEATURE(GET MIGRATION)",
          uapi::kVfioDeviceFeatureGet | uapi::kVfioDeviceFeatureMigration,
          &migration, sizeof(migration));
      !s.ok()) {
    return s;
  }
  return migration.flags;
}

absl::StatusOr<uint32_t> VfioDeviceFd::GetMigDeviceState() const {
  uapi::vfio_device_feature_mig_state state = {};
  state.data_fd = -1;
  if (absl::Status s = Feature(
          "VFIO_DEVICE_FEATURE(GET MIG_DEVICE_STATE)",
          uapi::kVfioDeviceFeatureGet | uapi::kVfioDeviceFeatureMigDeviceState,
          &state, sizeof(state));
      !s.ok()) {
    return s;
  }
  return state.device_state;
}

absl::StatusOr<ScopedFd> VfioDeviceFd::SetMigDeviceState(uint32_t state) const {
  uapi::vfio_device_feature_mig_state mig = {};
  mig.device_state = state;
  mig.data_fd = -1;
  if (absl::Status s = Feature(
          "VFIO_DEVICE_FEATURE(SET MIG_DEVICE_STATE)",
          uapi::kVfioDeviceFeatureSet | uapi::kVfioDeviceFeatureMigDeviceState,
          &mig, sizeof(mig));
      !s.ok()) {
    return s;
  }
  return ScopedFd(mig.data_fd);
}

absl::StatusOr<uint64_t> VfioDeviceFd::GetMigDataSize() const {
  uapi::vfio_device_feature_mig_data_size size = {};
  if (absl::Status s = Feature(
          "VFIO_DEVICE_FEATURE(GET MIG_DATA_SIZE)",
          uapi::kVfioDeviceFeatureGet | uapi::kVfioDeviceFeatureMigDataSize,
          &size, sizeof(size));
      !s.ok()) {
    return s;
  }
  return size.stop_copy_length;
}

absl::Status VfioDeviceFd::ProbeFeature(uint32_t feature,
                                        uint32_t access) const {
  return Feature("VFIO_DEVICE_FEATURE(PROBE)",
                 uapi::kVfioDeviceFeatureProbe | access |
                     (feature & uapi::kVfioDeviceFeatureMask),
                 nullptr, 0);
}

absl::StatusOr<ScopedFd> VfioDeviceFd::Dup() const {
  ScopedFd dup(::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 3));
  if (!dup.valid()) return SyscallError("dup", what_, errno);
  return dup;
}

}  // namespace vfiomig::vfio
