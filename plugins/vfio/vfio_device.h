// VfioDevice: a kernel VFIO device behind the DeviceBackend interface.
//
// Each Device method is one uAPI call on the device fd (VfioDeviceFd):
//  - GetState: VFIO_DEVICE_FEATURE GET MIG_DEVICE_STATE.
//  - SetState: exactly one SET per arc. The arc is checked against the
//    kernel FSM first (fsm.h IsSingleArc) and refused without a call when
//    it is not a single arc: some kernels spin on STOP_COPY -> PRE_COPY.
//    The data_fd the kernel returns becomes the session; PRE_COPY_P2P ->
//    STOP_COPY returns none and the caller keeps reading the pre-copy
//    session. After a failed SET the state is read back (GET) and named in
//    the error; what to do about it (reset from ERROR or a stuck RESUMING)
//    is the engine's policy.
//  - StopCopySize: GET MIG_DATA_SIZE; Reset: VFIO_DEVICE_RESET;
//    DuplicateFd: a dup of the device fd for a VMM (hand-off).
// Sessions: Read maps ENOMSG to 0 (nothing for now, in PRE_COPY), which is
// also what a 0-byte read means there; in STOP_COPY 0 is end of stream.
//
// Capabilities are probed once, at Create: VFIO_DEVICE_FEATURE_MIGRATION
// flags (a device without them, or without STOP_COPY, is not migratable,
// with the reason), MIG_DATA_SIZE support and a DMA logging probe.
//
// Thread-safe: the kernel serialises a device's migration ioctls, and the
// object's own state is immutable after Create.
#ifndef VFIOMIG_PLUGINS_VFIO_VFIO_DEVICE_H_
#define VFIOMIG_PLUGINS_VFIO_VFIO_DEVICE_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "plugins/backend.h"
#include "plugins/vfio/sysfs_discovery.h"
#include "plugins/vfio/vfio_device_fd.h"

namespace vfiomig::vfio {

class VfioDevice final : public Device {
 public:
  // `fd` is the opened device or why opening failed; a device that could
  // not be opened is still listed, not migratable, with that reason.
  static std::shared_ptr<VfioDevice> Create(const DiscoveredDevice& found,
                                            absl::StatusOr<VfioDeviceFd> fd);

  const DeviceInfo& info() const override { return info_; }
  absl::StatusOr<DeviceState> GetState() override;
  absl::StatusOr<std::unique_ptr<DataSession>> SetState(
      DeviceState next) override;
  absl::StatusOr<uint64_t> StopCopySize() override;
  absl::Status Reset() override;
  absl::StatusOr<int> DuplicateFd() override;

 private:
  VfioDevice(DeviceInfo info, std::optional<VfioDeviceFd> fd,
             absl::Status open_error)
      : info_(std::move(info)),
        fd_(std::move(fd)),
        open_error_(std::move(open_error)) {}

  // The fd, or why there is none.
  absl::StatusOr<const VfioDeviceFd*> Fd() const;

  const DeviceInfo info_;
  const std::optional<VfioDeviceFd> fd_;
  const absl::Status open_error_;
};

// DeviceInfo of a discovered device before it is opened: identity,
// description, group and access path (capabilities come from the device).
DeviceInfo InfoFromDiscovery(const DiscoveredDevice& found);

}  // namespace vfiomig::vfio

#endif  // VFIOMIG_PLUGINS_VFIO_VFIO_DEVICE_H_
