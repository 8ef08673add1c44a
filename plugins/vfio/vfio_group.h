// VfioGroup: a legacy VFIO group (/dev/vfio/N), as a thin wrapper: one
// method per ioctl, errors naming the ioctl, the path and errno. The kernel
// lets one process open a group at a time; devices of the group are opened
// through it by name.
//
// Not thread-safe; VfioAccess serialises use.
#ifndef VFIOMIG_PLUGINS_VFIO_VFIO_GROUP_H_
#define VFIOMIG_PLUGINS_VFIO_VFIO_GROUP_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "plugins/vfio/scoped_fd.h"

namespace vfiomig::vfio {

class VfioGroup {
 public:
  // open(path, O_RDWR | O_CLOEXEC).
  static absl::StatusOr<VfioGroup> Open(const std::string& path);

  // VFIO_GROUP_GET_STATUS: VFIO_GROUP_FLAGS_* (vfio_uapi.h).
  absl::StatusOr<uint32_t> GetStatus() const;
  // VFIO_GROUP_SET_CONTAINER.
  absl::Status SetContainer(int container_fd) const;
  // VFIO_GROUP_GET_DEVICE_FD: the device named `name` ("0000:3b:00.1", an
  // mdev UUID), which must belong to this group.
  absl::StatusOr<ScopedFd> GetDeviceFd(const std::string& name) const;

  const std::string& path() const { return path_; }

 private:
  VfioGroup(ScopedFd fd, std::string path)
      : fd_(std::move(fd)), path_(std::move(path)) {}

  ScopedFd fd_;
  std::string path_;
};

}  // namespace vfiomig::vfio

#endif  // VFIOMIG_PLUGINS_VFIO_VFIO_GROUP_H_
