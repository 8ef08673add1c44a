#include "plugins/vfio/vfio_group.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "plugins/vfio/vfio_error.h"
#include "plugins/vfio/vfio_uapi.h"

namespace vfiomig::vfio {

absl::StatusOr<VfioGroup> VfioGroup::Open(const std::string& path) {
  ScopedFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return SyscallError("open", path, errno);
  return VfioGroup(std::move(fd), path);
}

absl::StatusOr<uint32_t> VfioGroup::GetStatus() const {
  uapi::vfio_group_status status = {};
  status.argsz = sizeof(status);
  if (::ioctl(fd_.get(), uapi::kVfioGroupGetStatus, &status) < 0) {
    return SyscallError("VFIO_GROUP_GET_STATUS", path_, errno);
  }
  return status.flags;
}

absl::Status VfioGroup::SetContainer(int container_fd) const {
  if (::ioctl(fd_.get(), uapi::kVfioGroupSetContainer, &container_fd) < 0) {
    return SyscallError("VFIO_GROUP_SET_CONTAINER", path_, errno);
  }
  return absl::OkStatus();
}

absl::StatusOr<ScopedFd> VfioGroup::GetDeviceFd(const std::string& name) const {
  const int fd = ::ioctl(fd_.get(), uapi::kVfioGroupGetDeviceFd, name.c_str());
  if (fd < 0) {
    return SyscallError("VFIO_GROUP_GET_DEVICE_FD",
                        absl::StrCat(path_, " (", name, ")"), errno);
  }
  return ScopedFd(fd);
}

}  // namespace vfiomig::vfio
