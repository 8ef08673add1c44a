// Inventory: the devices this daemon manages, and what they look like now.
//
// The inventory owns the DeviceBackend and fixes the set of managed devices
// at startup (the backend's devices, narrowed by the --devices filter).
// Services look devices up here by id and get live snapshots of them; the
// planner gets PlanDevices built from the same snapshots, so what GetDevice
// shows is what PlanMigration plans against.
//
// Thread-safe: the device set never changes after Create(), and Device
// methods are thread-safe by contract (plugins/backend.h). A snapshot calls
// into the device (GetState, StopCopySize, ContentDigest), so it blocks for
// as long as the device does.
#ifndef VFIOMIG_DAEMON_INVENTORY_H_
#define VFIOMIG_DAEMON_INVENTORY_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "daemon/core/fsm.h"
#include "daemon/core/planner.h"
#include "plugins/backend.h"

namespace vfiomig {

// A device as observed at one moment.
struct DeviceSnapshot {
  DeviceInfo info;
  // VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE GET, or why it failed.
  absl::StatusOr<DeviceState> state = DeviceState::ERROR;
  // VFIO_DEVICE_FEATURE_MIG_DATA_SIZE, when the device reports it.
  std::optional<uint64_t> stop_copy_bytes;
  // Device::ContentDigest(), when requested and the backend can compute it.
  std::optional<std::string> digest;

  // Static migratability combined with whether the state could be read: a
  // device whose state is unknown cannot be planned.
  bool migratable() const;
  std::string not_migratable_reason() const;
};

struct SnapshotOptions {
  // VFIO_DEVICE_FEATURE_MIG_DATA_SIZE; the planner does not need it.
  bool stop_copy_size = true;
  // Reads the whole device content; only for single-device requests.
  bool digest = false;
};

class Inventory {
 public:
  // Takes ownership of `backend`. When `device_filter` is non-empty, only
  // those devices are managed, and every id in it must exist (NotFound
  // naming the missing ones otherwise); the filter is enforced here so that
  // it holds for every backend. Fails on empty or duplicate device ids.
  static absl::StatusOr<std::unique_ptr<Inventory>> Create(
      std::unique_ptr<DeviceBackend> backend,
      absl::Span<const std::string> device_filter);

  Inventory(const Inventory&) = delete;
  Inventory& operator=(const Inventory&) = delete;

  std::string_view backend_name() const { return backend_->name(); }
  size_t size() const { return devices_.size(); }
  // In the backend's stable order.
  const std::vector<std::shared_ptr<Device>>& devices() const {
    return devices_;
  }

  // Host devices the backend found but does not manage, with the reason.
  std::vector<HostDevice> host_devices() const {
    return backend_->HostDevices();
  }

  // NotFound naming `id` when it is not managed.
  absl::StatusOr<std::shared_ptr<Device>> Find(std::string_view id) const;
  // The devices for `ids`, in that order. NotFound naming every unknown id.
  absl::StatusOr<std::vector<std::shared_ptr<Device>>> FindAll(
      absl::Span<const std::string> ids) const;

  static DeviceSnapshot Snapshot(Device& device,
                                 const SnapshotOptions& options);

  // Planner input for `ids`, in that order, from live snapshots. NotFound
  // naming every unknown id.
  absl::StatusOr<std::vector<PlanDevice>> PlanDevices(
      absl::Span<const std::string> ids) const;

  static PlanDevice ToPlanDevice(const DeviceSnapshot& snapshot);

 private:
  Inventory(std::unique_ptr<DeviceBackend> backend,
            std::vector<std::shared_ptr<Device>> devices);

  std::unique_ptr<DeviceBackend> backend_;
  std::vector<std::shared_ptr<Device>> devices_;
  // id -> index into devices_. A std::map for lookups by std::string_view:
  // this absl build's string_view is not std::string_view.
  std::map<std::string, size_t, std::less<>> index_;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_INVENTORY_H_
