// Compile-time cross-check of vfio_uapi.h against the host's <linux/vfio.h>
// (Linux 6.1 on Debian 12): every value the host header defines must equal
// ours. The 6.2+ values it lacks were checked by hand against Linux 6.12's
// include/uapi/linux/vfio.h and are guarded by #ifdef here, so a newer host
// header checks them too.
//
// This file includes <linux/vfio.h> and nothing of the daemon: its
// VFIO_MIGRATION_* macros would collide with daemon/core/fsm.h.
#include <linux/vfio.h>

#include <cstddef>

#include "plugins/vfio/vfio_uapi.h"

namespace vfiomig::vfio::uapi {
namespace {

static_assert(kVfioApiVersion == VFIO_API_VERSION);
static_assert(kVfioType1Iommu == VFIO_TYPE1_IOMMU);
static_assert(kVfioType1v2Iommu == VFIO_TYPE1v2_IOMMU);
static_assert(kVfioGetApiVersion == VFIO_GET_API_VERSION);
static_assert(kVfioCheckExtension == VFIO_CHECK_EXTENSION);
static_assert(kVfioSetIommu == VFIO_SET_IOMMU);
static_assert(kVfioGroupGetStatus == VFIO_GROUP_GET_STATUS);
static_assert(kVfioGroupSetContainer == VFIO_GROUP_SET_CONTAINER);
static_assert(kVfioGroupGetDeviceFd == VFIO_GROUP_GET_DEVICE_FD);
static_assert(kVfioGroupFlagsViable == VFIO_GROUP_FLAGS_VIABLE);
static_assert(kVfioGroupFlagsContainerSet == VFIO_GROUP_FLAGS_CONTAINER_SET);
static_assert(kVfioDeviceGetInfo == VFIO_DEVICE_GET_INFO);
static_assert(kVfioDeviceReset == VFIO_DEVICE_RESET);
static_assert(kVfioDeviceFlagsReset == VFIO_DEVICE_FLAGS_RESET);
static_assert(kVfioDeviceFlagsPci == VFIO_DEVICE_FLAGS_PCI);
static_assert(kVfioDeviceFeature == VFIO_DEVICE_FEATURE);
static_assert(kVfioDeviceFeatureMask == VFIO_DEVICE_FEATURE_MASK);
static_assert(kVfioDeviceFeatureGet == VFIO_DEVICE_FEATURE_GET);
static_assert(kVfioDeviceFeatureSet == VFIO_DEVICE_FEATURE_SET);
static_assert(kVfioDeviceFeatureProbe == VFIO_DEVICE_FEATURE_PROBE);
static_assert(kVfioDeviceFeatureMigration == VFIO_DEVICE_FEATURE_MIGRATION);
static_assert(kVfioDeviceFeatureMigDeviceState ==
              VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE);
static_assert(kVfioDeviceFeatureDmaLoggingStart ==
              VFIO_DEVICE_FEATURE_DMA_LOGGING_START);
static_assert(sizeof(uapi::vfio_group_status) == sizeof(::vfio_group_status));
static_assert(sizeof(uapi::vfio_device_feature) ==
              sizeof(::vfio_device_feature));
static_assert(sizeof(uapi::vfio_device_feature_mig_state) ==
              sizeof(::vfio_device_feature_mig_state));
static_assert(offsetof(uapi::vfio_device_feature_mig_state, data_fd) ==
              offsetof(::vfio_device_feature_mig_state, data_fd));
static_assert(sizeof(uapi::vfio_device_feature_migration) ==
              sizeof(::vfio_device_feature_migration));
static_assert(offsetof(uapi::vfio_device_info, cap_offset) ==
              offsetof(::vfio_device_info, cap_offset));
static_assert(VFIO_DEVICE_STATE_RUNNING_P2P == 5);

#ifdef VFIO_MIG_GET_PRECOPY_INFO
static_assert(kVfioMigGetPrecopyInfo == VFIO_MIG_GET_PRECOPY_INFO);
static_assert(sizeof(uapi::vfio_precopy_info) == sizeof(::vfio_precopy_info));
#endif
#ifdef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
static_assert(kVfioDeviceFeatureMigDataSize ==
              VFIO_DEVICE_FEATURE_MIG_DATA_SIZE);
#endif
#ifdef VFIO_DEVICE_BIND_IOMMUFD
static_assert(kVfioDeviceBindIommufd == VFIO_DEVICE_BIND_IOMMUFD);
static_assert(kVfioDeviceAttachIommufdPt == VFIO_DEVICE_ATTACH_IOMMUFD_PT);
#endif

}  // namespace
}  // namespace vfiomig::vfio::uapi
