// DeviceStream against a scripted PeerService: what it sends is a valid
// stream, a slow destination blocks it (bounded memory), and destination
// errors and cancellation surface as statuses.
#include "daemon/migration/source_stream.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "daemon/migration/source_peer.h"
#include "daemon/stream/reader.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/daemon/migration/source_test_util.h"
#include "vfiomig/v1/peer.grpc.pb.h"

namespace vfiomig {
namespace {

using ::testing::HasSubstr;
using ::vfiomig::testing::SimInventory;
using ::vfiomig::testing::TempDir;

// Checks every frame with the real StreamReader and counts them.
class ScriptedPeer final : public v1::PeerService::Service {
 public:
  // Per-message delay: a slow destination.
  absl::Duration delay = absl::ZeroDuration();
  // Fail the call after this many frames (0: never).
  uint64_t fail_after = 0;
  // Block on the first data frame until the call is cancelled.
  bool hang = false;
  // Lie about the frame count in the summary.
  bool wrong_summary = false;

  std::atomic<uint64_t> frames{0};
  absl::Notification got_data;
  std::string first_migration_id;
  std::string first_target;
  stream::StreamTotals totals;
  bool ended = false;

  grpc::Status StreamState(grpc::ServerContext* context,
                           grpc::ServerReader<v1::StateFrame>* reader,
                           v1::StreamSummary* summary) override {
    stream::StreamReader decoder(std::numeric_limits<uint64_t>::max());
    v1::StateFrame message;
    while (reader->Read(&message)) {
      if (frames.load() == 0) {
        first_migration_id = message.migration_id();
        first_target = message.target_device_id();
      }
      absl::StatusOr<stream::StreamEvent> event =
          decoder.Consume(message.frame());
      if (!event.ok()) {
        return grpc::Status(grpc::StatusCode::DATA_LOSS,
                            std::string(event.status().message()));
      }
      const uint64_t n = ++frames;
      if (n == 2) got_data.Notify();
      if (hang && n == 2) {
        while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
        return grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
      }
      if (fail_after != 0 && n >= fail_after) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "bad frame, refused");
      }
      if (delay > absl::ZeroDuration()) absl::SleepFor(delay);
    }
    if (absl::Status s = decoder.Finish(); !s.ok()) {
      return grpc::Status(grpc::StatusCode::DATA_LOSS,
                          std::string(s.message()));
    }
    ended = decoder.ended();
    totals = decoder.totals();
    summary->set_target_device_id(first_target);
    summary->set_frames(decoder.next_sequence() + (wrong_summary ? 1 : 0));
    summary->set_pre_copy_bytes(totals.pre_copy_bytes);
    summary->set_stop_copy_bytes(totals.stop_copy_bytes);
    return grpc::Status::OK;
  }
};

constexpr char kDevices[] = R"json({"devices": [
  {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "8MiB"},
  {"id": "big0", "features": ["stop_copy"], "state_bytes": "48MiB"}
]})json";

class SourceStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    inventory_ = SimInventory(dir_, "sim.json", kDevices);
    ASSERT_NE(inventory_, nullptr);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.SetMaxReceiveMessageSize(16 << 20);
    // The daemon's flow control (daemon/server.cc): a fixed 4 MiB window per
    // stream. gRPC's default bandwidth-delay probing grows the window when
    // the machine is slow to answer pings, so under load the sender could
    // get further ahead than the window this test bounds.
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 4 << 20);
    builder.RegisterService(&peer_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    client_ = PeerClient::Connect("127.0.0.1:" + std::to_string(port),
                                  grpc::InsecureChannelCredentials());
  }
  void TearDown() override {
    stream_.reset();
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::seconds(2));
  }

  std::shared_ptr<Device> Find(const std::string& id) {
    return *inventory_->Find(id);
  }

  // A stream for `device`, opened.
  void Open(const std::string& device) {
    stream::StreamHeader header;
    header.source_host = "source-host";
    header.migration_id = "m-1";
    header.device.device_id = device;
    header.stop_copy_bytes = *Find(device)->StopCopySize();
    stream_ =
        std::make_unique<DeviceStream>("m-1", device, device + "-dst", header);
    ASSERT_TRUE(stream_->Open(client_->stub()).ok());
  }

  // Puts a non-P2P device into STOP_COPY and returns its session.
  std::unique_ptr<DataSession> StopCopySession(const std::string& id) {
    std::shared_ptr<Device> device = Find(id);
    EXPECT_TRUE(device->SetState(DeviceState::STOP).ok());
    absl::StatusOr<std::unique_ptr<DataSession>> session =
        device->SetState(DeviceState::STOP_COPY);
    EXPECT_TRUE(session.ok()) << session.status();
    return session.ok() ? *std::move(session) : nullptr;
  }

  TempDir dir_;
  std::unique_ptr<Inventory> inventory_;
  ScriptedPeer peer_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<PeerClient> client_;
  std::unique_ptr<DeviceStream> stream_;
  std::atomic<bool> stop_{false};
};

TEST_F(SourceStreamTest, SendsAValidStreamThroughPrecopyAndStopCopy) {
  std::shared_ptr<Device> gpu = Find("gpu0");
  absl::StatusOr<std::unique_ptr<DataSession>> session =
      gpu->SetState(DeviceState::PRE_COPY);
  ASSERT_TRUE(session.ok()) << session.status();
  Open("gpu0");
  uint64_t reported = 0;
  absl::StatusOr<PumpResult> pre =
      stream_->Pump(**session, stream::Section::kPreCopy,
                    std::numeric_limits<uint64_t>::max(), stop_,
                    [&](uint64_t n) { reported += n; });
  ASSERT_TRUE(pre.ok()) << pre.status();
  EXPECT_TRUE(pre->drained);
  EXPECT_GT(pre->bytes, uint64_t{8} << 20);
  EXPECT_EQ(reported, pre->bytes);
  // PRE_COPY_P2P -> STOP_COPY keeps the session.
  ASSERT_TRUE(gpu->SetState(DeviceState::PRE_COPY_P2P).ok());
  absl::StatusOr<std::unique_ptr<DataSession>> none =
      gpu->SetState(DeviceState::STOP_COPY);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, nullptr);
  absl::StatusOr<PumpResult> stop =
      stream_->Pump(**session, stream::Section::kStopCopy,
                    std::numeric_limits<uint64_t>::max(), stop_, nullptr);
  ASSERT_TRUE(stop.ok()) << stop.status();
  EXPECT_TRUE(stop->drained);
  EXPECT_GT(stop->bytes, 0u);
  absl::StatusOr<v1::StreamSummary> summary = stream_->Finish();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->pre_copy_bytes(), pre->bytes);
  EXPECT_EQ(summary->stop_copy_bytes(), stop->bytes);
  EXPECT_TRUE(peer_.ended);
  EXPECT_EQ(peer_.first_migration_id, "m-1");
  EXPECT_EQ(peer_.first_target, "gpu0-dst");
  EXPECT_EQ(peer_.totals, stream_->totals());
}

TEST_F(SourceStreamTest, BudgetEndsAPrecopyPumpEarly) {
  std::shared_ptr<Device> gpu = Find("gpu0");
  absl::StatusOr<std::unique_ptr<DataSession>> session =
      gpu->SetState(DeviceState::PRE_COPY);
  ASSERT_TRUE(session.ok());
  Open("gpu0");
  absl::StatusOr<PumpResult> pre =
      stream_->Pump(**session, stream::Section::kPreCopy, 1, stop_, nullptr);
  ASSERT_TRUE(pre.ok()) << pre.status();
  EXPECT_FALSE(pre->drained);
  // One frame at most.
  EXPECT_LE(pre->bytes, kFramePayload);
  EXPECT_GT(pre->bytes, 0u);
}

TEST_F(SourceStreamTest, FramesGrowFromASmallFirstOneToFullSize) {
  std::unique_ptr<DataSession> session = StopCopySession("big0");
  ASSERT_NE(session, nullptr);
  Open("big0");
  std::vector<uint64_t> sizes;
  absl::StatusOr<PumpResult> result =
      stream_->Pump(*session, stream::Section::kStopCopy,
                    std::numeric_limits<uint64_t>::max(), stop_,
                    [&](uint64_t n) { sizes.push_back(n); });
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(stream_->Finish().ok());
  // A small device never touches a whole frame buffer; a large one soon
  // sends whole frames.
  ASSERT_GT(sizes.size(), 8u);
  EXPECT_EQ(sizes[0], kFirstFramePayload);
  EXPECT_EQ(sizes[1], 2 * kFirstFramePayload);
  EXPECT_EQ(sizes[sizes.size() / 2], kFramePayload);
  EXPECT_LE(*std::max_element(sizes.begin(), sizes.end()), kFramePayload);
}

TEST_F(SourceStreamTest, FinishesInTwoHalves) {
  std::unique_ptr<DataSession> session = StopCopySession("big0");
  ASSERT_NE(session, nullptr);
  Open("big0");
  EXPECT_EQ(stream_->AwaitSummary().status().code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<PumpResult> pumped =
      stream_->Pump(*session, stream::Section::kStopCopy,
                    std::numeric_limits<uint64_t>::max(), stop_, nullptr);
  ASSERT_TRUE(pumped.ok()) << pumped.status();
  ASSERT_TRUE(stream_->SendEnd().ok());
  EXPECT_EQ(stream_->SendEnd().code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<v1::StreamSummary> summary = stream_->AwaitSummary();
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->stop_copy_bytes(), pumped->bytes);
  EXPECT_TRUE(peer_.ended);
  EXPECT_EQ(stream_->AwaitSummary().status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(SourceStreamTest, SlowDestinationBlocksTheSender) {
  peer_.delay = absl::Milliseconds(3);
  std::unique_ptr<DataSession> session = StopCopySession("big0");
  ASSERT_NE(session, nullptr);
  Open("big0");
  uint64_t sent_frames = 1;  // the header
  uint64_t max_ahead = 0;
  absl::StatusOr<PumpResult> result = stream_->Pump(
      *session, stream::Section::kStopCopy,
      std::numeric_limits<uint64_t>::max(), stop_, [&](uint64_t) {
        ++sent_frames;
        max_ahead = std::max(max_ahead, sent_frames - peer_.frames.load());
      });
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(stream_->Finish().ok());
  // 48 MiB went out, but never more than a flow-control window's worth of
  // it ahead of the destination: the sender waited, it did not buffer.
  std::printf("frames ahead of the destination at most: %llu\n",
              static_cast<unsigned long long>(max_ahead));
  EXPECT_LE(max_ahead, 24u);
}

TEST_F(SourceStreamTest, DestinationRefusalSurfacesWithItsCode) {
  peer_.fail_after = 3;
  std::unique_ptr<DataSession> session = StopCopySession("big0");
  ASSERT_NE(session, nullptr);
  Open("big0");
  absl::StatusOr<PumpResult> result =
      stream_->Pump(*session, stream::Section::kStopCopy,
                    std::numeric_limits<uint64_t>::max(), stop_, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("bad frame"));
  EXPECT_THAT(result.status().message(), HasSubstr("big0"));
}

TEST_F(SourceStreamTest, CancelUnblocksAStuckPump) {
  peer_.hang = true;
  std::unique_ptr<DataSession> session = StopCopySession("big0");
  ASSERT_NE(session, nullptr);
  Open("big0");
  absl::StatusOr<PumpResult> result = PumpResult{};
  std::thread pump([&] {
    result =
        stream_->Pump(*session, stream::Section::kStopCopy,
                      std::numeric_limits<uint64_t>::max(), stop_, nullptr);
  });
  ASSERT_TRUE(peer_.got_data.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::SleepFor(absl::Milliseconds(100));
  const absl::Time start = absl::Now();
  stream_->Cancel();
  pump.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kCancelled);
}

TEST_F(SourceStreamTest, StopFlagEndsAPump) {
  std::unique_ptr<DataSession> session = StopCopySession("big0");
  ASSERT_NE(session, nullptr);
  Open("big0");
  stop_.store(true);
  absl::StatusOr<PumpResult> result =
      stream_->Pump(*session, stream::Section::kStopCopy,
                    std::numeric_limits<uint64_t>::max(), stop_, nullptr);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kAborted);
}

TEST_F(SourceStreamTest, SummaryMismatchIsDataLoss) {
  peer_.wrong_summary = true;
  std::unique_ptr<DataSession> session = StopCopySession("big0");
  ASSERT_NE(session, nullptr);
  Open("big0");
  ASSERT_TRUE(stream_
                  ->Pump(*session, stream::Section::kStopCopy,
                         std::numeric_limits<uint64_t>::max(), stop_, nullptr)
                  .ok());
  absl::StatusOr<v1::StreamSummary> summary = stream_->Finish();
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(summary.status().message(), HasSubstr("big0"));
}

}  // namespace
}  // namespace vfiomig
