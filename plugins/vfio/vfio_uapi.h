// The slice of the Linux VFIO and iommufd uAPI that plugins/vfio uses, in
// the project's own definitions.
//
// Why not <linux/vfio.h>: Debian 12's headers are Linux 6.1, which lacks
// the 6.2+ pieces (PRE_COPY states, VFIO_MIG_GET_PRECOPY_INFO,
// VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, the iommufd cdev ioctls), and its
// VFIO_MIGRATION_* macros would collide with the enumerators of
// daemon/core/fsm.h. The values below are copied by name from
// include/uapi/linux/vfio.h and include/uapi/linux/iommufd.h (Linux 6.12);
// vfio_uapi_check.cc compares every one that the host header also has.
//
// Names follow the kernel's (snake_case structs, kConstants for its macros)
// so that a reader who knows the header knows this file.
#ifndef VFIOMIG_PLUGINS_VFIO_VFIO_UAPI_H_
#define VFIOMIG_PLUGINS_VFIO_VFIO_UAPI_H_

#include <linux/ioctl.h>

#include <cstdint>

namespace vfiomig::vfio::uapi {

// --- vfio.h ----------------------------------------------------------------

inline constexpr int kVfioApiVersion = 0;
inline constexpr unsigned kVfioType = ';';
inline constexpr unsigned kVfioBase = 100;

// Extensions (VFIO_CHECK_EXTENSION, VFIO_SET_IOMMU).
inline constexpr uint32_t kVfioType1Iommu = 1;
inline constexpr uint32_t kVfioType1v2Iommu = 3;

// Container (/dev/vfio/vfio).
inline constexpr unsigned long kVfioGetApiVersion =
    _IO(kVfioType, kVfioBase + 0);
inline constexpr unsigned long kVfioCheckExtension =
    _IO(kVfioType, kVfioBase + 1);
inline constexpr unsigned long kVfioSetIommu = _IO(kVfioType, kVfioBase + 2);

// Group (/dev/vfio/N).
struct vfio_group_status {
  uint32_t argsz;
  uint32_t flags;
};
inline constexpr uint32_t kVfioGroupFlagsViable = 1u << 0;
inline constexpr uint32_t kVfioGroupFlagsContainerSet = 1u << 1;
inline constexpr unsigned long kVfioGroupGetStatus =
    _IO(kVfioType, kVfioBase + 3);
inline constexpr unsigned long kVfioGroupSetContainer =
    _IO(kVfioType, kVfioBase + 4);
inline constexpr unsigned long kVfioGroupGetDeviceFd =
    _IO(kVfioType, kVfioBase + 6);

// Device.
struct vfio_device_info {
  uint32_t argsz;
  uint32_t flags;
  uint32_t num_regions;
  uint32_t num_irqs;
  uint32_t cap_offset;
  uint32_t pad;
};
inline constexpr uint32_t kVfioDeviceFlagsReset = 1u << 0;
inline constexpr uint32_t kVfioDeviceFlagsPci = 1u << 1;
inline constexpr unsigned long kVfioDeviceGetInfo =
    _IO(kVfioType, kVfioBase + 7);
inline constexpr unsigned long kVfioDeviceReset =
    _IO(kVfioType, kVfioBase + 11);

// VFIO_DEVICE_FEATURE: a header followed by feature-specific data.
struct vfio_device_feature {
  uint32_t argsz;
  uint32_t flags;
  // uint8_t data[] follows.
};
inline constexpr uint32_t kVfioDeviceFeatureMask = 0xffff;
inline constexpr uint32_t kVfioDeviceFeatureGet = 1u << 16;
inline constexpr uint32_t kVfioDeviceFeatureSet = 1u << 17;
inline constexpr uint32_t kVfioDeviceFeatureProbe = 1u << 18;
inline constexpr unsigned long kVfioDeviceFeature =
    _IO(kVfioType, kVfioBase + 17);

// iommufd cdev (/dev/vfio/devices/vfioN), Linux 6.6+.
struct vfio_device_bind_iommufd {
  uint32_t argsz;
  uint32_t flags;
  int32_t iommufd;
  uint32_t out_devid;
};
inline constexpr unsigned long kVfioDeviceBindIommufd =
    _IO(kVfioType, kVfioBase + 18);
struct vfio_device_attach_iommufd_pt {
  uint32_t argsz;
  uint32_t flags;
  uint32_t pt_id;
};
inline constexpr unsigned long kVfioDeviceAttachIommufdPt =
    _IO(kVfioType, kVfioBase + 19);

// Features.
inline constexpr uint32_t kVfioDeviceFeatureMigration = 1;
struct vfio_device_feature_migration {
  alignas(8) uint64_t flags;  // VFIO_MIGRATION_* (daemon/core/fsm.h)
};
inline constexpr uint32_t kVfioDeviceFeatureMigDeviceState = 2;
struct vfio_device_feature_mig_state {
  uint32_t device_state;  // enum vfio_device_mig_state
  int32_t data_fd;
};
inline constexpr uint32_t kVfioDeviceFeatureDmaLoggingStart = 6;
inline constexpr uint32_t kVfioDeviceFeatureMigDataSize = 9;  // 6.2+
struct vfio_device_feature_mig_data_size {
  alignas(8) uint64_t stop_copy_length;
};

// On a migration data_fd in PRE_COPY / PRE_COPY_P2P, 6.2+.
struct vfio_precopy_info {
  uint32_t argsz;
  uint32_t flags;
  alignas(8) uint64_t initial_bytes;
  alignas(8) uint64_t dirty_bytes;
};
inline constexpr unsigned long kVfioMigGetPrecopyInfo =
    _IO(kVfioType, kVfioBase + 21);

// --- iommufd.h (/dev/iommu) -------------------------------------------------

inline constexpr unsigned kIommufdType = ';';
inline constexpr unsigned kIommufdCmdIoasAlloc = 0x81;
struct iommu_ioas_alloc {
  uint32_t size;
  uint32_t flags;
  uint32_t out_ioas_id;
};
inline constexpr unsigned long kIommuIoasAlloc =
    _IO(kIommufdType, kIommufdCmdIoasAlloc);

static_assert(sizeof(vfio_group_status) == 8);
static_assert(sizeof(vfio_device_info) == 24);
static_assert(sizeof(vfio_device_feature) == 8);
static_assert(sizeof(vfio_device_bind_iommufd) == 16);
static_assert(sizeof(vfio_device_attach_iommufd_pt) == 12);
static_assert(sizeof(vfio_device_feature_mig_state) == 8);
static_assert(sizeof(vfio_precopy_info) == 24);
static_assert(sizeof(iommu_ioas_alloc) == 12);

}  // namespace vfiomig::vfio::uapi

#endif  // VFIOMIG_PLUGINS_VFIO_VFIO_UAPI_H_
