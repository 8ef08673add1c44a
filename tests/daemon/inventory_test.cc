#include "daemon/inventory.h"

#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vfiomig {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Whatever the backend interface calls its data session type.
using SetStateResult =
    std::invoke_result_t<decltype(&Device::SetState), Device&, DeviceState>;

// A device whose answers the test chooses; it never changes state.
class FakeDevice final : public Device {
 public:
  FakeDevice(std::string id, uint32_t flags,
             absl::StatusOr<DeviceState> state = DeviceState::RUNNING)
      : state_(std::move(state)) {
    info_.id = std::move(id);
    info_.backend = "fake";
    info_.driver = "fake";
    info_.features = MigrationFeatures(flags);
  }

  const DeviceInfo& info() const override { return info_; }
  absl::StatusOr<DeviceState> GetState() override { return state_; }
  SetStateResult SetState(DeviceState) override {
    return absl::UnimplementedError("fake");
  }
  absl::StatusOr<uint64_t> StopCopySize() override { return 1234; }
  absl::Status Reset() override { return absl::UnimplementedError("fake"); }

  DeviceInfo info_;

 private:
  absl::StatusOr<DeviceState> state_;
};

class FakeBackend final : public DeviceBackend {
 public:
  explicit FakeBackend(std::vector<std::shared_ptr<Device>> devices)
      : devices_(std::move(devices)) {}
  std::string_view name() const override { return "fake"; }
  std::vector<std::shared_ptr<Device>> Devices() override { return devices_; }

 private:
  std::vector<std::shared_ptr<Device>> devices_;
};

constexpr uint32_t kP2p = VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P;

std::unique_ptr<DeviceBackend> ThreeDevices() {
  return std::make_unique<FakeBackend>(std::vector<std::shared_ptr<Device>>{
      std::make_shared<FakeDevice>("a", kP2p),
      std::make_shared<FakeDevice>("b", kP2p),
      std::make_shared<FakeDevice>("c", VFIO_MIGRATION_STOP_COPY)});
}

std::vector<std::string> Ids(const Inventory& inventory) {
  std::vector<std::string> ids;
  for (const auto& device : inventory.devices())
    ids.push_back(device->info().id);
  return ids;
}

TEST(Inventory, KeepsBackendOrderAndFindsById) {
  absl::StatusOr<std::unique_ptr<Inventory>> inventory =
      Inventory::Create(ThreeDevices(), {});
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  EXPECT_EQ((*inventory)->backend_name(), "fake");
  EXPECT_THAT(Ids(**inventory), ElementsAre("a", "b", "c"));
  absl::StatusOr<std::shared_ptr<Device>> b = (*inventory)->Find("b");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)->info().id, "b");
  absl::Status missing = (*inventory)->Find("zz").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("'zz'"));
}

TEST(Inventory, FilterNarrowsTheSetEvenIfTheBackendIgnoresIt) {
  const std::vector<std::string> filter = {"c", "a"};
  absl::StatusOr<std::unique_ptr<Inventory>> inventory =
      Inventory::Create(ThreeDevices(), filter);
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  EXPECT_THAT(Ids(**inventory), ElementsAre("a", "c"));
  EXPECT_FALSE((*inventory)->Find("b").ok());
}

TEST(Inventory, FilterNamingUnknownDevicesFailsNamingThem) {
  const std::vector<std::string> filter = {"a", "x", "y"};
  absl::Status status = Inventory::Create(ThreeDevices(), filter).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("'x', 'y'"));
}

TEST(Inventory, RefusesDuplicateAndEmptyIds) {
  auto duplicate =
      std::make_unique<FakeBackend>(std::vector<std::shared_ptr<Device>>{
          std::make_shared<FakeDevice>("a", kP2p),
          std::make_shared<FakeDevice>("a", kP2p)});
  EXPECT_THAT(Inventory::Create(std::move(duplicate), {}).status().message(),
              HasSubstr("two devices with id 'a'"));
  auto empty =
      std::make_unique<FakeBackend>(std::vector<std::shared_ptr<Device>>{
          std::make_shared<FakeDevice>("", kP2p)});
  EXPECT_FALSE(Inventory::Create(std::move(empty), {}).ok());
  EXPECT_FALSE(Inventory::Create(nullptr, {}).ok());
}

TEST(Inventory, FindAllNamesEveryUnknownId) {
  absl::StatusOr<std::unique_ptr<Inventory>> inventory =
      Inventory::Create(ThreeDevices(), {});
  ASSERT_TRUE(inventory.ok());
  const std::vector<std::string> ids = {"q", "a", "r"};
  absl::Status status = (*inventory)->FindAll(ids).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("'q', 'r'"));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("'a'")));
}

TEST(Inventory, PlanDevicesFollowRequestOrderAndLiveState) {
  absl::StatusOr<std::unique_ptr<Inventory>> inventory =
      Inventory::Create(ThreeDevices(), {});
  ASSERT_TRUE(inventory.ok());
  const std::vector<std::string> ids = {"c", "a"};
  absl::StatusOr<std::vector<PlanDevice>> devices =
      (*inventory)->PlanDevices(ids);
  ASSERT_TRUE(devices.ok()) << devices.status();
  ASSERT_EQ(devices->size(), 2u);
  EXPECT_EQ((*devices)[0].id, "c");
  EXPECT_FALSE((*devices)[0].features.p2p());
  EXPECT_EQ((*devices)[1].id, "a");
  EXPECT_TRUE((*devices)[1].features.p2p());
  EXPECT_EQ((*devices)[1].state, DeviceState::RUNNING);
  EXPECT_TRUE((*devices)[1].migratable);
}

TEST(Inventory, UnreadableStateBecomesANotMigratableDevice) {
  FakeDevice device("broken", kP2p, absl::InternalError("GET failed: EIO"));
  const DeviceSnapshot snapshot = Inventory::Snapshot(device, {});
  EXPECT_FALSE(snapshot.migratable());
  EXPECT_THAT(snapshot.not_migratable_reason(), HasSubstr("GET failed: EIO"));
  const PlanDevice plan_device = Inventory::ToPlanDevice(snapshot);
  EXPECT_FALSE(plan_device.migratable);
  EXPECT_EQ(plan_device.state, DeviceState::ERROR);
  EXPECT_THAT(plan_device.not_migratable_reason, HasSubstr("EIO"));
}

TEST(Inventory, BackendReasonWinsOverState) {
  FakeDevice device("old", kP2p);
  device.info_.migratable = false;
  device.info_.not_migratable_reason = "driver has no migration support";
  const DeviceSnapshot snapshot = Inventory::Snapshot(device, {});
  EXPECT_FALSE(snapshot.migratable());
  EXPECT_EQ(snapshot.not_migratable_reason(),
            "driver has no migration support");
}

TEST(Inventory, SnapshotExtrasFollowOptions) {
  FakeDevice device("a", kP2p);
  DeviceSnapshot full = Inventory::Snapshot(device, {.digest = true});
  EXPECT_EQ(full.stop_copy_bytes, 1234u);
  // The default ContentDigest is Unimplemented: no digest, no error.
  EXPECT_FALSE(full.digest.has_value());
  DeviceSnapshot lean = Inventory::Snapshot(device, {.stop_copy_size = false});
  EXPECT_FALSE(lean.stop_copy_bytes.has_value());
}

}  // namespace
}  // namespace vfiomig
