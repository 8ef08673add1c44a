// DeviceBackend: the narrow interface between the engine and device drivers.
//
// The engine, the planner and the services know only this header. Each
// backend (plugins/sim, plugins/vfio) lives in its own folder and registers
// a factory by name (see registry.h); nothing outside plugins/ includes a
// backend's own headers.
//
// The shape follows the kernel uAPI one to one, so a reader who knows
// include/uapi/linux/vfio.h knows this file: a Device is a VFIO device fd,
// SetState is one VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE SET, a DataSession is
// the data_fd it may return. No policy lives here: deadlines, retries and
// ordering belong to the engine.
//
// Threading: Device methods may be called from any thread; implementations
// serialise them internally. A call may block for as long as the device
// takes (drains are unbounded); callers that need a deadline run it on a
// worker.
#ifndef VFIOMIG_PLUGINS_BACKEND_H_
#define VFIOMIG_PLUGINS_BACKEND_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "daemon/core/fsm.h"

namespace vfiomig {

struct DeviceInfo {
  std::string id;           // PCI address, mdev UUID, or sim id
  std::string backend;      // "sim", "vfio"
  std::string driver;       // kernel driver, or "sim"
  std::string description;  // one line for humans
  MigrationFeatures features;
  bool migratable = true;
  std::string not_migratable_reason;
  // PCI vendor/device ids; 0 when not a PCI function (mdevs, sim devices).
  uint16_t pci_vendor_id = 0;
  uint16_t pci_device_id = 0;
  // mdev type ("mtty-2") and parent device ("mtty"); empty when not an
  // mdev.
  std::string mdev_type;
  std::string mdev_parent;
  // Kernel devices: the IOMMU group number and how the daemon opened the
  // device ("iommufd /dev/vfio/devices/vfio0", "group /dev/vfio/12").
  std::string iommu_group;
  std::string access;
  // Kernel devices: VFIO_DEVICE_FEATURE_MIG_DATA_SIZE answers, and the
  // device supports DMA logging (VFIO_DEVICE_FEATURE_DMA_LOGGING_START
  // probe).
  bool mig_data_size = false;
  bool dma_logging = false;
  // The largest device state this device can take in RESUMING, when the
  // backend knows it (sim: state_bytes). Unknown for kernel devices, whose
  // driver refuses an oversized stream itself.
  std::optional<uint64_t> state_capacity_bytes;
};

// VFIO_MIG_GET_PRECOPY_INFO.
struct PrecopyInfo {
  uint64_t initial_bytes = 0;
  uint64_t dirty_bytes = 0;
};

// A migration data session: the data_fd returned by an arc that opens one.
// PRE_COPY, PRE_COPY_P2P and STOP_COPY share one save session; STOP ->
// RESUMING opens a resume session. The session ends when the device leaves
// those states; later calls then fail.
class DataSession {
 public:
  virtual ~DataSession() = default;

  // Reads up to `buf.size()` bytes of device state. 0 means "nothing more
  // for now" in PRE_COPY/PRE_COPY_P2P and end of stream in STOP_COPY.
  virtual absl::StatusOr<size_t> Read(absl::Span<uint8_t> buf) = 0;

  // Writes all of `data` into a resume session, in stream order.
  virtual absl::Status Write(absl::Span<const uint8_t> data) = 0;

  // Pre-copy estimates; FailedPrecondition outside PRE_COPY[_P2P].
  virtual absl::StatusOr<PrecopyInfo> GetPrecopyInfo() = 0;
};

class Device {
 public:
  virtual ~Device() = default;

  virtual const DeviceInfo& info() const = 0;

  // VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE GET.
  virtual absl::StatusOr<DeviceState> GetState() = 0;

  // One arc: VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE SET to `next`, which must
  // be a single kernel arc from the current state. Returns the new session
  // when the arc opens one (fsm.h ArcOpensDataSession), else nullptr. On
  // failure the device is in its old state or in ERROR: GET to find out.
  virtual absl::StatusOr<std::unique_ptr<DataSession>> SetState(
      DeviceState next) = 0;

  // VFIO_DEVICE_FEATURE_MIG_DATA_SIZE: estimated stop-copy bytes.
  virtual absl::StatusOr<uint64_t> StopCopySize() = 0;

  // VFIO_DEVICE_RESET: the way out of ERROR; leaves the device RUNNING.
  virtual absl::Status Reset() = 0;

  // A digest of the device's current content, where the backend can know
  // it (sim devices). Unimplemented otherwise.
  virtual absl::StatusOr<std::string> ContentDigest() {
    return absl::UnimplementedError("device content is opaque");
  }

  // A new file descriptor for the open device (a dup of the backend's own),
  // for handing the device to a VMM: the kernel lets one process open a
  // device, and the backend keeps its reference and still drives arcs
  // through it. The caller owns (and closes) the result. Unimplemented for
  // devices without a kernel fd (sim).
  virtual absl::StatusOr<int> DuplicateFd() {
    return absl::UnimplementedError(
        "the device has no kernel file descriptor to hand over");
  }
};

// A device the backend found on the host but does not manage, and why
// (not bound to a VFIO driver, IOMMU group not viable, left out by
// --devices, ...). Reported on request, for operators.
struct HostDevice {
  std::string id;
  std::string driver;       // empty when unbound
  std::string description;  // one line for humans
  std::string reason;
  uint16_t pci_vendor_id = 0;
  uint16_t pci_device_id = 0;
  std::string iommu_group;
};

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;

  virtual std::string_view name() const = 0;

  // Every device this backend manages, in a stable order.
  virtual std::vector<std::shared_ptr<Device>> Devices() = 0;

  // Devices found on the host that this backend does not manage, with the
  // reason; empty for backends that do not look at the host (sim).
  virtual std::vector<HostDevice> HostDevices() { return {}; }

  // NotFound naming the id when the backend has no such device.
  absl::StatusOr<std::shared_ptr<Device>> Find(std::string_view id);
};

}  // namespace vfiomig

#endif  // VFIOMIG_PLUGINS_BACKEND_H_
