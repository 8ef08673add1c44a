#include "plugins/sim/sim_save_queue.h"

#include "gtest/gtest.h"
#include "plugins/sim/sim_generator.h"
#include "plugins/sim/sim_stream_format.h"

namespace vfiomig::sim {
namespace {

constexpr uint64_t kRecord = kRecordHeaderSize + kBlockSize;
// Four blocks, the last one 10 bytes long.
constexpr uint64_t kSize = 3 * kBlockSize + 10;
constexpr uint64_t kLastRecord = kRecordHeaderSize + 10;

TEST(SaveQueueTest, PrecopyOffersInitialBlocksThenDirtyOnes) {
  SaveQueue q(kSize, 2);
  EXPECT_EQ(q.initial_bytes(), 2 * kRecord);
  EXPECT_EQ(q.pending_bytes(), 3 * kRecord + kLastRecord);
  EXPECT_EQ(q.TakePrecopy(), 0u);
  q.Sent(0);
  EXPECT_EQ(q.TakePrecopy(), 1u);
  EXPECT_EQ(q.initial_bytes(), 0u);
  q.Sent(1);
  EXPECT_EQ(q.TakePrecopy(), std::nullopt);  // nothing due right now

  q.Dirtied(3);  // never sent: stop-copy data, not dirty pre-copy data
  EXPECT_EQ(q.dirty_bytes(), 0u);
  q.Dirtied(0);
  q.Dirtied(0);  // queued once
  EXPECT_EQ(q.dirty_bytes(), kRecord);
  EXPECT_EQ(q.TakePrecopy(), 0u);
  EXPECT_EQ(q.dirty_bytes(), 0u);
  q.Sent(0);
  EXPECT_EQ(q.TakePrecopy(), std::nullopt);
}

TEST(SaveQueueTest, DirtyDuringFlightQueuesAgain) {
  SaveQueue q(kSize, 4);
  EXPECT_EQ(q.TakePrecopy(), 0u);
  q.Dirtied(0);  // the version on the wire is stale now
  EXPECT_EQ(q.dirty_bytes(), 0u);
  q.Sent(0);
  EXPECT_EQ(q.dirty_bytes(), kRecord);
  EXPECT_EQ(q.TakePrecopy(), 1u);  // initial blocks still come first
}

TEST(SaveQueueTest, StopCopySendsDirtyAndUnsentOnce) {
  SaveQueue q(kSize, 1);
  EXPECT_EQ(q.TakePrecopy(), 0u);
  q.Sent(0);
  q.Dirtied(0);
  q.Dirtied(2);
  EXPECT_EQ(q.pending_bytes(), 3 * kRecord + kLastRecord);
  std::vector<uint64_t> order;
  while (std::optional<uint64_t> b = q.TakeStopCopy()) {
    order.push_back(*b);
    q.Sent(*b);
  }
  EXPECT_EQ(order, (std::vector<uint64_t>{0, 1, 2, 3}));
  EXPECT_EQ(q.pending_bytes(), 0u);
}

TEST(SaveQueueTest, InitialBlocksAreClamped) {
  SaveQueue q(kBlockSize, 100);
  EXPECT_EQ(q.initial_bytes(), kRecord);
}

}  // namespace
}  // namespace vfiomig::sim
