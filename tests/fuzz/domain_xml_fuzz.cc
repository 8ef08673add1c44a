// libFuzzer target: arbitrary bytes as a libvirt domain XML document into
// the hook's parser and rewriter (client/libvirt/domain_xml.h).
//
// Besides crashes and sanitizer reports, it traps when an invariant breaks:
//   - every hostdev ParseDomainXml returns has a canonical id
//     (IsPciAddress or IsMdevUuid, matching its type);
//   - RewriteHostdevs of a parsed document with an identity map succeeds,
//     and its output parses to the same name, UUID and hostdevs;
//   - mapping every hostdev to a fixed id of its kind yields a document
//     whose hostdevs are all that id.
//
// Built and run like the other targets of this folder (README.md).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "client/libvirt/domain_xml.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vfiomig::libvirt;
  const std::string_view xml(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<DomainXml> domain = ParseDomainXml(xml);
  if (!domain.ok()) return 0;
  std::map<std::string, std::string> identity;
  std::map<std::string, std::string> fixed;
  for (const Hostdev& h : domain->hostdevs) {
    Check(h.type == HostdevType::kPci ? IsPciAddress(h.device_id)
                                      : IsMdevUuid(h.device_id));
    identity[h.device_id] = h.device_id;
    fixed[h.device_id] = h.type == HostdevType::kPci
                             ? "0000:01:02.3"
                             : "00000000-0000-0000-0000-000000000001";
  }
  absl::StatusOr<std::string> same = RewriteHostdevs(xml, identity);
  Check(same.ok());
  absl::StatusOr<DomainXml> again = ParseDomainXml(*same);
  Check(again.ok() && again->name == domain->name &&
        again->uuid == domain->uuid &&
        again->hostdevs.size() == domain->hostdevs.size());
  for (size_t i = 0; i < domain->hostdevs.size(); ++i) {
    Check(again->hostdevs[i].device_id == domain->hostdevs[i].device_id);
  }
  absl::StatusOr<std::string> mapped = RewriteHostdevs(xml, fixed);
  Check(mapped.ok());
  absl::StatusOr<DomainXml> moved = ParseDomainXml(*mapped);
  Check(moved.ok() && moved->hostdevs.size() == domain->hostdevs.size());
  for (const Hostdev& h : moved->hostdevs) {
    Check(h.device_id == (h.type == HostdevType::kPci
                              ? "0000:01:02.3"
                              : "00000000-0000-0000-0000-000000000001"));
  }
  return 0;
}
