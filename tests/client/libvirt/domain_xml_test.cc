// The libvirt hook's XML reading and rewriting, on domain XML shaped like
// what libvirt 9 hands a hook (virsh dumpxml --migratable of real guests).
#include "client/libvirt/domain_xml.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vfiomig::libvirt {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Two GPUs (one with decimal/upper-case spellings), an mdev, a USB hostdev,
// an SR-IOV VF as <interface type='hostdev'>, a commented-out hostdev, a
// metadata hostdev in another namespace, a qemu:commandline namespace.
constexpr char kDomain[] =
    R"(<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>gpu-vm-1</name>
  <uuid>6F3A0C5E-1B2D-4E8F-9A7B-0C1D2E3F4A5B</uuid>
  <metadata>
    <app:placement xmlns:app="http://example.org/app/1">
      <app:hostdev mode='subsystem' type='pci'>
        <app:source><app:address domain='0x0000' bus='0x99' slot='0x00' function='0x0'/></app:source>
      </app:hostdev>
    </app:placement>
    <hostdev xmlns="http://example.org/other" mode='subsystem' type='pci'>
      <source><address domain='0x0000' bus='0x98' slot='0x00' function='0x0'/></source>
    </hostdev>
  </metadata>
  <memory unit='KiB'>16777216</memory>
  <vcpu placement='static'>8</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/libvirt/images/gpu-vm-1.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <!-- retired GPU:
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source><address domain='0x0000' bus='0x17' slot='0x00' function='0x0'/></source>
    </hostdev>
    -->
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <driver name='vfio'/>
      <source>
        <address domain='0x0000' bus='0x65' slot='0x00' function='0x0'/>
      </source>
      <alias name='hostdev0'/>
      <address type='pci' domain='0x0000' bus='0x05' slot='0x00' function='0x0'/>
    </hostdev>
    <hostdev mode='subsystem' type='pci' managed='yes'>
      <source>
        <address domain='0' bus='0xB3' slot='31' function='7'/>
      </source>
      <address type='pci' domain='0x0000' bus='0x06' slot='0x00' function='0x0'/>
    </hostdev>
    <hostdev mode='subsystem' type='mdev' managed='no' model='vfio-pci' display='off'>
      <source>
        <address uuid='C2177883-F1BB-47F0-914D-32A22E3A8804'/>
      </source>
      <address type='pci' domain='0x0000' bus='0x07' slot='0x00' function='0x0'/>
    </hostdev>
    <hostdev mode='subsystem' type='usb' managed='yes'>
      <source><vendor id='0x046d'/><product id='0xc52b'/></source>
    </hostdev>
    <hostdev mode='capabilities' type='storage'>
      <source><block>/dev/sdf1</block></source>
    </hostdev>
    <interface type='hostdev' managed='yes'>
      <source><address type='pci' domain='0x0000' bus='0x3b' slot='0x10' function='0x2'/></source>
      <mac address='52:54:00:6d:90:02'/>
    </interface>
  </devices>
  <qemu:commandline>
    <qemu:arg value='-qmp'/>
    <qemu:arg value='unix:/run/vm/gpu-vm-1.qmp,server=on,wait=off'/>
  </qemu:commandline>
</domain>
)";

std::vector<std::string> Ids(const DomainXml& domain) {
  std::vector<std::string> ids;
  for (const Hostdev& h : domain.hostdevs) ids.push_back(h.device_id);
  return ids;
}

TEST(DomainXml, FindsPciAndMdevHostdevsOnly) {
  absl::StatusOr<DomainXml> domain = ParseDomainXml(kDomain);
  ASSERT_TRUE(domain.ok()) << domain.status();
  EXPECT_EQ(domain->name, "gpu-vm-1");
  EXPECT_EQ(domain->uuid, "6f3a0c5e-1b2d-4e8f-9a7b-0c1d2e3f4a5b");
  EXPECT_THAT(Ids(*domain),
              ElementsAre("0000:65:00.0", "0000:b3:1f.7",
                          "c2177883-f1bb-47f0-914d-32a22e3a8804"));
  EXPECT_EQ(domain->hostdevs[0].type, HostdevType::kPci);
  EXPECT_EQ(domain->hostdevs[2].type, HostdevType::kMdev);
  EXPECT_GT(domain->hostdevs[1].line, domain->hostdevs[0].line);
}

TEST(DomainXml, ModeDefaultsToSubsystemLikeLibvirt) {
  absl::StatusOr<DomainXml> domain = ParseDomainXml(
      "<domain><name>d</name><devices><hostdev type='pci'><source>"
      "<address bus='1' slot='2' function='3'/></source></hostdev>"
      "</devices></domain>");
  ASSERT_TRUE(domain.ok()) << domain.status();
  EXPECT_THAT(Ids(*domain), ElementsAre("0000:01:02.3"));
}

TEST(DomainXml, NoHostdevs) {
  absl::StatusOr<DomainXml> domain = ParseDomainXml(
      "<domain type='qemu'><name>plain</name><devices><disk/></devices>"
      "</domain>");
  ASSERT_TRUE(domain.ok()) << domain.status();
  EXPECT_TRUE(domain->hostdevs.empty());
  EXPECT_EQ(domain->uuid, "");
}

TEST(DomainXml, RefusesWhatItCannotRead) {
  struct Case {
    const char* xml;
    const char* message;
  } cases[] = {
      {"", "empty"},
      {"<domain><name>d</name>", "line 1"},
      {"<vm><name>d</name></vm>", "root element is <vm>"},
      {"<domain><devices/></domain>", "no <name>"},
      {"<domain><name>d</name><uuid>xyz</uuid></domain>", "not a UUID"},
      {"<domain><name>d</name><devices><hostdev mode='subsystem' "
       "type='pci'/></devices></domain>",
       "has no <source><address>"},
      {"<domain><name>d</name><devices>\n<hostdev type='pci'><source>"
       "<address bus='0x100' slot='0' function='0'/></source></hostdev>"
       "</devices></domain>",
       "line 2: <hostdev type='pci'> source address bus='0x100' is not a "
       "number from 0 to 0xff"},
      {"<domain><name>d</name><devices><hostdev type='pci'><source>"
       "<address bus='-1' slot='0' function='0'/></source></hostdev>"
       "</devices></domain>",
       "bus='-1'"},
      {"<domain><name>d</name><devices><hostdev type='pci'><source>"
       "<address bus='1' function='0'/></source></hostdev>"
       "</devices></domain>",
       "has no slot"},
      {"<domain><name>d</name><devices><hostdev type='mdev'><source>"
       "<address uuid='1234'/></source></hostdev></devices></domain>",
       "uuid '1234' is not a UUID"},
      {"<!DOCTYPE domain [<!ENTITY a 'x'>]><domain><name>&a;</name>"
       "</domain>",
       "DOCTYPE"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<DomainXml> domain = ParseDomainXml(c.xml);
    ASSERT_FALSE(domain.ok()) << c.xml;
    EXPECT_EQ(domain.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(domain.status().message()), HasSubstr(c.message))
        << c.xml;
  }
}

TEST(DomainXml, RefusesOversizedDocuments) {
  std::string xml = "<domain><name>d</name><!--";
  xml.append(kMaxDomainXmlBytes, 'x');
  xml += "--></domain>";
  EXPECT_FALSE(ParseDomainXml(xml).ok());
}

TEST(RewriteHostdevs, MapsSourceAddressesAndKeepsEverythingElse) {
  absl::StatusOr<std::string> out =
      RewriteHostdevs(kDomain, {{"0000:65:00.0", "0000:17:00.1"},
                                {"c2177883-f1bb-47f0-914d-32a22e3a8804",
                                 "0e5f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"},
                                {"0000:b3:1f.7", "0000:b3:1f.7"}});
  ASSERT_TRUE(out.ok()) << out.status();
  absl::StatusOr<DomainXml> domain = ParseDomainXml(*out);
  ASSERT_TRUE(domain.ok()) << domain.status();
  EXPECT_THAT(Ids(*domain),
              ElementsAre("0000:17:00.1", "0000:b3:1f.7",
                          "0e5f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"));
  // libvirt's spelling, on the source address only.
  EXPECT_THAT(*out, HasSubstr("<address domain=\"0x0000\" bus=\"0x17\" "
                              "slot=\"0x00\" function=\"0x1\"/>"));
  EXPECT_THAT(*out, HasSubstr("<address type=\"pci\" domain=\"0x0000\" "
                              "bus=\"0x05\" slot=\"0x00\" function=\"0x0\"/>"));
  // An unmapped device keeps its spelling (libxml2 writes every
  // attribute in double quotes).
  EXPECT_THAT(*out, HasSubstr("<address domain=\"0\" bus=\"0xB3\" "
                              "slot=\"31\" function=\"7\"/>"));
  // Comments, other namespaces, other devices survive untouched.
  EXPECT_THAT(*out, HasSubstr("<!-- retired GPU:"));
  EXPECT_THAT(*out, HasSubstr("bus=\"0x99\""));
  EXPECT_THAT(*out, HasSubstr("bus=\"0x98\""));
  EXPECT_THAT(*out, HasSubstr("<qemu:arg value=\"-qmp\"/>"));
  EXPECT_THAT(*out, HasSubstr("bus=\"0x3b\" slot=\"0x10\" function=\"0x2\""));
  EXPECT_THAT(*out, HasSubstr("xmlns:qemu=\"http://libvirt.org/schemas/"
                              "domain/qemu/1.0\""));
  // The commented-out hostdev stays a comment, verbatim.
  EXPECT_THAT(*out, HasSubstr("<source><address domain='0x0000' bus='0x17' "
                              "slot='0x00' function='0x0'/></source>"));
  EXPECT_THAT(*out, Not(HasSubstr("bus=\"0x65\"")));
}

TEST(RewriteHostdevs, RefusesATargetOfAnotherKind) {
  absl::StatusOr<std::string> out =
      RewriteHostdevs(kDomain, {{"0000:65:00.0", "gpu7"}});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()),
              HasSubstr("maps to 'gpu7', which is not a PCI address"));
  out = RewriteHostdevs(
      kDomain, {{"c2177883-f1bb-47f0-914d-32a22e3a8804", "0000:17:00.0"}});
  ASSERT_FALSE(out.ok());
  EXPECT_THAT(std::string(out.status().message()),
              HasSubstr("not an mdev UUID"));
}

TEST(DeviceIds, CanonicalSpellings) {
  EXPECT_TRUE(IsPciAddress("0000:65:00.0"));
  EXPECT_TRUE(IsPciAddress("10000:00:1f.7"));
  EXPECT_FALSE(IsPciAddress("0000:65:00.8"));
  EXPECT_FALSE(IsPciAddress("0000:65:20.0"));
  EXPECT_FALSE(IsPciAddress("0000:6A:00.0"));
  EXPECT_FALSE(IsPciAddress("65:00.0"));
  EXPECT_FALSE(IsPciAddress("gpu0"));
  EXPECT_TRUE(IsMdevUuid("c2177883-f1bb-47f0-914d-32a22e3a8804"));
  EXPECT_FALSE(IsMdevUuid("C2177883-F1BB-47F0-914D-32A22E3A8804"));
  EXPECT_FALSE(IsMdevUuid("c2177883f1bb47f0914d32a22e3a8804"));
}

}  // namespace
}  // namespace vfiomig::libvirt
