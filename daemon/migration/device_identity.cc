#include "daemon/migration/device_identity.h"

#include "absl/strings/str_cat.h"

namespace vfiomig {

std::string CompatibilityOf(const DeviceInfo& info) {
  if (info.backend == "sim") return "sim";
  return absl::StrCat(info.backend, ":", info.driver);
}

stream::DeviceIdentity DeviceIdentityOf(const DeviceInfo& info) {
  stream::DeviceIdentity identity;
  identity.device_id = info.id;
  identity.pci_vendor_id = info.pci_vendor_id;
  identity.pci_device_id = info.pci_device_id;
  identity.driver = info.driver;
  identity.mdev_type = info.mdev_type;
  identity.migration_flags = info.features.flags();
  identity.compatibility = CompatibilityOf(info);
  return identity;
}

uint64_t DeviceStateCapacity(const DeviceInfo& info) {
  if (!info.state_capacity_bytes.has_value()) return kUnknownCapacity;
  const uint64_t state = *info.state_capacity_bytes;
  constexpr uint64_t kFixedFraming = uint64_t{64} << 10;
  const uint64_t framing = state / 1024 + kFixedFraming;
  if (state > kUnknownCapacity - framing) return kUnknownCapacity;
  return state + framing;
}

}  // namespace vfiomig
