// DeviceLeases: a device takes part in at most one migration at a time.
//
// Both roles take leases: a source migration on its source devices, a
// destination migration on its target devices, so a device cannot be
// migrated out while it is being migrated into, or twice at once. A Lease
// releases its devices when destroyed.
//
// Thread-safe.
#ifndef VFIOMIG_DAEMON_MIGRATION_DEVICE_LEASES_H_
#define VFIOMIG_DAEMON_MIGRATION_DEVICE_LEASES_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace vfiomig {

class DeviceLeases;

// Movable RAII handle on a set of leased devices.
class Lease {
 public:
  Lease() = default;
  Lease(Lease&& other) noexcept;
  Lease& operator=(Lease&& other) noexcept;
  ~Lease();

  const std::vector<std::string>& devices() const { return devices_; }
  const std::string& owner() const { return owner_; }
  // Releases early; idempotent.
  void Release();

 private:
  friend class DeviceLeases;
  Lease(DeviceLeases* leases, std::vector<std::string> devices,
        std::string owner)
      : leases_(leases),
        devices_(std::move(devices)),
        owner_(std::move(owner)) {}

  DeviceLeases* leases_ = nullptr;
  std::vector<std::string> devices_;
  std::string owner_;
};

class DeviceLeases {
 public:
  // All or nothing: FailedPrecondition naming every busy device and the
  // migration that holds it ("gpu0 is in migration m-12").
  absl::StatusOr<Lease> Acquire(const std::vector<std::string>& devices,
                                const std::string& owner);

  // The migration holding `device`, if any.
  std::optional<std::string> Owner(const std::string& device) const;

 private:
  friend class Lease;
  void Release(const std::vector<std::string>& devices,
               const std::string& owner);

  mutable absl::Mutex mu_;
  std::map<std::string, std::string> owner_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_DEVICE_LEASES_H_
