#include "plugins/sim/sim_backend.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "plugins/registry.h"

namespace vfiomig::sim {
namespace {

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

class SimBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/sim_backend_test.json";
    std::ofstream out(path_);
    out << R"({"devices": [
      {"id": "gpu1", "features": ["stop_copy", "p2p"]},
      {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"]},
      {"id": "nic0", "features": ["stop_copy"], "state_bytes": 60}
    ]})";
  }
  void TearDown() override { std::remove(path_.c_str()); }

  std::vector<std::string> Ids(DeviceBackend& backend) {
    std::vector<std::string> ids;
    for (const auto& d : backend.Devices()) ids.push_back(d->info().id);
    return ids;
  }

  std::string path_;
};

TEST_F(SimBackendTest, RegisteredAsSimAndKeepsConfigOrder) {
  absl::StatusOr<std::unique_ptr<DeviceBackend>> backend =
      BackendRegistry::Create("sim", BackendOptions{.sim_config_path = path_,
                                                    .device_filter = {},
                                                    .state_dir = ""});
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_EQ((*backend)->name(), "sim");
  EXPECT_EQ(Ids(**backend), (std::vector<std::string>{"gpu1", "gpu0", "nic0"}));
  absl::StatusOr<std::shared_ptr<Device>> gpu0 = (*backend)->Find("gpu0");
  ASSERT_TRUE(gpu0.ok());
  EXPECT_EQ((*gpu0)->info().features.flags(), 7u);
  EXPECT_EQ((*gpu0)->GetState().value(), DeviceState::RUNNING);
  // The same device object every time: state lives in the backend.
  EXPECT_EQ((*backend)->Find("gpu0")->get(), gpu0->get());
}

TEST_F(SimBackendTest, FilterKeepsConfigOrder) {
  absl::StatusOr<std::unique_ptr<DeviceBackend>> backend =
      BackendRegistry::Create("sim",
                              BackendOptions{.sim_config_path = path_,
                                             .device_filter = {"nic0", "gpu1"},
                                             .state_dir = ""});
  ASSERT_TRUE(backend.ok()) << backend.status();
  EXPECT_EQ(Ids(**backend), (std::vector<std::string>{"gpu1", "nic0"}));
}

TEST_F(SimBackendTest, UnknownFilterIdIsNamed) {
  absl::StatusOr<std::unique_ptr<DeviceBackend>> backend =
      BackendRegistry::Create("sim",
                              BackendOptions{.sim_config_path = path_,
                                             .device_filter = {"gpu0", "gpu9"},
                                             .state_dir = ""});
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Msg(backend.status()),
            "device filter names 'gpu9', which " + path_ +
                " does not define (it has: gpu1, gpu0, nic0)");
}

TEST_F(SimBackendTest, ConfigPathIsRequired) {
  absl::StatusOr<std::unique_ptr<DeviceBackend>> backend =
      BackendRegistry::Create("sim", BackendOptions{});
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(backend.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(Msg(backend.status()).find("sim_config_path"), std::string::npos);
}

TEST_F(SimBackendTest, BadConfigIsRefusedWithItsPath) {
  {
    std::ofstream out(path_);
    out << R"({"devices": [{"id": "a", "features": ["warp"]}]})";
  }
  absl::StatusOr<std::unique_ptr<DeviceBackend>> backend =
      BackendRegistry::Create("sim", BackendOptions{.sim_config_path = path_,
                                                    .device_filter = {},
                                                    .state_dir = ""});
  ASSERT_FALSE(backend.ok());
  EXPECT_EQ(Msg(backend.status()).rfind(path_ + ": devices[0].features[0]", 0),
            0u)
      << backend.status();
}

TEST(SimBackendDirectTest, DevicesShareTheInjectedClock) {
  absl::StatusOr<SimConfig> config =
      ParseSimConfig(R"({"devices": [{"id": "a", "features": ["stop_copy"],)"
                     R"( "arc_latency_ms": 40}]})",
                     "inline");
  ASSERT_TRUE(config.ok());
  absl::Time now = absl::UnixEpoch();
  SimClock clock{.now = [&now] { return now; },
                 .sleep = [&now](absl::Duration d) { now += d; }};
  absl::StatusOr<std::unique_ptr<SimBackend>> backend =
      SimBackend::Create(*config, {}, "inline", clock);
  ASSERT_TRUE(backend.ok());
  ASSERT_EQ((*backend)->sim_devices().size(), 1u);
  ASSERT_TRUE((*backend)->sim_devices()[0]->SetState(DeviceState::STOP).ok());
  EXPECT_EQ(now, absl::UnixEpoch() + absl::Milliseconds(40));
}

}  // namespace
}  // namespace vfiomig::sim
