// Discovery of VFIO devices from sysfs, and of host devices that are not
// usable through VFIO, with the reason.
//
// What counts as a VFIO device:
//  - a PCI function bound to vfio-pci or to a variant driver
//    (mlx5_vfio_pci, hisi_acc_vfio_pci, pds_vfio_pci, virtio_vfio_pci,
//    nvgrace_gpu_vfio_pci, ... and unknown others). A driver is taken for a
//    VFIO driver when the function has a `vfio-dev/vfioN` node (iommufd
//    cdev), when the driver's name says so (vfio-pci, *vfio*), or when the
//    function is alone in an IOMMU group that has a /dev/vfio/N node (only
//    a VFIO driver creates one). In a group shared with other devices a
//    group node may come from the others, so there the name must tell.
//  - an mdev (/sys/bus/mdev/devices/<uuid>) bound to its driver, with its
//    parent and type.
// Ids: PCI functions by full address ("0000:3b:00.1"), mdevs by UUID.
//
// A VFIO device is usable when it has an IOMMU group, that group is viable
// (every other device in it is unbound, or bound to a VFIO driver, pci-stub
// or pcieport: the kernel's own rule) and an access path exists: the
// iommufd cdev /dev/vfio/devices/vfioN (with /dev/iommu), else the legacy
// group node /dev/vfio/N (with /dev/vfio/vfio). Everything else found on
// the PCI and mdev buses is reported as unusable with the reason.
//
// Both roots are injectable, so tests run over fake trees
// (tests/plugins/vfio/sysfs/): only directory entries, symlink targets and
// small attribute files are read, and /dev nodes are only checked for
// existence. No ioctl happens here.
#ifndef VFIOMIG_PLUGINS_VFIO_SYSFS_DISCOVERY_H_
#define VFIOMIG_PLUGINS_VFIO_SYSFS_DISCOVERY_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace vfiomig::vfio {

struct HostRoots {
  std::filesystem::path sys = "/sys";
  std::filesystem::path dev = "/dev";
};

enum class DeviceKind { kPci, kMdev };

// How the daemon can open the device.
enum class AccessPath {
  kNone,
  kIommufdCdev,  // /dev/vfio/devices/vfioN bound to /dev/iommu
  kLegacyGroup,  // /dev/vfio/N in a /dev/vfio/vfio container
};
const char* AccessPathName(AccessPath access);  // "iommufd", "group", "none"

struct DiscoveredDevice {
  std::string id;  // "0000:3b:00.1" or an mdev UUID
  DeviceKind kind = DeviceKind::kPci;
  std::string driver;  // empty when unbound
  // PCI functions: ids and class from sysfs; 0 for mdevs.
  uint16_t vendor_id = 0;
  uint16_t device_id = 0;
  uint32_t class_code = 0;
  // mdevs: type ("mtty-2"), its human name when the driver gives one, and
  // the parent device ("mtty", "0000:3b:00.0").
  std::string mdev_type;
  std::string mdev_type_name;
  std::string mdev_parent;
  // IOMMU group number ("12"); empty when the device has none.
  std::string iommu_group;
  // Every device in that group, this one included, sorted.
  std::vector<std::string> group_devices;
  // Device nodes that exist (full paths under HostRoots::dev), else empty.
  std::string cdev_path;   // .../vfio/devices/vfioN
  std::string group_path;  // .../vfio/N
  // The kernel-side access objects the chosen path needs.
  std::string iommufd_path;    // .../iommu
  std::string container_path;  // .../vfio/vfio
  AccessPath access = AccessPath::kNone;
  // Bound to a VFIO driver (usable or not).
  bool vfio_driver = false;
  // Empty when usable; otherwise why not, for humans.
  std::string unusable_reason;

  bool usable() const { return unusable_reason.empty(); }
  // One line for humans: "PCI 15b3:101e (mlx5_vfio_pci)", "mdev mtty-2 on
  // mtty".
  std::string Description() const;
};

struct Discovery {
  std::vector<DiscoveredDevice> usable;    // PCI by address, then mdevs
  std::vector<DiscoveredDevice> unusable;  // same order
};

// Walks <sys>/bus/pci/devices and <sys>/bus/mdev/devices. A missing bus is
// empty, not an error; an unreadable sysfs root is an error naming it.
absl::StatusOr<Discovery> Discover(const HostRoots& roots);

}  // namespace vfiomig::vfio

#endif  // VFIOMIG_PLUGINS_VFIO_SYSFS_DISCOVERY_H_
