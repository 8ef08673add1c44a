// Sim devices that outlive the daemon (persist_state): what survives a
// "restart" (a new SimDevice on the same file) and what does not.
#include "plugins/sim/sim_state_file.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "plugins/sim/sim_backend.h"
#include "tests/plugins/sim/sim_test_util.h"

namespace vfiomig::sim {
namespace {

using testing::DeviceConfig;
using testing::FakeClock;
using testing::kAllFeatures;
using testing::SaveAll;
using testing::StartResume;
using testing::Walk;
using testing::WriteChunked;
using S = DeviceState;

constexpr uint64_t kSize = 3 * kBlockSize + 100;

class SimStateFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "vfiomig-sim-XXXXXX")
            .string();
    dir_ = mkdtemp(pattern.data());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A device on `id`'s state file, restored from it if it exists: what the
  // daemon does at start-up.
  std::shared_ptr<SimDevice> Open(const SimDeviceConfig& config) {
    SimPersistence p;
    p.file = std::make_shared<SimStateFile>(dir_ / (config.id + ".json"));
    absl::StatusOr<std::optional<SimSavedState>> saved =
        p.file->Load(config.state_bytes);
    EXPECT_TRUE(saved.ok()) << saved.status();
    if (saved.ok()) p.restored = *saved;
    return SimDevice::Create(config, clock_.clock(), std::move(p));
  }

  FakeClock clock_;
  std::filesystem::path dir_;
};

TEST_F(SimStateFileTest, StoppedDeviceKeepsItsStateAndContent) {
  SimDeviceConfig c = DeviceConfig("gpu0", kAllFeatures, kSize);
  c.dirty_bytes_per_s = kBlockSize * 10;
  std::string digest;
  {
    auto device = Open(c);
    clock_.Advance(absl::Seconds(1));  // dirties blocks while RUNNING
    ASSERT_TRUE(Walk(*device, S::STOP).ok());
    digest = device->ContentDigest().value();
    EXPECT_NE(digest, SimDevice::Create(c)->ContentDigest().value());
  }
  auto again = Open(c);
  EXPECT_EQ(again->GetState().value(), S::STOP);
  EXPECT_EQ(again->ContentDigest().value(), digest);
  // A device in STOP can open a fresh save session and send that content.
  auto dest = SimDevice::Create(DeviceConfig("dst", kAllFeatures, kSize));
  absl::StatusOr<std::vector<uint8_t>> stream = SaveAll(*again, 1 << 16);
  ASSERT_TRUE(stream.ok()) << stream.status();
  auto resume = StartResume(*dest).value();
  ASSERT_TRUE(WriteChunked(*resume, *stream, 4096).ok());
  ASSERT_TRUE(dest->SetState(S::STOP).ok());
  EXPECT_EQ(dest->ContentDigest().value(), digest);
}

TEST_F(SimStateFileTest, ResumedContentSurvivesButSessionsDoNot) {
  SimDeviceConfig src_config = DeviceConfig("src", kAllFeatures, kSize);
  auto src = SimDevice::Create(src_config, clock_.clock());
  std::vector<uint8_t> stream = SaveAll(*src, 1 << 16).value();
  SimDeviceConfig c = DeviceConfig("dst", kAllFeatures, 4 * kBlockSize);
  {
    auto device = Open(c);
    auto resume = StartResume(*device).value();
    ASSERT_TRUE(WriteChunked(*resume, stream, 4096).ok());
    ASSERT_TRUE(device->SetState(S::STOP).ok());
  }
  auto loaded = Open(c);
  EXPECT_EQ(loaded->GetState().value(), S::STOP);
  EXPECT_EQ(loaded->ContentDigest().value(), src->ContentDigest().value());
  EXPECT_EQ(loaded->content_size(), kSize);

  // A daemon that died with a resume session open: the device is still in
  // RESUMING, the partial stream is gone, and only a reset gets it out.
  {
    ASSERT_TRUE(loaded->Reset().ok());
    auto resume = StartResume(*loaded).value();
    ASSERT_TRUE(
        WriteChunked(*resume, absl::MakeSpan(stream).first(5000), 4096).ok());
  }
  auto restarted = Open(c);
  EXPECT_EQ(restarted->GetState().value(), S::RESUMING);
  EXPECT_FALSE(restarted->SetState(S::STOP).ok());
  ASSERT_TRUE(restarted->Reset().ok());
  EXPECT_EQ(restarted->GetState().value(), S::RUNNING);
}

TEST_F(SimStateFileTest, ResetRestoresPowerOnContent) {
  SimDeviceConfig c = DeviceConfig("gpu0", kAllFeatures, kSize);
  c.dirty_bytes_per_s = kBlockSize * 10;
  auto device = Open(c);
  const std::string power_on = device->ContentDigest().value();
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(Walk(*device, S::STOP).ok());
  ASSERT_NE(device->ContentDigest().value(), power_on);
  ASSERT_TRUE(device->Reset().ok());
  EXPECT_EQ(device->ContentDigest().value(), power_on);
  EXPECT_EQ(Open(c)->ContentDigest().value(), power_on);
}

TEST_F(SimStateFileTest, DamagedFileIsRefusedNamingIt) {
  SimDeviceConfig c = DeviceConfig("gpu0", kAllFeatures, kSize);
  const auto path = dir_ / "gpu0.json";
  for (const std::string& text :
       {std::string("{"), std::string("{\"format\": 2}"),
        std::string("{\"format\":1,\"state\":\"FLYING\",\"size\":1,"
                    "\"origin_seed\":1,\"versions\":[]}"),
        std::string("{\"format\":1,\"state\":\"STOP\",\"size\":99999999,"
                    "\"origin_seed\":1,\"versions\":[]}"),
        std::string("{\"format\":1,\"state\":\"STOP\",\"size\":100,"
                    "\"origin_seed\":1,\"versions\":[[1,1]]}")}) {
    std::ofstream(path) << text;
    absl::StatusOr<std::optional<SimSavedState>> saved =
        SimStateFile(path).Load(kSize);
    ASSERT_EQ(saved.status().code(), absl::StatusCode::kInvalidArgument)
        << text;
    EXPECT_NE(saved.status().message().find(path.string()), std::string::npos);
  }
}

TEST_F(SimStateFileTest, BackendNeedsAStateDirectory) {
  SimConfig config;
  config.persist_state = true;
  config.devices.push_back(DeviceConfig("gpu0", kAllFeatures, kSize));
  EXPECT_EQ(SimBackend::Create(config, {}, "sim.json").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto backend = SimBackend::Create(config, {}, "sim.json", SimClock::Real(),
                                    dir_.string());
  ASSERT_TRUE(backend.ok()) << backend.status();
  ASSERT_TRUE(Walk(*(*backend)->sim_devices()[0], S::STOP).ok());
  auto again = SimBackend::Create(config, {}, "sim.json", SimClock::Real(),
                                  dir_.string());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ((*again)->sim_devices()[0]->GetState().value(), S::STOP);
}

}  // namespace
}  // namespace vfiomig::sim
