// The parts of a libvirt domain XML document the libvirt hook needs: the
// domain's name and UUID and its VFIO hostdevs, and a rewrite of those
// hostdevs' source addresses for an incoming migration.
//
// Pure functions (document in, values or document out), so that tests and
// the fuzz target drive them without a daemon or a libvirt.
//
// What counts as a hostdev is libvirt's own reading (formatdomain.rst,
// virDomainHostdevDefParseXML): a <hostdev> child of /domain/devices in no
// namespace, mode "subsystem" (libvirt's default when the attribute is
// absent), type "pci" (source <address domain bus slot function>, numbers in
// any base libvirt accepts: "0x65", "101") or "mdev" (source <address
// uuid>). Other hostdevs (usb, scsi, scsi_host, mode='capabilities'),
// elements in other namespaces (metadata), and comments are not hostdevs.
// A pci or mdev hostdev whose source address is missing or malformed is an
// error: the hook cannot say yes or no to a device it cannot name.
//
// Parsing uses libxml2, the parser libvirt itself reads these documents
// with, so both agree on what a document says; the network is never used,
// entities are not expanded, and documents with a DOCTYPE (libvirt never
// writes one) or larger than kMaxDomainXmlBytes are refused.
#ifndef VFIOMIG_CLIENT_LIBVIRT_DOMAIN_XML_H_
#define VFIOMIG_CLIENT_LIBVIRT_DOMAIN_XML_H_

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace vfiomig::libvirt {

// Far above any real domain (a few KiB to a few hundred KiB).
inline constexpr size_t kMaxDomainXmlBytes = size_t{16} << 20;

enum class HostdevType { kPci, kMdev };

struct Hostdev {
  HostdevType type = HostdevType::kPci;
  // The daemon's device id: "0000:65:00.0" (lower-case hex, libvirt's
  // domain:bus:slot.function) or the mdev UUID in lower case.
  std::string device_id;
  // Line of the <hostdev> element, for messages.
  int line = 0;
};

struct DomainXml {
  std::string name;
  // Empty when the document has no <uuid> (libvirt always writes one).
  std::string uuid;
  // Document order.
  std::vector<Hostdev> hostdevs;
};

// InvalidArgument naming the line and the problem for a document that is
// not well-formed XML, whose root is not <domain>, that has no <name>, or
// whose pci/mdev hostdev has no valid source address.
absl::StatusOr<DomainXml> ParseDomainXml(std::string_view xml);

// Rewrites the source address of every pci/mdev hostdev whose device id is
// a key of `device_map` to the value, and returns the whole document
// serialised again (everything else byte-for-byte as libxml2 reads and
// writes it: comments, namespaces and whitespace are kept). A value must be
// a device id of the same kind as its key (PCI address for pci, UUID for
// mdev); InvalidArgument otherwise, or when the document does not parse.
absl::StatusOr<std::string> RewriteHostdevs(
    std::string_view xml, const std::map<std::string, std::string>& device_map);

// "0000:65:00.0" -> OK; the canonical form ParseDomainXml produces.
bool IsPciAddress(std::string_view id);
// 8-4-4-4-12 lower-case hex digits.
bool IsMdevUuid(std::string_view id);

}  // namespace vfiomig::libvirt

#endif  // VFIOMIG_CLIENT_LIBVIRT_DOMAIN_XML_H_
