#include "plugins/vfio/sysfs_discovery.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace vfiomig::vfio {
namespace {

namespace fs = std::filesystem;

// Drivers the kernel lets share a viable group with VFIO devices
// (vfio_dev_driver_allowed() in drivers/vfio/group.c).
bool DriverAllowedBesideVfio(const std::string& driver) {
  return driver == "pci-stub" || driver == "pcieport";
}

bool NameSaysVfio(const std::string& driver) {
  return absl::StrContains(driver, "vfio");
}

bool Exists(const fs::path& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

// Basename of a symlink's target ("vfio-pci" for driver -> .../vfio-pci);
// empty when the link does not exist.
std::string LinkName(const fs::path& link) {
  std::error_code ec;
  fs::path target = fs::read_symlink(link, ec);
  if (ec) return "";
  return target.filename().string();
}

std::optional<std::string> ReadAttribute(const fs::path& file) {
  std::ifstream in(file);
  if (!in) return std::nullopt;
  std::string line;
  std::getline(in, line);
  return std::string(absl::StripAsciiWhitespace(line));
}

// "0x8086" -> 0x8086; 0 when missing or malformed.
uint32_t ReadHex(const fs::path& file) {
  std::optional<std::string> text = ReadAttribute(file);
  if (!text.has_value() || text->empty()) return 0;
  char* end = nullptr;
  const unsigned long value = std::strtoul(text->c_str(), &end, 16);
  return end != nullptr && *end == '\0' ? static_cast<uint32_t>(value) : 0;
}

std::vector<std::string> SortedEntries(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// First vfio-dev/vfioN entry of a device directory.
std::string VfioDevName(const fs::path& device_dir) {
  for (const std::string& name : SortedEntries(device_dir / "vfio-dev")) {
    if (absl::StartsWith(name, "vfio")) return name;
  }
  return "";
}

// What every device of a kind shares: group, nodes, access path.
void FillGroupAndAccess(const HostRoots& roots, const fs::path& device_dir,
                        DiscoveredDevice& d) {
  d.iommu_group = LinkName(device_dir / "iommu_group");
  if (!d.iommu_group.empty()) {
    d.group_devices = SortedEntries(roots.sys / "kernel" / "iommu_groups" /
                                    d.iommu_group / "devices");
    if (std::find(d.group_devices.begin(), d.group_devices.end(), d.id) ==
        d.group_devices.end()) {
      d.group_devices.push_back(d.id);
      std::sort(d.group_devices.begin(), d.group_devices.end());
    }
    const fs::path group_node = roots.dev / "vfio" / d.iommu_group;
    if (Exists(group_node)) d.group_path = group_node.string();
  }
  if (const std::string cdev = VfioDevName(device_dir); !cdev.empty()) {
    const fs::path node = roots.dev / "vfio" / "devices" / cdev;
    if (Exists(node)) d.cdev_path = node.string();
  }
  const fs::path iommu = roots.dev / "iommu";
  const fs::path container = roots.dev / "vfio" / "vfio";
  if (!d.cdev_path.empty() && Exists(iommu)) {
    d.access = AccessPath::kIommufdCdev;
    d.iommufd_path = iommu.string();
  } else if (!d.group_path.empty() && Exists(container)) {
    d.access = AccessPath::kLegacyGroup;
    d.container_path = container.string();
  }
}

DiscoveredDevice ReadPci(const HostRoots& roots, const std::string& address) {
  const fs::path dir = roots.sys / "bus" / "pci" / "devices" / address;
  DiscoveredDevice d;
  d.id = address;
  d.kind = DeviceKind::kPci;
  d.driver = LinkName(dir / "driver");
  d.vendor_id = static_cast<uint16_t>(ReadHex(dir / "vendor"));
  d.device_id = static_cast<uint16_t>(ReadHex(dir / "device"));
  d.class_code = ReadHex(dir / "class");
  FillGroupAndAccess(roots, dir, d);
  d.vfio_driver = !d.driver.empty() &&
                  (!VfioDevName(dir).empty() || NameSaysVfio(d.driver) ||
                   (!d.group_path.empty() && d.group_devices.size() == 1));
  return d;
}

DiscoveredDevice ReadMdev(const HostRoots& roots, const std::string& uuid) {
  const fs::path dir = roots.sys / "bus" / "mdev" / "devices" / uuid;
  DiscoveredDevice d;
  d.id = uuid;
  d.kind = DeviceKind::kMdev;
  d.driver = LinkName(dir / "driver");
  d.mdev_type = LinkName(dir / "mdev_type");
  d.mdev_type_name = ReadAttribute(dir / "mdev_type" / "name").value_or("");
  std::error_code ec;
  const fs::path real = fs::canonical(dir, ec);
  if (!ec) d.mdev_parent = real.parent_path().filename().string();
  FillGroupAndAccess(roots, dir, d);
  // Every mdev driver registers a VFIO device.
  d.vfio_driver = !d.driver.empty();
  return d;
}

// Why a VFIO device cannot be used; empty when it can. `drivers` maps every
// discovered device id to its driver, for the group viability rule.
std::string UsableReason(const DiscoveredDevice& d,
                         const std::map<std::string, std::string>& drivers,
                         const std::map<std::string, bool>& vfio) {
  if (d.iommu_group.empty()) {
    return "no IOMMU group (is the IOMMU enabled? intel_iommu=on / "
           "amd_iommu=on)";
  }
  std::vector<std::string> blockers;
  for (const std::string& other : d.group_devices) {
    if (other == d.id) continue;
    auto driver = drivers.find(other);
    if (driver == drivers.end() || driver->second.empty()) continue;
    if (vfio.at(other) || DriverAllowedBesideVfio(driver->second)) continue;
    blockers.push_back(absl::StrCat(other, " (", driver->second, ")"));
  }
  if (!blockers.empty()) {
    return absl::StrCat("IOMMU group ", d.iommu_group,
                        " is not viable: it also holds ",
                        absl::StrJoin(blockers, ", "),
                        ", bound to a driver that is not VFIO; bind every "
                        "device of the group to vfio-pci or unbind it");
  }
  if (d.access == AccessPath::kNone) {
    if (!d.cdev_path.empty()) {
      return absl::StrCat("has ", d.cdev_path, " but no iommufd (/dev/iommu) ",
                          "and no VFIO group node");
    }
    if (!d.group_path.empty()) {
      return absl::StrCat("has ", d.group_path,
                          " but no VFIO container /dev/vfio/vfio");
    }
    return absl::StrCat(
        "no VFIO device node: neither a cdev under "
        "/dev/vfio/devices nor /dev/vfio/",
        d.iommu_group);
  }
  return "";
}

std::string NotVfioReason(const DiscoveredDevice& d) {
  if (d.driver.empty()) {
    return d.kind == DeviceKind::kPci
               ? "no driver bound (bind it to vfio-pci or its VFIO variant "
                 "driver to use it)"
               : "mdev without a driver";
  }
  return absl::StrCat("bound to ", d.driver, ", not a VFIO driver");
}

}  // namespace

const char* AccessPathName(AccessPath access) {
  switch (access) {
    case AccessPath::kIommufdCdev:
      return "iommufd";
    case AccessPath::kLegacyGroup:
      return "group";
    case AccessPath::kNone:
      break;
  }
  return "none";
}

std::string DiscoveredDevice::Description() const {
  if (kind == DeviceKind::kMdev) {
    std::string text = absl::StrCat(
        "mdev ", mdev_type.empty() ? "of unknown type" : mdev_type);
    if (!mdev_parent.empty()) absl::StrAppend(&text, " on ", mdev_parent);
    return text;
  }
  std::string text = absl::StrFormat("PCI %04x:%04x", vendor_id, device_id);
  if (class_code != 0) absl::StrAppendFormat(&text, " class %06x", class_code);
  return text;
}

absl::StatusOr<Discovery> Discover(const HostRoots& roots) {
  std::error_code ec;
  if (!fs::is_directory(roots.sys, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot read sysfs at ", roots.sys.string(),
                     ec ? ": " + ec.message() : ": not a directory"));
  }
  std::vector<DiscoveredDevice> all;
  for (const std::string& address :
       SortedEntries(roots.sys / "bus" / "pci" / "devices")) {
    all.push_back(ReadPci(roots, address));
  }
  for (const std::string& uuid :
       SortedEntries(roots.sys / "bus" / "mdev" / "devices")) {
    all.push_back(ReadMdev(roots, uuid));
  }
  std::map<std::string, std::string> drivers;
  std::map<std::string, bool> vfio;
  for (const DiscoveredDevice& d : all) {
    drivers[d.id] = d.driver;
    vfio[d.id] = d.vfio_driver;
  }
  Discovery result;
  for (DiscoveredDevice& d : all) {
    d.unusable_reason =
        d.vfio_driver ? UsableReason(d, drivers, vfio) : NotVfioReason(d);
    (d.usable() ? result.usable : result.unusable).push_back(std::move(d));
  }
  return result;
}

}  // namespace vfiomig::vfio
