// DeviceIdentityOf: a local device as a migration stream describes it.
//
// Both sides use the same function so that what the source puts into a
// stream header (stream/header.h) and what the destination compares it with
// are computed one way:
//  - the source builds StreamHeader::device from its source device;
//  - the destination checks the header against DeviceIdentityOf(target) and
//    DeviceStateCapacity(target) with stream::CheckHeaderCompatible.
//
// Pure: reads DeviceInfo only, no device calls.
#ifndef VFIOMIG_DAEMON_MIGRATION_DEVICE_IDENTITY_H_
#define VFIOMIG_DAEMON_MIGRATION_DEVICE_IDENTITY_H_

#include <cstdint>
#include <string>

#include "daemon/stream/header.h"
#include "plugins/backend.h"

namespace vfiomig {

// The compatibility string of a device: opaque to the stream check, which
// compares it exactly. Until backends report a driver/firmware-defined
// string, it is derived from what decides whether one device's data_fd
// stream loads into another:
//   - sim devices: "sim" (every sim device speaks the same stream format;
//     sizes are checked through the capacity, content by the sim itself);
//   - any other backend: "<backend>:<driver>" (vfio: "vfio:mlx5_vfio_pci"),
//     a placeholder that only equal drivers satisfy, which the driver and PCI
//     id comparison already demand.
std::string CompatibilityOf(const DeviceInfo& info);

// device_id, PCI vendor/device id, driver, mdev type, migration flags (the
// raw features word) and CompatibilityOf(info).
stream::DeviceIdentity DeviceIdentityOf(const DeviceInfo& info);

// No capacity check: what CheckHeaderCompatible takes for "unknown".
inline constexpr uint64_t kUnknownCapacity = UINT64_MAX;

// The most data_fd bytes (the stream's stop_copy_bytes estimate is in these
// units) the device can take in RESUMING, or kUnknownCapacity when the
// backend does not know (kernel devices: their driver refuses an oversized
// stream itself).
//
// DeviceInfo::state_capacity_bytes counts device state, but a data_fd stream
// also carries the driver's own framing (sim: a 32-byte header, 24 bytes
// per 1 MiB block, a 48-byte end record), so a device of the same size as
// the source would otherwise be refused. The capacity therefore adds
// 1/1024 of the state plus 64 KiB for framing; saturates at
// kUnknownCapacity.
uint64_t DeviceStateCapacity(const DeviceInfo& info);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_DEVICE_IDENTITY_H_
