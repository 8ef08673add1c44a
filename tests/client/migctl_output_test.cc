// vfio-migctl's rendering and validation, checked without a daemon: the
// JSON shapes scripts depend on, the state-name mapping across the wire's
// shifted ERROR value, and the table layout.
#include <sstream>
#include <string>
#include <vector>

#include "client/devices_command.h"
#include "client/output.h"
#include "client/plan_command.h"
#include "client/rpc.h"
#include "daemon/core/fsm.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vfiomig::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(TableTest, AlignsColumnsWithoutTrailingBlanks) {
  Table table({"ID", "STATE"});
  table.AddRow({"gpu0", "RUNNING"});
  table.AddRow({"a-much-longer-id", "STOP"});
  table.AddRow({"short"});  // padded with an empty cell
  std::ostringstream out;
  table.Render(out);
  EXPECT_EQ(out.str(),
            "ID                STATE\n"
            "gpu0              RUNNING\n"
            "a-much-longer-id  STOP\n"
            "short\n");
}

TEST(HumanBytesTest, UsesBinaryUnits) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1024), "1.0 KiB");
  EXPECT_EQ(HumanBytes(1536), "1.5 KiB");
  EXPECT_EQ(HumanBytes(uint64_t{1} << 20), "1.0 MiB");
  EXPECT_EQ(HumanBytes(uint64_t{4} << 30), "4.0 GiB");
  EXPECT_EQ(HumanBytes(~uint64_t{0}), "16.0 EiB");
}

TEST(StateNameTest, MapsWireValuesToKernelNames) {
  // 1..7 are the kernel's own values.
  for (int value = 1; value <= 7; ++value) {
    EXPECT_EQ(StateName(static_cast<v1::DeviceState>(value)),
              DeviceStateName(static_cast<DeviceState>(value)))
        << value;
  }
  // The kernel's ERROR (0) travels as 8.
  EXPECT_EQ(StateName(v1::DEVICE_STATE_ERROR), "ERROR");
  EXPECT_EQ(StateName(v1::DEVICE_STATE_UNSPECIFIED), "UNSPECIFIED");
  EXPECT_EQ(StateName(static_cast<v1::DeviceState>(42)), "UNKNOWN(42)");
}

TEST(DeviceStateLabelTest, PrefersTheEnumAndFallsBackToTheName) {
  v1::Device device;
  device.set_state(v1::DEVICE_STATE_RUNNING_P2P);
  device.set_state_name("something else");
  EXPECT_EQ(DeviceStateLabel(device), "RUNNING_P2P");
  device.clear_state();
  EXPECT_EQ(DeviceStateLabel(device), "something else");
}

TEST(FeatureNamesTest, MergesEnumListAndRawFlagsInKernelOrder) {
  v1::Device device;
  device.add_features(v1::MIGRATION_FEATURE_PRE_COPY);
  device.add_features(v1::MIGRATION_FEATURE_STOP_COPY);
  EXPECT_THAT(FeatureNames(device), ElementsAre("stop_copy", "pre_copy"));
  device.set_migration_flags(VFIO_MIGRATION_P2P | 0x10);
  EXPECT_THAT(FeatureNames(device),
              ElementsAre("stop_copy", "p2p", "pre_copy", "0x10"));
}

v1::Device SimDevice() {
  v1::Device device;
  device.set_id("gpu0");
  device.set_backend("sim");
  device.set_driver("sim");
  device.add_features(v1::MIGRATION_FEATURE_STOP_COPY);
  device.add_features(v1::MIGRATION_FEATURE_P2P);
  device.set_migration_flags(3);
  device.set_state(v1::DEVICE_STATE_RUNNING);
  device.set_state_name("RUNNING");
  device.set_migratable(true);
  return device;
}

TEST(DeviceToJsonTest, OmitsAbsentOptionalKeys) {
  Json json = DeviceToJson(SimDevice());
  EXPECT_EQ(json["id"], "gpu0");
  EXPECT_EQ(json["state"], "RUNNING");
  EXPECT_EQ(json["features"], Json({"stop_copy", "p2p"}));
  EXPECT_EQ(json["migratable"], true);
  EXPECT_FALSE(json.contains("digest"));
  EXPECT_FALSE(json.contains("stop_copy_bytes"));
  EXPECT_FALSE(json.contains("not_migratable_reason"));
}

TEST(DeviceToJsonTest, IncludesOptionalKeysWhenSet) {
  v1::Device device = SimDevice();
  device.set_digest("");  // present but empty still counts as present
  device.set_stop_copy_bytes(0);
  device.set_migratable(false);
  device.set_not_migratable_reason("no migration driver");
  Json json = DeviceToJson(device);
  EXPECT_EQ(json["digest"], "");
  EXPECT_EQ(json["stop_copy_bytes"], 0);
  EXPECT_EQ(json["not_migratable_reason"], "no migration driver");
}

TEST(DeviceTableTest, ShowsEveryColumn) {
  v1::ListDevicesResponse response;
  v1::Device* gpu = response.add_devices();
  *gpu = SimDevice();
  gpu->set_digest("abc123");
  gpu->set_stop_copy_bytes(uint64_t{1} << 20);
  v1::Device* nic = response.add_devices();
  *nic = SimDevice();
  nic->set_id("nic0");
  nic->set_migratable(false);
  nic->set_not_migratable_reason("lacks STOP_COPY");
  std::ostringstream out;
  RenderDeviceTable(response, out);
  EXPECT_EQ(out.str(),
            "ID    BACKEND  DRIVER  STATE    FEATURES       STOP-COPY  DIGEST  "
            "MIGRATABLE\n"
            "gpu0  sim      sim     RUNNING  stop_copy,p2p  1.0 MiB    abc123  "
            "yes\n"
            "nic0  sim      sim     RUNNING  stop_copy,p2p  -          -       "
            "no: lacks STOP_COPY\n");
}

TEST(CleanDeviceIdsTest, SplitsTrimsAndKeepsOrder) {
  absl::StatusOr<std::vector<std::string>> ids =
      CleanDeviceIds({"gpu1, gpu0", "nic0"});
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_THAT(*ids, ElementsAre("gpu1", "gpu0", "nic0"));
}

TEST(CleanDeviceIdsTest, RejectsEmptyAndRepeatedEntries) {
  EXPECT_FALSE(CleanDeviceIds({"a,,b"}).ok());
  EXPECT_FALSE(CleanDeviceIds({""}).ok());
  EXPECT_FALSE(CleanDeviceIds({}).ok());
  absl::StatusOr<std::vector<std::string>> dup = CleanDeviceIds({"a,b", "a"});
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("'a'"));
}

v1::MigrationPlan TwoWavePlan() {
  v1::MigrationPlan plan;
  plan.set_migratable(true);
  v1::Wave* quiesce = plan.add_source_waves();
  quiesce->set_phase("p2p-quiesce");
  quiesce->set_description("stop outbound P2P");
  for (const char* id : {"gpu0", "gpu1"}) {
    v1::Arc* arc = quiesce->add_arcs();
    arc->set_device_id(id);
    arc->set_from(v1::DEVICE_STATE_RUNNING);
    arc->set_to(v1::DEVICE_STATE_RUNNING_P2P);
  }
  v1::Wave* stop = plan.add_source_waves();
  stop->set_phase("stop");
  v1::Arc* arc = stop->add_arcs();
  arc->set_device_id("gpu0");
  arc->set_from(v1::DEVICE_STATE_RUNNING_P2P);
  arc->set_to(v1::DEVICE_STATE_STOP);
  arc->set_drain(true);
  v1::DevicePath* path = plan.add_devices();
  path->set_device_id("gpu0");
  path->add_source_path(v1::DEVICE_STATE_RUNNING);
  path->add_source_path(v1::DEVICE_STATE_RUNNING_P2P);
  path->add_source_path(v1::DEVICE_STATE_STOP);
  path->add_reasons("has P2P");
  return plan;
}

TEST(PlanToJsonTest, HasTheDocumentedShape) {
  Json json = PlanToJson(TwoWavePlan());
  EXPECT_EQ(json["migratable"], true);
  EXPECT_EQ(json["blockers"], Json::array());
  EXPECT_EQ(json["destination"], Json::array());
  EXPECT_EQ(json["source"],
            Json::parse(R"([[{"device": "gpu0", "from": "RUNNING",
                              "to": "RUNNING_P2P"},
                             {"device": "gpu1", "from": "RUNNING",
                              "to": "RUNNING_P2P"}],
                            [{"device": "gpu0", "from": "RUNNING_P2P",
                              "to": "STOP"}]])"));
  EXPECT_EQ(json["source_phases"][0]["phase"], "p2p-quiesce");
  EXPECT_EQ(json["devices"][0]["source_path"],
            Json({"RUNNING", "RUNNING_P2P", "STOP"}));
  EXPECT_EQ(json["warnings"], Json::array());
}

TEST(PlanToJsonTest, GroupBlockerHasEmptyDevice) {
  v1::MigrationPlan plan;
  plan.add_blockers()->set_reason("group too large");
  v1::Blocker* blocker = plan.add_blockers();
  blocker->set_device_id("nic0");
  blocker->set_reason("lacks P2P");
  Json json = PlanToJson(plan);
  EXPECT_EQ(json["migratable"], false);
  EXPECT_EQ(json["blockers"],
            Json::parse(R"([{"device": "", "reason": "group too large"},
                            {"device": "nic0", "reason": "lacks P2P"}])"));
}

TEST(RenderPlanTest, NumbersWavesAndSeparatesThemWithBarriers) {
  std::ostringstream out;
  RenderPlan(TwoWavePlan(), out);
  const std::string text = out.str();
  EXPECT_THAT(text, HasSubstr("MIGRATABLE: yes\n"));
  EXPECT_THAT(text, HasSubstr("  1. p2p-quiesce: stop outbound P2P\n"
                              "     gpu0  RUNNING -> RUNNING_P2P\n"
                              "     gpu1  RUNNING -> RUNNING_P2P\n"
                              "  --- barrier ---\n"
                              "  2. stop\n"
                              "     gpu0  RUNNING_P2P -> STOP  [drain]\n"));
  EXPECT_THAT(text, HasSubstr("    source:       RUNNING RUNNING_P2P STOP\n"
                              "    - has P2P\n"));
  EXPECT_THAT(text, Not(HasSubstr("Blockers")));
}

TEST(RenderPlanTest, ListsBlockers) {
  v1::MigrationPlan plan;
  v1::Blocker* blocker = plan.add_blockers();
  blocker->set_device_id("nic0");
  blocker->set_reason("lacks P2P");
  plan.add_blockers()->set_reason("mixed drivers");
  std::ostringstream out;
  RenderPlan(plan, out);
  EXPECT_THAT(out.str(), HasSubstr("MIGRATABLE: no\n\nBlockers:\n"
                                   "  nic0     lacks P2P\n"
                                   "  (group)  mixed drivers\n"));
  EXPECT_THAT(out.str(), HasSubstr("(none: the group is blocked)"));
}

TEST(NormalizeTargetTest, TurnsBarePathsIntoUnixTargets) {
  EXPECT_EQ(*NormalizeTarget("/run/x.sock"), "unix:/run/x.sock");
  EXPECT_EQ(*NormalizeTarget("unix:/run/x.sock"), "unix:/run/x.sock");
  EXPECT_EQ(*NormalizeTarget("host:1234"), "host:1234");
  EXPECT_FALSE(NormalizeTarget("").ok());
}

}  // namespace
}  // namespace vfiomig::cli
