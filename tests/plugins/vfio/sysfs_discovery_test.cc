// Discovery over the fake sysfs trees in sysfs/ (see make_sysfs_trees.py
// for what each device stands for).
#include "plugins/vfio/sysfs_discovery.h"

#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vfiomig::vfio {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

HostRoots Tree(const std::string& name) {
  const std::string root = std::string(VFIOMIG_TEST_SYSFS_DIR) + "/" + name;
  return HostRoots{.sys = root + "/sys", .dev = root + "/dev"};
}

std::map<std::string, DiscoveredDevice> ById(
    const std::vector<DiscoveredDevice>& devices) {
  std::map<std::string, DiscoveredDevice> out;
  for (const DiscoveredDevice& d : devices) out[d.id] = d;
  return out;
}

std::vector<std::string> Ids(const std::vector<DiscoveredDevice>& devices) {
  std::vector<std::string> ids;
  for (const DiscoveredDevice& d : devices) ids.push_back(d.id);
  return ids;
}

class HostTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<Discovery> found = Discover(Tree("host"));
    ASSERT_TRUE(found.ok()) << found.status();
    discovery_ = *found;
    usable_ = ById(discovery_.usable);
    unusable_ = ById(discovery_.unusable);
  }

  Discovery discovery_;
  std::map<std::string, DiscoveredDevice> usable_;
  std::map<std::string, DiscoveredDevice> unusable_;
};

TEST_F(HostTreeTest, FindsUsableDevicesPciFirstInAddressOrderThenMdevs) {
  EXPECT_THAT(Ids(discovery_.usable),
              ElementsAre("0000:3b:00.0", "0000:3b:00.1", "0000:3c:00.0",
                          "0000:5e:00.0", "0000:5e:00.1",
                          "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001",
                          "83b8f4f2-509f-382f-3c1e-e6bfe0fa1002"));
}

TEST_F(HostTreeTest, VfioPciWithCdevUsesIommufd) {
  const DiscoveredDevice& d = usable_.at("0000:3b:00.0");
  EXPECT_EQ(d.kind, DeviceKind::kPci);
  EXPECT_EQ(d.driver, "vfio-pci");
  EXPECT_EQ(d.vendor_id, 0x10de);
  EXPECT_EQ(d.device_id, 0x2330);
  EXPECT_EQ(d.class_code, 0x030200u);
  EXPECT_EQ(d.iommu_group, "12");
  EXPECT_THAT(d.group_devices, ElementsAre("0000:3b:00.0"));
  EXPECT_EQ(d.access, AccessPath::kIommufdCdev);
  EXPECT_THAT(d.cdev_path, HasSubstr("/dev/vfio/devices/vfio0"));
  EXPECT_THAT(d.iommufd_path, HasSubstr("/dev/iommu"));
  // The group node exists too; the cdev wins.
  EXPECT_THAT(d.group_path, HasSubstr("/dev/vfio/12"));
  EXPECT_EQ(d.Description(), "PCI 10de:2330 class 030200");
}

TEST_F(HostTreeTest, VariantDriverWithoutCdevUsesLegacyGroup) {
  const DiscoveredDevice& d = usable_.at("0000:3b:00.1");
  EXPECT_EQ(d.driver, "mlx5_vfio_pci");
  EXPECT_TRUE(d.vfio_driver);
  EXPECT_EQ(d.access, AccessPath::kLegacyGroup);
  EXPECT_THAT(d.group_path, HasSubstr("/dev/vfio/13"));
  EXPECT_THAT(d.container_path, HasSubstr("/dev/vfio/vfio"));
  EXPECT_THAT(d.cdev_path, IsEmpty());
}

TEST_F(HostTreeTest, UnknownVariantAloneInAGroupWithANodeIsVfio) {
  const DiscoveredDevice& d = usable_.at("0000:3c:00.0");
  EXPECT_EQ(d.driver, "acme_migr");
  EXPECT_TRUE(d.vfio_driver);
  EXPECT_EQ(d.access, AccessPath::kLegacyGroup);
}

TEST_F(HostTreeTest, MultiDeviceGroupIsViableWithABridgeOnPcieport) {
  for (const char* id : {"0000:5e:00.0", "0000:5e:00.1"}) {
    const DiscoveredDevice& d = usable_.at(id);
    EXPECT_EQ(d.iommu_group, "20");
    EXPECT_THAT(d.group_devices,
                ElementsAre("0000:5d:00.0", "0000:5e:00.0", "0000:5e:00.1"));
    EXPECT_EQ(d.access, AccessPath::kLegacyGroup);
  }
  // The bridge itself is a host device.
  EXPECT_THAT(unusable_.at("0000:5d:00.0").unusable_reason,
              HasSubstr("bound to pcieport, not a VFIO driver"));
}

TEST_F(HostTreeTest, GroupSharedWithAHostDriverIsNotViable) {
  const DiscoveredDevice& d = unusable_.at("0000:af:00.0");
  EXPECT_TRUE(d.vfio_driver);
  EXPECT_THAT(d.unusable_reason,
              HasSubstr("IOMMU group 21 is not viable: it also holds "
                        "0000:af:00.1 (igb)"));
  // The sibling is reported as a host device; its group node is there
  // (because of af:00.0) but igb is not a VFIO driver.
  EXPECT_FALSE(unusable_.at("0000:af:00.1").vfio_driver);
  EXPECT_THAT(unusable_.at("0000:af:00.1").unusable_reason,
              HasSubstr("bound to igb"));
}

TEST_F(HostTreeTest, VfioPciWithoutIommuGroupSaysSo) {
  EXPECT_THAT(unusable_.at("0000:d8:00.0").unusable_reason,
              HasSubstr("no IOMMU group"));
}

TEST_F(HostTreeTest, HostDriverAndUnboundDevicesHaveReasons) {
  EXPECT_EQ(unusable_.at("0000:00:1f.6").unusable_reason,
            "bound to e1000e, not a VFIO driver");
  EXPECT_THAT(unusable_.at("0000:00:14.0").unusable_reason,
              HasSubstr("no driver bound"));
}

TEST_F(HostTreeTest, MdevsCarryTypeParentAndGroup) {
  const DiscoveredDevice& d =
      usable_.at("83b8f4f2-509f-382f-3c1e-e6bfe0fa1001");
  EXPECT_EQ(d.kind, DeviceKind::kMdev);
  EXPECT_EQ(d.driver, "mtty");
  EXPECT_EQ(d.mdev_type, "mtty-2");
  EXPECT_EQ(d.mdev_type_name, "Dual port mtty");
  EXPECT_EQ(d.mdev_parent, "mtty");
  EXPECT_EQ(d.iommu_group, "30");
  EXPECT_EQ(d.access, AccessPath::kLegacyGroup);
  EXPECT_EQ(d.vendor_id, 0);
  EXPECT_EQ(d.Description(), "mdev mtty-2 on mtty");
  EXPECT_EQ(usable_.at("83b8f4f2-509f-382f-3c1e-e6bfe0fa1002").mdev_type,
            "mtty-1");
}

TEST_F(HostTreeTest, MdevWithoutDeviceNodeIsUnusable) {
  const DiscoveredDevice& d =
      unusable_.at("83b8f4f2-509f-382f-3c1e-e6bfe0fa1003");
  EXPECT_TRUE(d.vfio_driver);
  EXPECT_THAT(d.unusable_reason, HasSubstr("no VFIO device node"));
  EXPECT_THAT(d.unusable_reason, HasSubstr("/dev/vfio/32"));
}

TEST(DiscoveryTest, HostWithoutVfioListsEveryDeviceWithAReason) {
  absl::StatusOr<Discovery> found = Discover(Tree("novfio"));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_THAT(found->usable, IsEmpty());
  std::map<std::string, DiscoveredDevice> unusable = ById(found->unusable);
  ASSERT_EQ(unusable.size(), 3u);
  EXPECT_THAT(unusable.at("0000:00:00.0").unusable_reason,
              HasSubstr("no driver bound"));
  EXPECT_EQ(unusable.at("0000:00:01.0").unusable_reason,
            "bound to virtio-pci, not a VFIO driver");
}

TEST(DiscoveryTest, MissingSysfsIsAnErrorNamingIt) {
  absl::StatusOr<Discovery> found =
      Discover(HostRoots{.sys = "/nonexistent/sys", .dev = "/nonexistent"});
  ASSERT_FALSE(found.ok());
  EXPECT_THAT(found.status().message(), HasSubstr("/nonexistent/sys"));
}

TEST(DiscoveryTest, ThisMachinesSysfsIsReadable) {
  // Whatever the host has, discovery must not fail on a real sysfs, and
  // every device it reports unusable must come with a reason.
  absl::StatusOr<Discovery> found = Discover(HostRoots{});
  ASSERT_TRUE(found.ok()) << found.status();
  for (const DiscoveredDevice& d : found->unusable) {
    EXPECT_FALSE(d.unusable_reason.empty()) << d.id;
  }
}

TEST(AccessPathTest, Names) {
  EXPECT_STREQ(AccessPathName(AccessPath::kIommufdCdev), "iommufd");
  EXPECT_STREQ(AccessPathName(AccessPath::kLegacyGroup), "group");
  EXPECT_STREQ(AccessPathName(AccessPath::kNone), "none");
}

}  // namespace
}  // namespace vfiomig::vfio
