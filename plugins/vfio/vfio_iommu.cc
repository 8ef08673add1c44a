#include "plugins/vfio/vfio_iommu.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cerrno>

#include "plugins/vfio/vfio_error.h"
#include "plugins/vfio/vfio_uapi.h"

namespace vfiomig::vfio {
namespace {

absl::StatusOr<ScopedFd> OpenRdwr(const std::string& path) {
  ScopedFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return SyscallError("open", path, errno);
  return fd;
}

}  // namespace

absl::StatusOr<VfioContainer> VfioContainer::Open(const std::string& path) {
  absl::StatusOr<ScopedFd> fd = OpenRdwr(path);
  if (!fd.ok()) return fd.status();
  return VfioContainer(*std::move(fd), path);
}

absl::StatusOr<int> VfioContainer::GetApiVersion() const {
  const int version = ::ioctl(fd_.get(), uapi::kVfioGetApiVersion);
  if (version < 0) return SyscallError("VFIO_GET_API_VERSION", path_, errno);
  return version;
}

absl::StatusOr<bool> VfioContainer::CheckExtension(uint32_t extension) const {
  const int ret = ::ioctl(fd_.get(), uapi::kVfioCheckExtension, extension);
  if (ret < 0) return SyscallError("VFIO_CHECK_EXTENSION", path_, errno);
  return ret > 0;
}

absl::Status VfioContainer::SetIommu(uint32_t type) const {
  if (::ioctl(fd_.get(), uapi::kVfioSetIommu, type) < 0) {
    return SyscallError("VFIO_SET_IOMMU", path_, errno);
  }
  return absl::OkStatus();
}

absl::StatusOr<Iommufd> Iommufd::Open(const std::string& path) {
  absl::StatusOr<ScopedFd> fd = OpenRdwr(path);
  if (!fd.ok()) return fd.status();
  return Iommufd(*std::move(fd), path);
}

absl::StatusOr<uint32_t> Iommufd::IoasAlloc() const {
  uapi::iommu_ioas_alloc alloc = {};
  alloc.size = sizeof(alloc);
  if (::ioctl(fd_.get(), uapi::kIommuIoasAlloc, &alloc) < 0) {
    return SyscallError("IOMMU_IOAS_ALLOC", path_, errno);
  }
  return alloc.out_ioas_id;
}

}  // namespace vfiomig::vfio
