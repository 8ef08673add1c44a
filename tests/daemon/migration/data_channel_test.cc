// The data channel against a real PeerService: a ready Prepare offers it,
// streams sent over it land in the devices exactly as StreamState calls
// do, and every way a connection can be wrong (token, device, frames, a
// connection that breaks) is refused by name and aborts the migration
// without touching the targets' content.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "daemon/datachannel/sender.h"
#include "daemon/datachannel/socket.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/migration/destination_test_fixture.h"

namespace vfiomig::testing {
namespace {

using ::testing::HasSubstr;

class DataChannelTest : public DestinationTest {
 protected:
  void SetUp() override {
    DestinationTest::SetUp();
    ASSERT_TRUE(service_->EnableDataChannel({"127.0.0.1"}).ok());
  }

  // Prepares gpu0 -> dgpu0 and nic0 -> dnic0; returns the offer.
  v1::DataChannelOffer PrepareWithOffer(const std::string& id, SavedStream* gpu,
                                        SavedStream* nic) {
    *gpu = Save("gpu0", id);
    *nic = Save("nic0", id);
    v1::PrepareResponse response;
    grpc::Status status =
        Prepare(PrepareRequestFor(id, {{"gpu0", "dgpu0"}, {"nic0", "dnic0"}},
                                  {gpu, nic}),
                &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(response.ready()) << response.DebugString();
    return response.data_channel();
  }

  datachannel::Hello HelloFor(const v1::DataChannelOffer& offer,
                              const std::string& id,
                              const std::string& target) {
    datachannel::Hello hello;
    EXPECT_EQ(offer.token().size(), datachannel::kTokenSize);
    std::memcpy(hello.token.data(), offer.token().data(),
                std::min(offer.token().size(), hello.token.size()));
    hello.migration_id = id;
    hello.target_device_id = target;
    return hello;
  }

  absl::StatusOr<std::unique_ptr<FrameTransport>> Connect(
      const v1::DataChannelOffer& offer, const datachannel::Hello& hello) {
    EXPECT_EQ(offer.endpoints_size(), 1);
    if (offer.endpoints_size() != 1) {
      return absl::InternalError("no endpoint");
    }
    return datachannel::OpenDataConnection(
        "127.0.0.1", static_cast<uint16_t>(offer.endpoints(0).port()), hello,
        absl::Seconds(5));
  }

  // Half-closes and waits for the summary.
  static absl::StatusOr<v1::StreamSummary> Finish(FrameTransport& transport) {
    if (absl::Status s = transport.HalfClose(); !s.ok()) return s;
    return transport.AwaitSummary();
  }

  // Sends every frame; the first error ends it.
  static absl::Status SendAll(FrameTransport& transport,
                              const std::vector<std::string>& frames) {
    for (const std::string& frame : frames) {
      absl::Span<uint8_t> buffer = transport.Buffer(frame.size());
      std::memcpy(buffer.data(), frame.data(), frame.size());
      if (absl::Status s = transport.Send(frame.size()); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
};

TEST_F(DataChannelTest, ReadyPrepareOffersTheListener) {
  SavedStream gpu, nic;
  const v1::DataChannelOffer offer = PrepareWithOffer("m-offer", &gpu, &nic);
  ASSERT_EQ(offer.endpoints_size(), 1);
  EXPECT_EQ(offer.endpoints(0).host(), "127.0.0.1");
  EXPECT_EQ(offer.endpoints(0).port(),
            service_->data_channel_endpoints()[0].port);
  EXPECT_EQ(offer.token().size(), datachannel::kTokenSize);
  // Every migration gets its own token.
  const SavedStream nic2 = Save("nic0", "m-offer2");
  v1::PrepareResponse response;
  ASSERT_TRUE(
      Prepare(PrepareRequestFor("m-offer2", {{"nic0", "plain0"}}, {&nic2}),
              &response)
          .ok());
  ASSERT_TRUE(response.ready()) << response.DebugString();
  EXPECT_NE(response.data_channel().token(), offer.token());
}

TEST_F(DataChannelTest, StreamsLandInTheDevicesAndCommit) {
  SavedStream gpu, nic;
  const v1::DataChannelOffer offer = PrepareWithOffer("m-dc", &gpu, &nic);
  for (const auto& [target, saved] :
       {std::pair{"dgpu0", &gpu}, std::pair{"dnic0", &nic}}) {
    absl::StatusOr<std::unique_ptr<FrameTransport>> transport =
        Connect(offer, HelloFor(offer, "m-dc", target));
    ASSERT_TRUE(transport.ok()) << transport.status();
    ASSERT_TRUE(SendAll(**transport, saved->frames).ok());
    absl::StatusOr<v1::StreamSummary> summary = Finish(**transport);
    ASSERT_TRUE(summary.ok()) << summary.status();
    EXPECT_EQ(summary->frames(), saved->frames.size());
  }
  v1::CommitResponse response;
  grpc::Status status = Commit("m-dc", &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(TargetState("dgpu0"), DeviceState::RUNNING);
  EXPECT_EQ(TargetDigest("dgpu0"), gpu.digest);
  EXPECT_EQ(TargetDigest("dnic0"), nic.digest);
}

TEST_F(DataChannelTest, WrongTokenOrDeviceIsRefusedAndHarmless) {
  SavedStream gpu, nic;
  const v1::DataChannelOffer offer = PrepareWithOffer("m-token", &gpu, &nic);
  datachannel::Hello forged = HelloFor(offer, "m-token", "dgpu0");
  forged.token[5] ^= 1;
  absl::StatusOr<std::unique_ptr<FrameTransport>> refused =
      Connect(offer, forged);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("no prepared migration 'm-token' with that token"));

  refused = Connect(offer, HelloFor(offer, "m-token", "small0"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kNotFound);

  // Garbage instead of a hello.
  absl::StatusOr<datachannel::Socket> raw = datachannel::Connect(
      "127.0.0.1", static_cast<uint16_t>(offer.endpoints(0).port()),
      absl::Seconds(5));
  ASSERT_TRUE(raw.ok()) << raw.status();
  const std::string junk(datachannel::kHelloFixedSize, 'G');
  ASSERT_TRUE(
      datachannel::SendAll(
          *raw, absl::MakeConstSpan(
                    reinterpret_cast<const uint8_t*>(junk.data()), junk.size()))
          .ok());
  uint8_t answer[datachannel::kResultFixedSize];
  ASSERT_TRUE(datachannel::RecvAll(*raw, absl::MakeSpan(answer)).ok());
  datachannel::Result result;
  ASSERT_TRUE(datachannel::DecodeResultFixed(answer, &result).ok());
  EXPECT_EQ(result.code, absl::StatusCode::kInvalidArgument);

  // None of it touched the migration: the real streams still work.
  EXPECT_EQ(Record("m-token").outcome(), v1::MIGRATION_OUTCOME_IN_PROGRESS);
  absl::StatusOr<std::unique_ptr<FrameTransport>> good =
      Connect(offer, HelloFor(offer, "m-token", "dnic0"));
  ASSERT_TRUE(good.ok()) << good.status();
  ASSERT_TRUE(SendAll(**good, nic.frames).ok());
  EXPECT_TRUE(Finish(**good).ok());
}

TEST_F(DataChannelTest, BadFrameFailsTheStreamByNameAndAborts) {
  SavedStream gpu, nic;
  const v1::DataChannelOffer offer = PrepareWithOffer("m-bad", &gpu, &nic);
  std::vector<std::string> frames = gpu.frames;
  ASSERT_GE(frames.size(), 3u);
  frames[1][stream::kFrameHeaderSize + 10] ^= 0x20;  // payload byte
  absl::StatusOr<std::unique_ptr<FrameTransport>> transport =
      Connect(offer, HelloFor(offer, "m-bad", "dgpu0"));
  ASSERT_TRUE(transport.ok()) << transport.status();
  absl::Status sent = SendAll(**transport, frames);
  absl::Status status =
      sent.ok() ? Finish(**transport).status() : std::move(sent);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("device dgpu0"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("frame 1"));
  EXPECT_EQ(AwaitFinished("m-bad").outcome(), v1::MIGRATION_OUTCOME_FAILED);
  ExpectTargetsUntouched();
}

TEST_F(DataChannelTest, BrokenConnectionAbortsTheMigration) {
  SavedStream gpu, nic;
  const v1::DataChannelOffer offer = PrepareWithOffer("m-cut", &gpu, &nic);
  {
    absl::StatusOr<std::unique_ptr<FrameTransport>> transport =
        Connect(offer, HelloFor(offer, "m-cut", "dgpu0"));
    ASSERT_TRUE(transport.ok()) << transport.status();
    ASSERT_TRUE(SendAll(**transport, {gpu.frames[0], gpu.frames[1]}).ok());
    (*transport)->Cancel();  // the source vanishes mid-stream
  }
  const v1::Migration record = AwaitFinished("m-cut");
  EXPECT_EQ(record.outcome(), v1::MIGRATION_OUTCOME_FAILED);
  EXPECT_THAT(record.error(), HasSubstr("dgpu0"));
  ExpectTargetsUntouched();
}

TEST_F(DataChannelTest, TokenDiesWithTheMigration) {
  SavedStream gpu, nic;
  const v1::DataChannelOffer offer = PrepareWithOffer("m-gone", &gpu, &nic);
  v1::AbortResponse aborted;
  ASSERT_TRUE(Abort("m-gone", &aborted).ok());
  absl::StatusOr<std::unique_ptr<FrameTransport>> refused =
      Connect(offer, HelloFor(offer, "m-gone", "dgpu0"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(DataChannelTest, StoppingTheServiceBreaksOpenConnections) {
  SavedStream gpu, nic;
  const v1::DataChannelOffer offer = PrepareWithOffer("m-stop", &gpu, &nic);
  absl::StatusOr<std::unique_ptr<FrameTransport>> transport =
      Connect(offer, HelloFor(offer, "m-stop", "dgpu0"));
  ASSERT_TRUE(transport.ok()) << transport.status();
  ASSERT_TRUE(SendAll(**transport, {gpu.frames[0]}).ok());
  StopService();  // must not wait for the idle connection
  EXPECT_FALSE(Finish(**transport).ok());
  ExpectTargetsUntouched();
}

}  // namespace
}  // namespace vfiomig::testing
