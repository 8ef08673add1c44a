#include "client/libvirt/domain_xml.h"

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace vfiomig::libvirt {
namespace {

struct DocFree {
  void operator()(xmlDoc* doc) const { xmlFreeDoc(doc); }
};
struct ParserFree {
  void operator()(xmlParserCtxt* ctxt) const { xmlFreeParserCtxt(ctxt); }
};
struct XmlCharFree {
  void operator()(xmlChar* p) const { xmlFree(p); }
};
using Doc = std::unique_ptr<xmlDoc, DocFree>;
using XmlString = std::unique_ptr<xmlChar, XmlCharFree>;

// libxml2 reports some errors (encoding conversion) through its global
// handlers even with XML_PARSE_NOERROR; the hook's stderr must stay one
// line, and the context's last error says the same thing.
void IgnoreGenericError(void*, const char*, ...) {}
void IgnoreStructuredError(void*, xmlErrorPtr) {}

const xmlChar* X(const char* s) { return reinterpret_cast<const xmlChar*>(s); }

std::string ToString(const xmlChar* s) {
  return s == nullptr ? std::string() : reinterpret_cast<const char*>(s);
}

absl::StatusOr<Doc> ParseDocument(std::string_view xml) {
  if (xml.size() > kMaxDomainXmlBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("domain XML is ", xml.size(), " bytes; at most ",
                     kMaxDomainXmlBytes, " are accepted"));
  }
  if (xml.empty()) {
    return absl::InvalidArgumentError("domain XML is empty");
  }
  xmlInitParser();
  xmlSetGenericErrorFunc(nullptr, IgnoreGenericError);
  xmlSetStructuredErrorFunc(nullptr, IgnoreStructuredError);
  std::unique_ptr<xmlParserCtxt, ParserFree> ctxt(xmlNewParserCtxt());
  if (ctxt == nullptr)
    return absl::ResourceExhaustedError("libxml2: no memory");
  // No XML_PARSE_NOENT (entities stay references), no DTD loading, no
  // network; errors are collected, not printed.
  Doc doc(xmlCtxtReadMemory(
      ctxt.get(), xml.data(), static_cast<int>(xml.size()), "domain.xml",
      nullptr, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING));
  if (doc == nullptr || !ctxt->wellFormed) {
    const xmlError* error = xmlCtxtGetLastError(ctxt.get());
    if (error == nullptr || error->message == nullptr) {
      return absl::InvalidArgumentError("domain XML is not well-formed");
    }
    return absl::InvalidArgumentError(
        absl::StrCat("domain XML line ", error->line, ": ",
                     absl::StripTrailingAsciiWhitespace(error->message)));
  }
  if (doc->intSubset != nullptr || doc->extSubset != nullptr) {
    return absl::InvalidArgumentError(
        "domain XML has a DOCTYPE; libvirt never writes one");
  }
  return doc;
}

// libvirt's elements have no namespace; <metadata> children of other
// applications do, and are not libvirt's even when named alike.
bool IsElement(const xmlNode* node, const char* name) {
  return node != nullptr && node->type == XML_ELEMENT_NODE &&
         node->ns == nullptr && xmlStrEqual(node->name, X(name));
}

const xmlNode* FirstChild(const xmlNode* parent, const char* name) {
  for (const xmlNode* c = parent->children; c != nullptr; c = c->next) {
    if (IsElement(c, name)) return c;
  }
  return nullptr;
}

std::optional<std::string> Attribute(const xmlNode* node, const char* name) {
  XmlString value(xmlGetNoNsProp(node, X(name)));
  if (value == nullptr) return std::nullopt;
  return ToString(value.get());
}

std::string Content(const xmlNode* node) {
  XmlString text(xmlNodeGetContent(node));
  return std::string(absl::StripAsciiWhitespace(ToString(text.get())));
}

// An unsigned number as libvirt reads address attributes (strtoul base 0:
// "0x1f" hex, "017" octal, "15" decimal), at most `max`.
std::optional<uint64_t> ParseNumber(const std::string& text, uint64_t max) {
  if (text.empty() ||
      !absl::ascii_isdigit(static_cast<unsigned char>(text[0]))) {
    return std::nullopt;
  }
  errno = 0;
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text.c_str(), &end, 0);
  if (errno != 0 || end != text.c_str() + text.size() || value > max) {
    return std::nullopt;
  }
  return value;
}

struct PciAddress {
  uint64_t domain = 0, bus = 0, slot = 0, function = 0;
};

std::string FormatPci(const PciAddress& a) {
  return absl::StrFormat("%04x:%02x:%02x.%x", a.domain, a.bus, a.slot,
                         a.function);
}

std::optional<PciAddress> ParsePciId(std::string_view id) {
  // DDDD:BB:SS.F, hex; the domain may have more than four digits.
  const size_t colon2 = id.rfind(':');
  if (colon2 == std::string_view::npos || colon2 == 0) return std::nullopt;
  const size_t colon1 = id.rfind(':', colon2 - 1);
  const size_t dot = id.rfind('.');
  if (colon1 == std::string_view::npos || dot == std::string_view::npos ||
      dot < colon2) {
    return std::nullopt;
  }
  auto hex = [](std::string_view part, size_t min_digits, size_t max_digits,
                uint64_t max) -> std::optional<uint64_t> {
    if (part.size() < min_digits || part.size() > max_digits)
      return std::nullopt;
    uint64_t value = 0;
    for (char c : part) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c)) ||
          absl::ascii_isupper(static_cast<unsigned char>(c))) {
        return std::nullopt;
      }
      value =
          value * 16 + static_cast<uint64_t>(
                           absl::ascii_isdigit(static_cast<unsigned char>(c))
                               ? c - '0'
                               : c - 'a' + 10);
    }
    if (value > max) return std::nullopt;
    return value;
  };
  auto domain = hex(id.substr(0, colon1), 4, 8, 0xffffffff);
  auto bus = hex(id.substr(colon1 + 1, colon2 - colon1 - 1), 2, 2, 0xff);
  auto slot = hex(id.substr(colon2 + 1, dot - colon2 - 1), 2, 2, 0x1f);
  auto function = hex(id.substr(dot + 1), 1, 1, 7);
  if (!domain || !bus || !slot || !function) return std::nullopt;
  PciAddress address{*domain, *bus, *slot, *function};
  // One spelling per device: "0000:65:00.0", not "00000:65:00.0".
  if (FormatPci(address) != id) return std::nullopt;
  return address;
}

// Canonical UUID (lower case, dashed) from libvirt's accepted spellings:
// 32 hex digits with dashes anywhere (virUUIDParse).
std::optional<std::string> CanonicalUuid(std::string_view text) {
  std::string digits;
  for (char c : text) {
    if (c == '-') continue;
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) {
      return std::nullopt;
    }
    digits.push_back(absl::ascii_tolower(static_cast<unsigned char>(c)));
  }
  if (digits.size() != 32) return std::nullopt;
  return absl::StrCat(digits.substr(0, 8), "-", digits.substr(8, 4), "-",
                      digits.substr(12, 4), "-", digits.substr(16, 4), "-",
                      digits.substr(20));
}

// A pci/mdev hostdev's <source><address>, or nullptr with `error` set.
struct HostdevNode {
  xmlNode* node = nullptr;
  xmlNode* address = nullptr;
  Hostdev hostdev;
};

std::string Where(const xmlNode* node) {
  return absl::StrCat("domain XML line ", xmlGetLineNo(node), ": ");
}

absl::StatusOr<Hostdev> ReadHostdev(const xmlNode* node, HostdevType type,
                                    const xmlNode** address_out) {
  const char* kind = type == HostdevType::kPci ? "pci" : "mdev";
  const xmlNode* source = FirstChild(node, "source");
  const xmlNode* address =
      source == nullptr ? nullptr : FirstChild(source, "address");
  if (address == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        Where(node), "<hostdev type='", kind, "'> has no <source><address>"));
  }
  *address_out = address;
  Hostdev hostdev;
  hostdev.type = type;
  hostdev.line = static_cast<int>(xmlGetLineNo(node));
  if (type == HostdevType::kMdev) {
    std::optional<std::string> uuid = Attribute(address, "uuid");
    std::optional<std::string> canonical =
        uuid.has_value() ? CanonicalUuid(*uuid) : std::nullopt;
    if (!canonical.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          Where(node), "<hostdev type='mdev'> source address ",
          uuid.has_value() ? absl::StrCat("uuid '", *uuid, "' is not a UUID")
                           : "has no uuid"));
    }
    hostdev.device_id = *canonical;
    return hostdev;
  }
  PciAddress pci;
  struct Field {
    const char* name;
    uint64_t max;
    uint64_t* out;
    bool required;
  };
  const Field fields[] = {{"domain", 0xffffffff, &pci.domain, false},
                          {"bus", 0xff, &pci.bus, true},
                          {"slot", 0x1f, &pci.slot, true},
                          {"function", 7, &pci.function, true}};
  for (const Field& f : fields) {
    std::optional<std::string> text = Attribute(address, f.name);
    if (!text.has_value()) {
      if (!f.required) continue;
      return absl::InvalidArgumentError(absl::StrCat(
          Where(node), "<hostdev type='pci'> source address has no ", f.name));
    }
    std::optional<uint64_t> value = ParseNumber(*text, f.max);
    if (!value.has_value()) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s<hostdev type='pci'> source address %s='%s' is not a number "
          "from 0 to %#x",
          Where(node), f.name, *text, f.max));
    }
    *f.out = *value;
  }
  hostdev.device_id = FormatPci(pci);
  return hostdev;
}

// Calls `fn` for every pci/mdev subsystem hostdev of the document, in
// document order; stops at the first error.
absl::Status ForEachHostdev(
    xmlDoc* doc, DomainXml* info,
    const std::function<absl::Status(xmlNode* address, const Hostdev&)>& fn) {
  const xmlNode* root = xmlDocGetRootElement(doc);
  if (!IsElement(root, "domain")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "domain XML: the root element is <",
        root == nullptr ? "" : ToString(root->name), ">, not <domain>"));
  }
  if (info != nullptr) {
    const xmlNode* name = FirstChild(root, "name");
    info->name = name == nullptr ? "" : Content(name);
    if (info->name.empty()) {
      return absl::InvalidArgumentError("domain XML: the domain has no <name>");
    }
    const xmlNode* uuid = FirstChild(root, "uuid");
    if (uuid != nullptr) {
      std::optional<std::string> canonical = CanonicalUuid(Content(uuid));
      if (!canonical.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            Where(uuid), "<uuid> '", Content(uuid), "' is not a UUID"));
      }
      info->uuid = *canonical;
    }
  }
  for (xmlNode* devices = root->children; devices != nullptr;
       devices = devices->next) {
    if (!IsElement(devices, "devices")) continue;
    for (xmlNode* node = devices->children; node != nullptr;
         node = node->next) {
      if (!IsElement(node, "hostdev")) continue;
      if (Attribute(node, "mode").value_or("subsystem") != "subsystem") {
        continue;
      }
      const std::optional<std::string> type = Attribute(node, "type");
      HostdevType kind;
      if (type == "pci") {
        kind = HostdevType::kPci;
      } else if (type == "mdev") {
        kind = HostdevType::kMdev;
      } else {
        continue;  // usb, scsi, scsi_host: not VFIO devices
      }
      const xmlNode* address = nullptr;
      absl::StatusOr<Hostdev> hostdev = ReadHostdev(node, kind, &address);
      if (!hostdev.ok()) return hostdev.status();
      if (info != nullptr) info->hostdevs.push_back(*hostdev);
      if (absl::Status s = fn(const_cast<xmlNode*>(address), *hostdev);
          !s.ok()) {
        return s;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool IsPciAddress(std::string_view id) { return ParsePciId(id).has_value(); }

bool IsMdevUuid(std::string_view id) {
  std::optional<std::string> canonical = CanonicalUuid(id);
  return canonical.has_value() && *canonical == id;
}

absl::StatusOr<DomainXml> ParseDomainXml(std::string_view xml) {
  absl::StatusOr<Doc> doc = ParseDocument(xml);
  if (!doc.ok()) return doc.status();
  DomainXml info;
  absl::Status status =
      ForEachHostdev(doc->get(), &info,
                     [](xmlNode*, const Hostdev&) { return absl::OkStatus(); });
  if (!status.ok()) return status;
  return info;
}

absl::StatusOr<std::string> RewriteHostdevs(
    std::string_view xml,
    const std::map<std::string, std::string>& device_map) {
  absl::StatusOr<Doc> doc = ParseDocument(xml);
  if (!doc.ok()) return doc.status();
  absl::Status status = ForEachHostdev(
      doc->get(), nullptr,
      [&](xmlNode* address, const Hostdev& hostdev) -> absl::Status {
        auto it = device_map.find(hostdev.device_id);
        if (it == device_map.end() || it->second == hostdev.device_id) {
          return absl::OkStatus();
        }
        const std::string& target = it->second;
        if (hostdev.type == HostdevType::kMdev) {
          if (!IsMdevUuid(target)) {
            return absl::InvalidArgumentError(
                absl::StrCat("mdev ", hostdev.device_id, " maps to '", target,
                             "', which is not an mdev UUID"));
          }
          xmlSetProp(address, X("uuid"), X(target.c_str()));
          return absl::OkStatus();
        }
        std::optional<PciAddress> pci = ParsePciId(target);
        if (!pci.has_value()) {
          return absl::InvalidArgumentError(
              absl::StrCat("PCI device ", hostdev.device_id, " maps to '",
                           target, "', which is not a PCI address"));
        }
        // libvirt's own spelling of a PCI address.
        const std::string values[] = {absl::StrFormat("0x%04x", pci->domain),
                                      absl::StrFormat("0x%02x", pci->bus),
                                      absl::StrFormat("0x%02x", pci->slot),
                                      absl::StrFormat("0x%x", pci->function)};
        const char* names[] = {"domain", "bus", "slot", "function"};
        for (int i = 0; i < 4; ++i) {
          xmlSetProp(address, X(names[i]), X(values[i].c_str()));
        }
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  xmlChar* buffer = nullptr;
  int size = 0;
  xmlDocDumpMemory(doc->get(), &buffer, &size);
  XmlString owned(buffer);
  if (buffer == nullptr || size < 0) {
    return absl::ResourceExhaustedError("libxml2 could not serialise the XML");
  }
  return std::string(reinterpret_cast<const char*>(buffer),
                     static_cast<size_t>(size));
}

}  // namespace vfiomig::libvirt
