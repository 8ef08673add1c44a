// VfioBackend over the fake sysfs trees: which devices it manages, the
// --devices filter, host devices with reasons, and how a device that cannot
// be opened is reported (the fake /dev nodes are plain files, so the first
// ioctl on them fails with ENOTTY, which must be named).
#include "plugins/vfio/vfio_backend.h"

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

std::vector<std::string> Ids(DeviceBackend& backend) {
  std::vector<std::string> ids;
  for (const std::shared_ptr<Device>& d : backend.Devices()) {
    ids.push_back(d->info().id);
  }
  return ids;
}

std::map<std::string, HostDevice> HostById(DeviceBackend& backend) {
  std::map<std::string, HostDevice> out;
  for (const HostDevice& d : backend.HostDevices()) out[d.id] = d;
  return out;
}

TEST(VfioBackendTest, ManagesEveryUsableDeviceWithoutAFilter) {
  absl::StatusOr<std::unique_ptr<VfioBackend>> backend =
      VfioBackend::Create(Tree("host"), {});
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_EQ(Ids(**backend).size(), 7u);
  EXPECT_EQ((*backend)->HostDevices().size(), 7u);
}

TEST(VfioBackendTest, FilterSelectsDevicesAndReportsTheOthers) {
  const std::vector<std::string> filter = {
      "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "0000:5e:00.1"};
  absl::StatusOr<std::unique_ptr<VfioBackend>> backend =
      VfioBackend::Create(Tree("host"), filter);
  ASSERT_TRUE(backend.ok()) << backend.status();
  // Discovery order, not filter order.
  EXPECT_THAT(
      Ids(**backend),
      ElementsAre("0000:5e:00.1", "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"));
  std::map<std::string, HostDevice> hosts = HostById(**backend);
  EXPECT_THAT(hosts.at("0000:5e:00.0").reason, HasSubstr("--devices"));
  EXPECT_THAT(hosts.at("0000:00:1f.6").reason, HasSubstr("e1000e"));
  EXPECT_EQ(hosts.at("0000:00:1f.6").pci_vendor_id, 0x8086);
  EXPECT_EQ(hosts.at("0000:00:1f.6").iommu_group, "7");
}

TEST(VfioBackendTest, FilterNamingAnUnusableDeviceSaysWhy) {
  const std::vector<std::string> filter = {"0000:00:1f.6", "0000:99:00.0"};
  absl::StatusOr<std::unique_ptr<VfioBackend>> backend =
      VfioBackend::Create(Tree("host"), filter);
  ASSERT_FALSE(backend.ok());
  EXPECT_TRUE(absl::IsNotFound(backend.status()));
  EXPECT_THAT(backend.status().message(),
              HasSubstr("'0000:00:1f.6' is not usable: bound to e1000e"));
  EXPECT_THAT(backend.status().message(),
              HasSubstr("no device '0000:99:00.0' on this host"));
}

TEST(VfioBackendTest, DeviceThatCannotBeOpenedIsListedNotMigratable) {
  const std::vector<std::string> filter = {"0000:3b:00.1"};
  absl::StatusOr<std::unique_ptr<VfioBackend>> backend =
      VfioBackend::Create(Tree("host"), filter);
  ASSERT_TRUE(backend.ok()) << backend.status();
  ASSERT_EQ((*backend)->Devices().size(), 1u);
  std::shared_ptr<Device> device = (*backend)->Devices()[0];
  const DeviceInfo& info = device->info();
  EXPECT_EQ(info.backend, "vfio");
  EXPECT_EQ(info.driver, "mlx5_vfio_pci");
  EXPECT_EQ(info.pci_vendor_id, 0x15b3);
  EXPECT_EQ(info.iommu_group, "13");
  EXPECT_THAT(info.access, HasSubstr("group "));
  EXPECT_THAT(info.access, HasSubstr("/dev/vfio/13"));
  EXPECT_FALSE(info.migratable);
  // The container is a plain file here: the first ioctl names itself,
  // the path and the errno.
  EXPECT_THAT(info.not_migratable_reason,
              HasSubstr("cannot open the device: VFIO_GET_API_VERSION on "));
  EXPECT_THAT(info.not_migratable_reason, HasSubstr("/dev/vfio/vfio: ENOTTY"));
  // Every device call fails cleanly, naming the device.
  absl::StatusOr<DeviceState> state = device->GetState();
  ASSERT_FALSE(state.ok());
  EXPECT_THAT(state.status().message(), HasSubstr("0000:3b:00.1 is not open"));
  EXPECT_FALSE(device->SetState(DeviceState::STOP).ok());
  EXPECT_FALSE(device->Reset().ok());
  EXPECT_FALSE(device->DuplicateFd().ok());
}

TEST(VfioBackendTest, IommufdPathErrorNamesIommuIoctl) {
  const std::vector<std::string> filter = {"0000:3b:00.0"};
  absl::StatusOr<std::unique_ptr<VfioBackend>> backend =
      VfioBackend::Create(Tree("host"), filter);
  ASSERT_TRUE(backend.ok()) << backend.status();
  const DeviceInfo& info = (*backend)->Devices()[0]->info();
  EXPECT_THAT(info.access, HasSubstr("iommufd "));
  EXPECT_THAT(info.not_migratable_reason, HasSubstr("IOMMU_IOAS_ALLOC on "));
  EXPECT_THAT(info.not_migratable_reason, HasSubstr("/dev/iommu: ENOTTY"));
}

TEST(VfioBackendTest, HostWithoutVfioHasNoDevicesButHostDevices) {
  absl::StatusOr<std::unique_ptr<VfioBackend>> backend =
      VfioBackend::Create(Tree("novfio"), {});
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_THAT((*backend)->Devices(), IsEmpty());
  std::map<std::string, HostDevice> hosts = HostById(**backend);
  ASSERT_EQ(hosts.size(), 3u);
  EXPECT_EQ(hosts.at("0000:00:03.0").driver, "virtio-pci");
  EXPECT_EQ(hosts.at("0000:00:03.0").description, "PCI 1af4:1041 class 020000");
  EXPECT_EQ(hosts.at("0000:00:03.0").reason,
            "bound to virtio-pci, not a VFIO driver");
}

}  // namespace
}  // namespace vfiomig::vfio
