// The two IOMMU contexts a VFIO device can be attached to, as thin wrappers:
// one method per ioctl, no policy (which one to use, and when, is decided
// by VfioAccess). Errors name the ioctl, the path and errno (vfio_error.h).
//
//  - VfioContainer: the legacy /dev/vfio/vfio container that groups join.
//  - Iommufd: /dev/iommu with one IO address space (IOAS) for cdevs.
//
// Not thread-safe; VfioAccess serialises use.
#ifndef VFIOMIG_PLUGINS_VFIO_VFIO_IOMMU_H_
#define VFIOMIG_PLUGINS_VFIO_VFIO_IOMMU_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "plugins/vfio/scoped_fd.h"

namespace vfiomig::vfio {

class VfioContainer {
 public:
  // open(path, O_RDWR | O_CLOEXEC).
  static absl::StatusOr<VfioContainer> Open(const std::string& path);

  // VFIO_GET_API_VERSION.
  absl::StatusOr<int> GetApiVersion() const;
  // VFIO_CHECK_EXTENSION: true when the extension is supported.
  absl::StatusOr<bool> CheckExtension(uint32_t extension) const;
  // VFIO_SET_IOMMU; needs a group in the container.
  absl::Status SetIommu(uint32_t type) const;

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  VfioContainer(ScopedFd fd, std::string path)
      : fd_(std::move(fd)), path_(std::move(path)) {}

  ScopedFd fd_;
  std::string path_;
};

class Iommufd {
 public:
  // open(path, O_RDWR | O_CLOEXEC).
  static absl::StatusOr<Iommufd> Open(const std::string& path);

  // IOMMU_IOAS_ALLOC: a new IO address space; returns its id.
  absl::StatusOr<uint32_t> IoasAlloc() const;

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

 private:
  Iommufd(ScopedFd fd, std::string path)
      : fd_(std::move(fd)), path_(std::move(path)) {}

  ScopedFd fd_;
  std::string path_;
};

}  // namespace vfiomig::vfio

#endif  // VFIOMIG_PLUGINS_VFIO_VFIO_IOMMU_H_
