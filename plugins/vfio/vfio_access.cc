#include "plugins/vfio/vfio_access.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "plugins/vfio/vfio_uapi.h"

namespace vfiomig::vfio {

absl::StatusOr<VfioDeviceFd> VfioAccess::Open(const DiscoveredDevice& device) {
  absl::MutexLock lock(&mu_);
  switch (device.access) {
    case AccessPath::kIommufdCdev:
      return OpenThroughIommufd(device);
    case AccessPath::kLegacyGroup:
      return OpenThroughGroup(device);
    case AccessPath::kNone:
      break;
  }
  return absl::FailedPreconditionError(
      absl::StrCat(device.id, ": no VFIO access path"));
}

absl::Status VfioAccess::EnsureContainer(const std::string& path) {
  if (container_.has_value()) return absl::OkStatus();
  absl::StatusOr<VfioContainer> container = VfioContainer::Open(path);
  if (!container.ok()) return container.status();
  absl::StatusOr<int> version = container->GetApiVersion();
  if (!version.ok()) return version.status();
  if (*version != uapi::kVfioApiVersion) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, ": VFIO API version ", *version, ", expected ",
                     uapi::kVfioApiVersion));
  }
  // Prefer type1v2 (the semantics every current VMM uses), else type1.
  for (uint32_t type : {uapi::kVfioType1v2Iommu, uapi::kVfioType1Iommu}) {
    absl::StatusOr<bool> supported = container->CheckExtension(type);
    if (!supported.ok()) return supported.status();
    if (*supported) {
      iommu_type_ = type;
      break;
    }
  }
  if (iommu_type_ == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": no type1 IOMMU driver (is vfio_iommu_type1 loaded?)"));
  }
  container_ = *std::move(container);
  return absl::OkStatus();
}

absl::StatusOr<VfioDeviceFd> VfioAccess::OpenThroughGroup(
    const DiscoveredDevice& device) {
  if (absl::Status s = EnsureContainer(device.container_path); !s.ok()) {
    return s;
  }
  auto it = groups_.find(device.iommu_group);
  if (it == groups_.end()) {
    absl::StatusOr<VfioGroup> group = VfioGroup::Open(device.group_path);
    if (!group.ok()) return group.status();
    absl::StatusOr<uint32_t> flags = group->GetStatus();
    if (!flags.ok()) return flags.status();
    if ((*flags & uapi::kVfioGroupFlagsViable) == 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          device.group_path,
          ": IOMMU group is not viable (every device in it must be bound "
          "to a VFIO driver or unbound)"));
    }
    if ((*flags & uapi::kVfioGroupFlagsContainerSet) == 0) {
      if (absl::Status s = group->SetContainer(container_->fd()); !s.ok()) {
        return s;
      }
    }
    if (!iommu_set_) {
      if (absl::Status s = container_->SetIommu(iommu_type_); !s.ok()) {
        return s;
      }
      iommu_set_ = true;
    }
    it = groups_
             .emplace(device.iommu_group,
                      std::make_unique<VfioGroup>(*std::move(group)))
             .first;
  }
  absl::StatusOr<ScopedFd> fd = it->second->GetDeviceFd(device.id);
  if (!fd.ok()) return fd.status();
  return VfioDeviceFd(*std::move(fd),
                      absl::StrCat(device.group_path, " (", device.id, ")"));
}

absl::StatusOr<VfioDeviceFd> VfioAccess::OpenThroughIommufd(
    const DiscoveredDevice& device) {
  if (!iommufd_.has_value()) {
    absl::StatusOr<Iommufd> iommufd = Iommufd::Open(device.iommufd_path);
    if (!iommufd.ok()) return iommufd.status();
    absl::StatusOr<uint32_t> ioas = iommufd->IoasAlloc();
    if (!ioas.ok()) return ioas.status();
    iommufd_ = *std::move(iommufd);
    ioas_id_ = *ioas;
  }
  absl::StatusOr<VfioDeviceFd> fd =
      VfioDeviceFd::OpenCdev(device.cdev_path, device.id);
  if (!fd.ok()) return fd.status();
  if (absl::StatusOr<uint32_t> devid = fd->BindIommufd(iommufd_->fd());
      !devid.ok()) {
    return devid.status();
  }
  if (absl::Status s = fd->AttachIommufdPt(ioas_id_); !s.ok()) return s;
  return fd;
}

}  // namespace vfiomig::vfio
