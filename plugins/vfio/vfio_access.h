// VfioAccess: opens VFIO devices the way the host offers them.
//
//  - iommufd + cdev (Linux 6.6+ with CONFIG_IOMMUFD and VFIO_DEVICE_CDEV):
//    one /dev/iommu per daemon with one IOAS; each device's
//    /dev/vfio/devices/vfioN is opened, bound and attached to it.
//  - legacy container + group (what Debian 12's 6.12 kernel offers): one
//    /dev/vfio/vfio container per daemon with a type1 IOMMU; each IOMMU
//    group is opened once, checked viable and added to the container, and
//    every device of the group is opened through it by name, so groups
//    with several devices work.
// The daemon maps no DMA: it only migrates device state; a VMM that
// receives a device fd (hand-off) brings its own memory mappings.
//
// Groups and the IOMMU context stay open as long as this object does;
// device fds keep their own kernel references. Thread-safe.
#ifndef VFIOMIG_PLUGINS_VFIO_VFIO_ACCESS_H_
#define VFIOMIG_PLUGINS_VFIO_VFIO_ACCESS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "plugins/vfio/sysfs_discovery.h"
#include "plugins/vfio/vfio_device_fd.h"
#include "plugins/vfio/vfio_group.h"
#include "plugins/vfio/vfio_iommu.h"

namespace vfiomig::vfio {

class VfioAccess {
 public:
  // Opens `device` through its discovered access path. Errors name the
  // failing ioctl, the path and errno; FailedPrecondition when the device
  // has no access path or its group is not viable.
  absl::StatusOr<VfioDeviceFd> Open(const DiscoveredDevice& device);

 private:
  absl::StatusOr<VfioDeviceFd> OpenThroughGroup(const DiscoveredDevice& device)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<VfioDeviceFd> OpenThroughIommufd(
      const DiscoveredDevice& device) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status EnsureContainer(const std::string& path)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::optional<VfioContainer> container_ ABSL_GUARDED_BY(mu_);
  // The type1 flavour the container supports; set once the first group
  // joined (VFIO_SET_IOMMU needs a group).
  uint32_t iommu_type_ ABSL_GUARDED_BY(mu_) = 0;
  bool iommu_set_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<Iommufd> iommufd_ ABSL_GUARDED_BY(mu_);
  uint32_t ioas_id_ ABSL_GUARDED_BY(mu_) = 0;
  // IOMMU group number -> open group in the container.
  std::map<std::string, std::unique_ptr<VfioGroup>> groups_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace vfiomig::vfio

#endif  // VFIOMIG_PLUGINS_VFIO_VFIO_ACCESS_H_
