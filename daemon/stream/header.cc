#include "daemon/stream/header.h"

#include <limits>
#include <string_view>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "daemon/core/fsm.h"
#include "daemon/stream/format.h"
#include "vfiomig/v1/stream.pb.h"

namespace vfiomig::stream {
namespace {

// Header strings come from the peer: quote them escaped and cut short, so a
// hostile one cannot flood or garble a log line.
std::string Quote(std::string_view s) {
  constexpr size_t kMaxShown = 128;
  std::string_view shown = s.substr(0, kMaxShown);
  return absl::StrCat(
      "\"", absl::CHexEscape(absl::string_view(shown.data(), shown.size())),
      s.size() > kMaxShown ? "\"..." : "\"");
}

std::string PciId(const DeviceIdentity& d) {
  return absl::StrFormat("%04x:%04x", d.pci_vendor_id, d.pci_device_id);
}

}  // namespace

absl::StatusOr<std::string> EncodeHeaderPayload(const StreamHeader& header) {
  v1::StreamHeader msg;
  msg.set_stream_version(header.stream_version);
  msg.set_source_host(header.source_host);
  msg.set_migration_id(header.migration_id);
  msg.set_stop_copy_bytes(header.stop_copy_bytes);
  v1::StreamDeviceIdentity* d = msg.mutable_device();
  d->set_device_id(header.device.device_id);
  d->set_pci_vendor_id(header.device.pci_vendor_id);
  d->set_pci_device_id(header.device.pci_device_id);
  d->set_driver(header.device.driver);
  d->set_mdev_type(header.device.mdev_type);
  d->set_migration_flags(header.device.migration_flags);
  d->set_compatibility(header.device.compatibility);
  size_t size = msg.ByteSizeLong();
  if (size > kMaxHeaderPayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("stream header of ", size, " bytes exceeds the limit of ",
                     kMaxHeaderPayload));
  }
  std::string out;
  if (!msg.SerializeToString(&out)) {
    // Only invalid UTF-8 in a string field makes this fail.
    return absl::InvalidArgumentError(
        "stream header does not serialise (invalid UTF-8 in a string?)");
  }
  return out;
}

absl::StatusOr<StreamHeader> DecodeHeaderPayload(
    absl::Span<const uint8_t> payload) {
  if (payload.size() > kMaxHeaderPayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("stream header of ", payload.size(),
                     " bytes exceeds the limit of ", kMaxHeaderPayload));
  }
  v1::StreamHeader msg;
  if (!msg.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::DataLossError("stream header does not parse");
  }
  if (msg.stream_version() != kStreamVersion) {
    return absl::UnimplementedError(absl::StrCat(
        "stream version ", msg.stream_version(),
        " not supported (this reader knows ", kStreamVersion, ")"));
  }
  const v1::StreamDeviceIdentity& d = msg.device();
  constexpr uint32_t kMaxPciId = std::numeric_limits<uint16_t>::max();
  if (d.pci_vendor_id() > kMaxPciId || d.pci_device_id() > kMaxPciId) {
    return absl::InvalidArgumentError(
        absl::StrFormat("stream header: PCI id %x:%x out of range",
                        d.pci_vendor_id(), d.pci_device_id()));
  }
  StreamHeader header;
  header.stream_version = msg.stream_version();
  header.source_host = msg.source_host();
  header.migration_id = msg.migration_id();
  header.stop_copy_bytes = msg.stop_copy_bytes();
  header.device.device_id = d.device_id();
  header.device.pci_vendor_id = static_cast<uint16_t>(d.pci_vendor_id());
  header.device.pci_device_id = static_cast<uint16_t>(d.pci_device_id());
  header.device.driver = d.driver();
  header.device.mdev_type = d.mdev_type();
  header.device.migration_flags = d.migration_flags();
  header.device.compatibility = d.compatibility();
  return header;
}

std::vector<std::string> HeaderIncompatibilities(
    const StreamHeader& header, const DeviceIdentity& target,
    uint64_t target_capacity_bytes) {
  const DeviceIdentity& source = header.device;
  std::vector<std::string> reasons;
  if (source.driver != target.driver) {
    reasons.push_back(absl::StrCat("different driver: stream has ",
                                   Quote(source.driver), ", target has ",
                                   Quote(target.driver)));
  }
  if (source.mdev_type != target.mdev_type) {
    reasons.push_back(absl::StrCat("different mdev type: stream has ",
                                   Quote(source.mdev_type), ", target has ",
                                   Quote(target.mdev_type)));
  }
  if (source.pci_vendor_id != target.pci_vendor_id ||
      source.pci_device_id != target.pci_device_id) {
    reasons.push_back(absl::StrCat("different PCI vendor:device: stream has ",
                                   PciId(source), ", target has ",
                                   PciId(target)));
  }
  uint32_t missing = source.migration_flags & ~target.migration_flags;
  if (missing != 0) {
    reasons.push_back(
        absl::StrCat("target lacks migration features the source had: ",
                     MigrationFeatures(missing).ToString()));
  }
  if (!MigrationFeatures(source.migration_flags).stop_copy()) {
    reasons.push_back("source device lacks stop_copy");
  }
  if (source.compatibility != target.compatibility) {
    reasons.push_back(absl::StrCat("compatibility string mismatch: stream has ",
                                   Quote(source.compatibility), ", target has ",
                                   Quote(target.compatibility)));
  }
  if (header.stop_copy_bytes > target_capacity_bytes) {
    reasons.push_back(absl::StrCat(
        "device state larger than the target's capacity: stop-copy estimate ",
        header.stop_copy_bytes, " bytes, capacity ", target_capacity_bytes,
        " bytes"));
  }
  return reasons;
}

absl::Status CheckHeaderCompatible(const StreamHeader& header,
                                   const DeviceIdentity& target,
                                   uint64_t target_capacity_bytes) {
  std::vector<std::string> reasons =
      HeaderIncompatibilities(header, target, target_capacity_bytes);
  if (reasons.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "stream from ", Quote(header.source_host), " device ",
      Quote(header.device.device_id), " cannot resume into ",
      Quote(target.device_id), ": ", absl::StrJoin(reasons, "; ")));
}

}  // namespace vfiomig::stream
