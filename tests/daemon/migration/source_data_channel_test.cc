// Source migrations over the data channel, end to end in process: a source
// MigrationManager with data_channel on migrates to a real PeerService that
// offers one. The state takes the data channel when it can, the peer link
// when the source does not want it or cannot reach it, and the content
// arrives either way.
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "daemon/migration/migration_manager.h"
#include "gtest/gtest.h"
#include "tests/daemon/migration/source_test_util.h"

namespace vfiomig {
namespace {

using ::vfiomig::testing::EventLog;
using ::vfiomig::testing::TwoHostsTest;

const std::vector<std::string> kDevices = {"gpu0", "gpu1", "nic0"};

// One PRE_COPY device that dirties its state, so pre-copy and stop-copy
// both cross the channel; destination devices have other seeds.
constexpr char kSource[] = R"json({"devices": [
  {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "12MiB", "dirty_bytes_per_s": "16MiB"},
  {"id": "gpu1", "features": ["stop_copy", "p2p"], "state_bytes": "6MiB"},
  {"id": "nic0", "features": ["stop_copy", "p2p"], "state_bytes": "4KiB"}
]})json";
constexpr char kDestination[] = R"json({"devices": [
  {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "12MiB", "seed": 11},
  {"id": "gpu1", "features": ["stop_copy", "p2p"], "state_bytes": "6MiB",
   "seed": 12},
  {"id": "nic0", "features": ["stop_copy", "p2p"], "state_bytes": "4KiB",
   "seed": 13}
]})json";

class SourceDataChannelTest : public TwoHostsTest {
 protected:
  void SetUpWith(bool source_wants_it) {
    MigrationOptions options;
    options.data_channel = source_wants_it;
    SetUpHosts(kSource, kDestination, options);
    ASSERT_NE(peer_, nullptr);
    ASSERT_TRUE(peer_->EnableDataChannel({"127.0.0.1"}).ok());
  }

  // Migrates kDevices; expects success and the content moved.
  void MigrateAndCheck() {
    v1::Migration started;
    std::unique_ptr<EventLog> log =
        StartAndWatch(Request(kDevices, endpoint_), &started);
    ASSERT_NE(log, nullptr);
    ASSERT_TRUE(log->WaitEnded(absl::Seconds(60)));
    const v1::Migration m = log->events().back().migration();
    ASSERT_EQ(m.outcome(), v1::MIGRATION_OUTCOME_SUCCEEDED) << m.error();
    EXPECT_GT(m.devices(0).pre_copy_bytes(), 0u);
    for (const std::string& id : kDevices) {
      EXPECT_EQ(DigestOf(*destination_, id), DigestOf(*source_, id)) << id;
      EXPECT_EQ(StateOf(*destination_, id), DeviceState::RUNNING) << id;
    }
  }
};

TEST_F(SourceDataChannelTest, StreamsTakeTheDataChannelWhenOffered) {
  SetUpWith(/*source_wants_it=*/true);
  MigrateAndCheck();
  EXPECT_EQ(peer_->data_channel_streams(), kDevices.size());
}

TEST_F(SourceDataChannelTest, SourceWithoutItUsesThePeerLink) {
  SetUpWith(/*source_wants_it=*/false);
  MigrateAndCheck();
  EXPECT_EQ(peer_->data_channel_streams(), 0u);
}

TEST_F(SourceDataChannelTest, UnreachableChannelFallsBackToThePeerLink) {
  SetUpWith(/*source_wants_it=*/true);
  // Still offered, but every connection is refused.
  peer_->StopDataChannel();
  MigrateAndCheck();
  EXPECT_EQ(peer_->data_channel_streams(), 0u);
}

}  // namespace
}  // namespace vfiomig
