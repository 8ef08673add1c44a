// The stream header: who sent a device state stream, for which migration,
// from which device; and the destination's check of that header against its
// own target device, made before the target enters RESUMING.
//
// On the wire the header is the payload of the HEADER frame, a serialised
// vfiomig.v1.StreamHeader (api/vfiomig/v1/stream.proto); this file converts
// between it and plain structs, so that the engine does not depend on the
// generated code. Pure: no I/O, no threads.
#ifndef VFIOMIG_DAEMON_STREAM_HEADER_H_
#define VFIOMIG_DAEMON_STREAM_HEADER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace vfiomig::stream {

// The only stream version this code writes and reads.
inline constexpr uint32_t kStreamVersion = 1;

// A device as the migration sees it. On the source it describes the device
// being saved; on the destination, the device about to be resumed.
struct DeviceIdentity {
  std::string device_id;       // id on its own host; never compared
  uint16_t pci_vendor_id = 0;  // 0 when not a PCI function
  uint16_t pci_device_id = 0;
  std::string driver;
  std::string mdev_type;         // empty when not an mdev
  uint32_t migration_flags = 0;  // raw VFIO_DEVICE_FEATURE_MIGRATION flags
  std::string compatibility;     // opaque, compared exactly

  friend bool operator==(const DeviceIdentity&,
                         const DeviceIdentity&) = default;
};

struct StreamHeader {
  uint32_t stream_version = kStreamVersion;
  std::string source_host;
  std::string migration_id;
  DeviceIdentity device;
  // VFIO_DEVICE_FEATURE_MIG_DATA_SIZE at the start of the save session.
  uint64_t stop_copy_bytes = 0;

  friend bool operator==(const StreamHeader&, const StreamHeader&) = default;
};

// The HEADER frame's payload. InvalidArgument when it would exceed
// kMaxHeaderPayload (only absurdly long strings do that).
absl::StatusOr<std::string> EncodeHeaderPayload(const StreamHeader& header);

// Parses and validates a HEADER payload: at most kMaxHeaderPayload bytes, a
// well-formed StreamHeader, stream_version == kStreamVersion, PCI ids that
// fit 16 bits. Unknown fields (from a newer minor writer) are ignored.
// DataLoss for unparsable bytes, InvalidArgument for bad values,
// Unimplemented for an unknown stream version.
absl::StatusOr<StreamHeader> DecodeHeaderPayload(
    absl::Span<const uint8_t> payload);

// Every reason the stream described by `header` cannot be resumed into the
// local device `target`, which accepts at most `target_capacity_bytes` of
// device state (UINT64_MAX when unknown). Empty when compatible. Reasons,
// in this order:
//   - different driver, mdev type, or PCI vendor:device;
//   - missing features: the target lacks a migration flag the source had
//     (pre-copy data may need a PRE_COPY-capable driver to load it, and a
//     group plan that used P2P on the source needs it on the destination);
//   - the source device lacks STOP_COPY (no valid v2 migration);
//   - compatibility string mismatch;
//   - the stop-copy estimate exceeds the target's capacity.
// Never compares device ids, hosts or migration ids: that is the caller's.
std::vector<std::string> HeaderIncompatibilities(
    const StreamHeader& header, const DeviceIdentity& target,
    uint64_t target_capacity_bytes);

// OK, or FailedPrecondition whose message joins every reason above with
// "; " after "stream from <host> device <id> cannot resume into <id>: ".
absl::Status CheckHeaderCompatible(const StreamHeader& header,
                                   const DeviceIdentity& target,
                                   uint64_t target_capacity_bytes);

}  // namespace vfiomig::stream

#endif  // VFIOMIG_DAEMON_STREAM_HEADER_H_
