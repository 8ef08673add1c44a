#include "plugins/sim/sim_config.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"

namespace vfiomig::sim {
namespace {

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// One device with `extra` keys added to a valid minimum.
std::string OneDevice(const std::string& extra) {
  return R"({"devices": [{"id": "gpu0", "features": ["stop_copy", "p2p")"
         R"(, "pre_copy"])" +
         extra + "}]}";
}

TEST(SimConfigTest, ParsesEveryKey) {
  absl::StatusOr<SimConfig> config = ParseSimConfig(R"({
    "devices": [
      {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
       "state_bytes": "4GiB", "precopy_bytes": 1048576,
       "dirty_bytes_per_s": "2 MiB", "arc_latency_ms": 5, "drain_ms": 250,
       "fail_arcs": ["RUNNING>RUNNING_P2P", "STOP>STOP_COPY:error"],
       "seed": 18446744073709551615, "description": "a big GPU"},
      {"id": "0000:3b:00.0", "features": ["stop_copy"]}
    ]})",
                                                    "sim.json");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->devices.size(), 2u);
  const SimDeviceConfig& a = config->devices[0];
  EXPECT_EQ(a.id, "gpu0");
  EXPECT_EQ(a.features.flags(), 7u);
  EXPECT_EQ(a.state_bytes, uint64_t{4} << 30);
  EXPECT_EQ(a.precopy_bytes, 1048576u);
  EXPECT_EQ(a.dirty_bytes_per_s, uint64_t{2} << 20);
  EXPECT_EQ(a.arc_latency, absl::Milliseconds(5));
  EXPECT_EQ(a.drain, absl::Milliseconds(250));
  ASSERT_EQ(a.fail_arcs.size(), 2u);
  EXPECT_EQ(a.fail_arcs[0],
            (FailArc{DeviceState::RUNNING, DeviceState::RUNNING_P2P, false}));
  EXPECT_EQ(a.fail_arcs[1],
            (FailArc{DeviceState::STOP, DeviceState::STOP_COPY, true}));
  EXPECT_EQ(FailArcName(a.fail_arcs[1]), "STOP>STOP_COPY:error");
  EXPECT_EQ(a.seed, UINT64_MAX);
  EXPECT_EQ(a.description, "a big GPU");

  const SimDeviceConfig& b = config->devices[1];
  EXPECT_EQ(b.id, "0000:3b:00.0");
  EXPECT_EQ(b.features.flags(), VFIO_MIGRATION_STOP_COPY);
  EXPECT_EQ(b.state_bytes, kDefaultStateBytes);
  EXPECT_EQ(b.precopy_bytes, 0u);
  EXPECT_EQ(b.dirty_bytes_per_s, 0u);
  EXPECT_EQ(b.arc_latency, absl::ZeroDuration());
  EXPECT_TRUE(b.fail_arcs.empty());
  EXPECT_EQ(b.seed, DefaultSeed("0000:3b:00.0"));
  EXPECT_NE(DefaultSeed("gpu0"), DefaultSeed("gpu1"));
}

TEST(SimConfigTest, PrecopyBytesDefaultsToStateBytesWithPreCopy) {
  absl::StatusOr<SimConfig> config =
      ParseSimConfig(OneDevice(R"(, "state_bytes": 5000)"), "sim.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->devices[0].precopy_bytes, 5000u);
}

TEST(SimConfigTest, SlowArcsAndPersistState) {
  absl::StatusOr<SimConfig> config =
      ParseSimConfig(R"({"persist_state": true, "devices": [{"id": "gpu0", )"
                     R"("features": ["stop_copy", "p2p"], "slow_arcs": )"
                     R"({"RUNNING_P2P>STOP": 1500, "stop>running_p2p": 7}}]})",
                     "sim.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->persist_state);
  const std::vector<SlowArc>& slow = config->devices[0].slow_arcs;
  ASSERT_EQ(slow.size(), 2u);
  EXPECT_EQ(ArcName(slow[0].from, slow[0].to), "RUNNING_P2P>STOP");
  EXPECT_EQ(slow[0].extra, absl::Milliseconds(1500));
  EXPECT_EQ(ArcName(slow[1].from, slow[1].to), "STOP>RUNNING_P2P");
  EXPECT_FALSE(ParseSimConfig(R"({"devices": []})", "sim.json")->persist_state);
}

TEST(SimConfigTest, EmptyDeviceListIsValid) {
  absl::StatusOr<SimConfig> config =
      ParseSimConfig(R"({"devices": []})", "sim.json");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->devices.empty());
}

struct BadCase {
  std::string name;
  std::string json;
  std::string message;  // the error must contain this
  friend void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }
};

class SimConfigErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(SimConfigErrorTest, RefusedNamingTheKey) {
  absl::StatusOr<SimConfig> config =
      ParseSimConfig(GetParam().json, "sim.json");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(Msg(config.status()).find(GetParam().message), std::string::npos)
      << "got: " << config.status();
}

const std::string kThree =
    R"({"devices": [{"id": "a", "features": ["stop_copy"]},)"
    R"({"id": "b", "features": ["stop_copy"]},)";

INSTANTIATE_TEST_SUITE_P(
    Cases, SimConfigErrorTest,
    ::testing::Values(
        BadCase{"MissingId", R"({"devices": [{"features": ["stop_copy"]}]})",
                "sim.json: devices[0].id: missing (required)"},
        BadCase{"EmptyId", R"({"devices": [{"id": "", "features": []}]})",
                "sim.json: devices[0].id: must not be empty"},
        BadCase{"IdNotString", R"({"devices": [{"id": 7, "features": []}]})",
                "sim.json: devices[0].id: must be a string"},
        BadCase{"IdCharset",
                R"({"devices": [{"id": "gpu 0/x", "features": []}]})",
                "sim.json: devices[0].id: 'gpu 0/x' must start with"},
        BadCase{"DuplicateId",
                R"({"devices": [{"id": "gpu0", "features": []},)"
                R"({"id": "gpu0", "features": []}]})",
                "sim.json: devices[1].id: duplicate id 'gpu0' (also "
                "devices[0])"},
        BadCase{"MissingFeatures", R"({"devices": [{"id": "a"}]})",
                "sim.json: devices[0].features: missing (required)"},
        BadCase{"FeaturesNotList",
                R"({"devices": [{"id": "a", "features": "stop_copy"}]})",
                "sim.json: devices[0].features: must be a list"},
        BadCase{
            "BadFeature",
            R"({"devices": [{"id": "a", "features": ["stop_copy", "p2q"]}]})",
            "sim.json: devices[0].features[1]: unknown feature 'p2q'"},
        BadCase{"DuplicateFeature",
                R"({"devices": [{"id": "a", "features": ["p2p", "p2p"]}]})",
                "sim.json: devices[0].features[1]: duplicate feature 'p2p'"},
        BadCase{"NegativeDrain",
                kThree + R"({"id": "c", "features": [],)"
                         R"( "drain_ms": -5}]})",
                "sim.json: devices[2].drain_ms: must be a non-negative "
                "integer"},
        BadCase{"FractionalLatency", OneDevice(R"(, "arc_latency_ms": 1.5)"),
                "devices[0].arc_latency_ms: must be a non-negative integer"},
        BadCase{"StringDrain", OneDevice(R"(, "drain_ms": "10")"),
                "devices[0].drain_ms: must be a non-negative integer"},
        BadCase{"HugeDrain", OneDevice(R"(, "drain_ms": 86400001)"),
                "devices[0].drain_ms: must be at most 86400000"},
        BadCase{"NegativeStateBytes", OneDevice(R"(, "state_bytes": -1)"),
                "devices[0].state_bytes: must be a non-negative integer or a "
                "size"},
        BadCase{"DecimalUnit", OneDevice(R"(, "state_bytes": "4GB")"),
                "devices[0].state_bytes: must be a non-negative integer or a "
                "size"},
        BadCase{"ZeroStateBytes", OneDevice(R"(, "state_bytes": 0)"),
                "devices[0].state_bytes: must be between 1 and"},
        BadCase{"StateBytesTooLarge", OneDevice(R"(, "state_bytes": "2TiB")"),
                "devices[0].state_bytes: must be between 1 and"},
        BadCase{"PrecopyAboveState",
                OneDevice(R"(, "state_bytes": 100, "precopy_bytes": 101)"),
                "devices[0].precopy_bytes: 101 exceeds state_bytes 100"},
        BadCase{"PrecopyWithoutFeature",
                R"({"devices": [{"id": "a", "features": ["stop_copy"],)"
                R"( "precopy_bytes": 10}]})",
                "devices[0].precopy_bytes: needs the pre_copy feature"},
        BadCase{"NegativeDirtyRate", OneDevice(R"(, "dirty_bytes_per_s": -1)"),
                "devices[0].dirty_bytes_per_s: must be a non-negative"},
        BadCase{"PersistStateNotBool",
                R"({"devices": [], "persist_state": "yes"})",
                "sim.json: persist_state: must be true or false"},
        BadCase{"SlowArcsNotObject",
                OneDevice(R"(, "slow_arcs": ["RUNNING>STOP"])"),
                "devices[0].slow_arcs: must be an object"},
        BadCase{"SlowArcWithErrorSuffix",
                OneDevice(R"(, "slow_arcs": {"RUNNING>RUNNING_P2P:error": 5})"),
                "devices[0].slow_arcs.RUNNING>RUNNING_P2P:error: takes no"},
        BadCase{"SlowArcNotAnArc",
                OneDevice(R"(, "slow_arcs": {"RUNNING>STOP_COPY": 5})"),
                "devices[0].slow_arcs.RUNNING>STOP_COPY: RUNNING>STOP_COPY "
                "is not a single kernel arc"},
        BadCase{"SlowArcNegative",
                OneDevice(R"(, "slow_arcs": {"RUNNING>RUNNING_P2P": -5})"),
                "devices[0].slow_arcs.RUNNING>RUNNING_P2P: must be"},
        BadCase{"FailArcsNotList",
                OneDevice(R"(, "fail_arcs": "RUNNING>STOP")"),
                "devices[0].fail_arcs: must be a list"},
        BadCase{"FailArcSyntax",
                OneDevice(R"(, "fail_arcs": ["RUNNING-RUNNING_P2P"])"),
                "devices[0].fail_arcs[0]: 'RUNNING-RUNNING_P2P' is not "
                "FROM>TO"},
        BadCase{"FailArcThreeStates",
                OneDevice(R"(, "fail_arcs": ["RUNNING>STOP>RUNNING"])"),
                "devices[0].fail_arcs[0]: 'RUNNING>STOP>RUNNING' is not"},
        BadCase{"FailArcUnknownState",
                OneDevice(R"(, "fail_arcs": ["RUNNING>RUNNING_P2P", )"
                          R"("RUNING>STOP"])"),
                "devices[0].fail_arcs[1]: unknown state 'RUNING'"},
        BadCase{"FailArcBadSuffix",
                OneDevice(R"(, "fail_arcs": ["RUNNING>RUNNING_P2P:boom"])"),
                "devices[0].fail_arcs[0]: 'RUNNING>RUNNING_P2P:boom': the "
                "only suffix is ':error'"},
        BadCase{"FailArcNotSingle",
                OneDevice(R"(, "fail_arcs": ["RUNNING>STOP_COPY"])"),
                "devices[0].fail_arcs[0]: RUNNING>STOP_COPY is not a single "
                "kernel arc"},
        BadCase{"FailArcDuplicate",
                OneDevice(R"(, "fail_arcs": ["STOP>RESUMING", )"
                          R"("STOP>RESUMING:error"])"),
                "devices[0].fail_arcs[1]: duplicate arc STOP>RESUMING"},
        BadCase{"NegativeSeed", OneDevice(R"(, "seed": -3)"),
                "devices[0].seed: must be an unsigned 64-bit integer"},
        BadCase{"SeedTooLarge", OneDevice(R"(, "seed": 18446744073709551616)"),
                "devices[0].seed: must be an unsigned 64-bit integer"},
        BadCase{"DescriptionTwoLines", OneDevice(R"(, "description": "a\nb")"),
                "devices[0].description: must be one line"},
        BadCase{"UnknownDeviceKey", OneDevice(R"(, "drian_ms": 5)"),
                "sim.json: devices[0].drian_ms: unknown key (known: id,"},
        BadCase{
            "UnknownTopLevelKey", R"({"devices": [], "device": []})",
            "sim.json: device: unknown key (known: devices, persist_state)"},
        BadCase{"MissingDevices", R"({})",
                "sim.json: devices: missing (required)"},
        BadCase{"DevicesNotList", R"({"devices": {}})",
                "sim.json: devices: must be a list"},
        BadCase{"DeviceNotObject", R"({"devices": [[]]})",
                "sim.json: devices[0]: must be an object"},
        BadCase{"TopLevelNotObject", R"([1, 2])",
                "sim.json: must be a JSON object"},
        BadCase{"DuplicateJsonKey",
                OneDevice(R"(, "drain_ms": 1, "drain_ms": 2)"),
                "sim.json: devices[0].drain_ms: duplicate key"},
        BadCase{"DuplicateKeyInSecondDevice",
                kThree + R"({"id": "c", "features": [], "id": "d"}]})",
                "sim.json: devices[2].id: duplicate key"},
        BadCase{"SyntaxError", "{\"devices\": [\n  {\"id\": \"a\",,}\n]}",
                "sim.json: invalid JSON: line 2, column"},
        BadCase{"Truncated", R"({"devices": [)",
                "sim.json: invalid JSON: line 1, column"}),
    [](const ::testing::TestParamInfo<BadCase>& info) {
      return info.param.name;
    });

TEST(SimConfigTest, LoadReadsAFile) {
  std::string path = ::testing::TempDir() + "/sim_config_test.json";
  {
    std::ofstream out(path);
    out << OneDevice(R"(, "state_bytes": "1KiB")");
  }
  absl::StatusOr<SimConfig> config = LoadSimConfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->devices[0].state_bytes, 1024u);
  std::remove(path.c_str());
}

TEST(SimConfigTest, LoadNamesTheFileInErrors) {
  std::string path = ::testing::TempDir() + "/sim_config_bad.json";
  {
    std::ofstream out(path);
    out << OneDevice(R"(, "drain_ms": -1)");
  }
  absl::StatusOr<SimConfig> config = LoadSimConfig(path);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(Msg(config.status()).rfind(path + ": devices[0].drain_ms", 0), 0u)
      << config.status();
  std::remove(path.c_str());
}

TEST(SimConfigTest, LoadMissingFileIsNotFound) {
  absl::StatusOr<SimConfig> config = LoadSimConfig("/nonexistent/dir/sim.json");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(Msg(config.status()).find("/nonexistent/dir/sim.json"),
            std::string::npos);
}

}  // namespace
}  // namespace vfiomig::sim
