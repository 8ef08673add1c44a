#include "daemon/migration/device_leases.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_join.h"

namespace vfiomig {

Lease::Lease(Lease&& other) noexcept
    : leases_(std::exchange(other.leases_, nullptr)),
      devices_(std::move(other.devices_)),
      owner_(std::move(other.owner_)) {}

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    leases_ = std::exchange(other.leases_, nullptr);
    devices_ = std::move(other.devices_);
    owner_ = std::move(other.owner_);
  }
  return *this;
}

Lease::~Lease() { Release(); }

void Lease::Release() {
  if (leases_ != nullptr) {
    leases_->Release(devices_, owner_);
    leases_ = nullptr;
  }
}

absl::StatusOr<Lease> DeviceLeases::Acquire(
    const std::vector<std::string>& devices, const std::string& owner) {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> busy;
  for (const std::string& device : devices) {
    auto it = owner_.find(device);
    if (it != owner_.end()) {
      busy.push_back(device + " is in migration " + it->second);
    }
  }
  if (!busy.empty()) {
    return absl::FailedPreconditionError(absl::StrJoin(busy, "; "));
  }
  for (const std::string& device : devices) owner_[device] = owner;
  return Lease(this, devices, owner);
}

std::optional<std::string> DeviceLeases::Owner(
    const std::string& device) const {
  absl::MutexLock lock(&mu_);
  auto it = owner_.find(device);
  if (it == owner_.end()) return std::nullopt;
  return it->second;
}

void DeviceLeases::Release(const std::vector<std::string>& devices,
                           const std::string& owner) {
  absl::MutexLock lock(&mu_);
  for (const std::string& device : devices) {
    auto it = owner_.find(device);
    if (it != owner_.end() && it->second == owner) owner_.erase(it);
  }
}

}  // namespace vfiomig
