// VfioDeviceFd: an open VFIO device, as a thin wrapper: one method per
// ioctl (and per VFIO_DEVICE_FEATURE), errors naming the ioctl, the device
// and errno. No policy: which arcs to take, retries and deadlines live
// above (VfioDevice, the engine).
//
// The device fd comes from VfioGroup::GetDeviceFd (legacy path) or from
// opening a cdev /dev/vfio/devices/vfioN (iommufd path, which must then be
// bound and attached before any other ioctl).
//
// Thread-safe as the kernel is: every method is one system call on the fd,
// and the kernel serialises migration ioctls per device (its state_mutex).
#ifndef VFIOMIG_PLUGINS_VFIO_VFIO_DEVICE_FD_H_
#define VFIOMIG_PLUGINS_VFIO_VFIO_DEVICE_FD_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "plugins/vfio/scoped_fd.h"
#include "plugins/vfio/vfio_uapi.h"

namespace vfiomig::vfio {

class VfioDeviceFd {
 public:
  // `what` names the device in errors ("/dev/vfio/12 (0000:3b:00.1)").
  VfioDeviceFd(ScopedFd fd, std::string what)
      : fd_(std::move(fd)), what_(std::move(what)) {}

  // open(cdev, O_RDWR | O_CLOEXEC) of /dev/vfio/devices/vfioN.
  static absl::StatusOr<VfioDeviceFd> OpenCdev(const std::string& path,
                                               const std::string& id);

  // VFIO_DEVICE_BIND_IOMMUFD; returns the devid.
  absl::StatusOr<uint32_t> BindIommufd(int iommufd) const;
  // VFIO_DEVICE_ATTACH_IOMMUFD_PT to an IOAS or HWPT id.
  absl::Status AttachIommufdPt(uint32_t pt_id) const;

  // VFIO_DEVICE_GET_INFO.
  absl::StatusOr<uapi::vfio_device_info> GetInfo() const;
  // VFIO_DEVICE_RESET.
  absl::Status Reset() const;

  // VFIO_DEVICE_FEATURE GET VFIO_DEVICE_FEATURE_MIGRATION: the
  // VFIO_MIGRATION_* flags. Fails (ENOTTY/EINVAL) when the driver has no
  // migration support.
  absl::StatusOr<uint64_t> GetMigrationFlags() const;
  // VFIO_DEVICE_FEATURE GET VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE: the raw
  // enum vfio_device_mig_state.
  absl::StatusOr<uint32_t> GetMigDeviceState() const;
  // VFIO_DEVICE_FEATURE SET VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE. Returns
  // the data_fd the arc opened, or an invalid ScopedFd when it opened none.
  absl::StatusOr<ScopedFd> SetMigDeviceState(uint32_t state) const;
  // VFIO_DEVICE_FEATURE GET VFIO_DEVICE_FEATURE_MIG_DATA_SIZE (6.2+).
  absl::StatusOr<uint64_t> GetMigDataSize() const;
  // VFIO_DEVICE_FEATURE PROBE of `feature` with GET and/or SET
  // (kVfioDeviceFeatureGet/Set bits in `access`); OK when supported.
  absl::Status ProbeFeature(uint32_t feature, uint32_t access) const;

  // dup(fd) with O_CLOEXEC: another reference to the same open device, for
  // a VMM; the kernel allows only one opener of a device.
  absl::StatusOr<ScopedFd> Dup() const;

  int fd() const { return fd_.get(); }
  const std::string& what() const { return what_; }

 private:
  // One VFIO_DEVICE_FEATURE call: `flags` (feature | GET/SET/PROBE) with
  // `size` bytes of data in and out of `data`.
  absl::Status Feature(const char* name, uint32_t flags, void* data,
                       size_t size) const;

  ScopedFd fd_;
  std::string what_;
};

}  // namespace vfiomig::vfio

#endif  // VFIOMIG_PLUGINS_VFIO_VFIO_DEVICE_FD_H_
