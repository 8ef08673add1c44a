// The destination side under test: a PeerService on a real gRPC server (a
// unix socket in a temp dir, through daemon/server.h as the daemon runs
// it), over a sim destination inventory; and a sim source inventory whose
// devices the tests save by hand (RUNNING -> ... -> STOP_COPY) and frame
// with stream::StreamWriter, as a source daemon would.
#ifndef VFIOMIG_TESTS_DAEMON_MIGRATION_DESTINATION_TEST_FIXTURE_H_
#define VFIOMIG_TESTS_DAEMON_MIGRATION_DESTINATION_TEST_FIXTURE_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "daemon/core/fsm.h"
#include "daemon/inventory.h"
#include "daemon/migration/destination_options.h"
#include "daemon/migration/device_identity.h"
#include "daemon/migration/device_leases.h"
#include "daemon/peer_service.h"
#include "daemon/server.h"
#include "daemon/stream/header.h"
#include "daemon/stream/reader.h"
#include "daemon/stream/writer.h"
#include "grpc/grpc.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "plugins/registry.h"
#include "tests/daemon/migration/sim_inventory.h"
#include "tests/daemon/temp_dir.h"
#include "vfiomig/v1/peer.grpc.pb.h"

namespace vfiomig::testing {

// Source devices: a 10 MiB pre-copy GPU (its state needs full 8 MiB
// frames) and a 1 MiB NIC without pre-copy.
inline constexpr char kSourceConfig[] = R"json({
  "devices": [
    {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
     "state_bytes": "10MiB"},
    {"id": "nic0", "features": ["stop_copy", "p2p"], "state_bytes": "1MiB"}
  ]
})json";

// Destination devices: matching targets, one too small, one lacking
// pre-copy, one whose driver refuses RESUMING -> STOP.
inline constexpr char kDestinationConfig[] = R"json({
  "devices": [
    {"id": "dgpu0", "features": ["stop_copy", "p2p", "pre_copy"],
     "state_bytes": "10MiB"},
    {"id": "dnic0", "features": ["stop_copy", "p2p"], "state_bytes": "1MiB"},
    {"id": "small0", "features": ["stop_copy", "p2p", "pre_copy"],
     "state_bytes": "1MiB"},
    {"id": "plain0", "features": ["stop_copy", "p2p"],
     "state_bytes": "10MiB"},
    {"id": "stuck0", "features": ["stop_copy", "p2p"], "state_bytes": "1MiB",
     "fail_arcs": ["RESUMING>STOP"]},
    {"id": "slowback0", "features": ["stop_copy", "p2p"],
     "state_bytes": "1MiB",
     "fail_arcs": ["STOP>RESUMING"], "slow_arcs": {"STOP>RUNNING_P2P": 300}}
  ]
})json";

inline constexpr char kSourceHost[] = "src-host";

// One source device's saved state, framed.
struct SavedStream {
  stream::StreamHeader header;
  // One frame per element, HEADER first and END last.
  std::vector<std::string> frames;
  // The source device's content digest once stopped.
  std::string digest;
};

class DestinationTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // (Re)starts the service with options_; call after changing options_.
  void StartService();
  void StopService();

  // Saves source device `id` (pre-copy when it has it, then stop-copy) for
  // `migration_id`.
  SavedStream Save(const std::string& source_id,
                   const std::string& migration_id);

  // A Prepare request for pairs of (source id, target id), with the
  // streams' headers.
  v1::PrepareRequest PrepareRequestFor(
      const std::string& migration_id,
      const std::vector<std::pair<std::string, std::string>>& pairs,
      const std::vector<const SavedStream*>& streams);

  grpc::Status Prepare(const v1::PrepareRequest& request,
                       v1::PrepareResponse* response);
  // Sends `frames` as one StreamState call; the first message carries the
  // ids. Stops writing when the server ends the call.
  grpc::Status Stream(const std::string& migration_id,
                      const std::string& target,
                      const std::vector<std::string>& frames,
                      v1::StreamSummary* summary = nullptr);
  grpc::Status Commit(const std::string& migration_id,
                      v1::CommitResponse* response);
  grpc::Status Abort(const std::string& migration_id,
                     v1::AbortResponse* response);

  // A destination device's current state / digest.
  DeviceState TargetState(const std::string& id);
  std::string TargetDigest(const std::string& id);
  // The registry's record of an incoming migration.
  v1::Migration Record(const std::string& migration_id);
  // Waits (up to 10 s) until the migration has finished.
  v1::Migration AwaitFinished(const std::string& migration_id);

  // Happy-path helpers: prepares gpu0 -> dgpu0 and nic0 -> dnic0.
  void PrepareTwo(const std::string& migration_id, SavedStream* gpu,
                  SavedStream* nic);
  // Every destination device RUNNING, with its original content.
  void ExpectTargetsUntouched();
  // Every destination device RUNNING and free (content not compared: a
  // device whose complete stream was accepted keeps it after a rollback).
  void ExpectTargetsRunning();
  // Sends `frames` on a new StreamState call that stays open, and waits
  // until the destination has consumed them.
  std::unique_ptr<grpc::ClientWriter<v1::StateFrame>> OpenStream(
      grpc::ClientContext* context, v1::StreamSummary* summary,
      const std::string& migration_id, const std::string& target,
      const std::vector<std::string>& frames);

  TempDir tmp_;
  DestinationOptions options_;
  std::unique_ptr<Inventory> source_;
  std::unique_ptr<Inventory> destination_;
  DeviceLeases leases_;
  std::unique_ptr<PeerService> service_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<v1::PeerService::Stub> stub_;
  // Destination digests at SetUp.
  std::map<std::string, std::string> original_digests_;
};

inline v1::StreamHeader HeaderToProto(const stream::StreamHeader& header) {
  absl::StatusOr<std::string> payload = stream::EncodeHeaderPayload(header);
  v1::StreamHeader proto;
  EXPECT_TRUE(payload.ok()) << payload.status();
  if (payload.ok()) {
    EXPECT_TRUE(proto.ParseFromString(*payload));
  }
  return proto;
}

inline void DestinationTest::SetUp() {
  // Keeps gRPC initialised for the whole test binary: when the last server
  // or channel goes, grpc_shutdown() may wait up to 10 s for an internal
  // timer (gRPC 1.51), which would slow some tests down at random.
  static const bool grpc_initialised = (grpc_init(), true);
  (void)grpc_initialised;
  source_ = SimInventory(tmp_, "source.json", kSourceConfig);
  destination_ = SimInventory(tmp_, "destination.json", kDestinationConfig);
  ASSERT_NE(source_, nullptr);
  ASSERT_NE(destination_, nullptr);
  for (const std::shared_ptr<Device>& d : destination_->devices()) {
    original_digests_[d->info().id] = TargetDigest(d->info().id);
  }
  options_.abort_timeout = absl::Seconds(30);
  StartService();
}

inline void DestinationTest::TearDown() { StopService(); }

inline void DestinationTest::StartService() {
  StopService();
  service_ =
      std::make_unique<PeerService>(destination_.get(), &leases_, options_);
  const std::string target = "unix:" + (tmp_.path() / "peer.sock").native();
  const HostedService services[] = {
      {v1::PeerService::service_full_name(), service_.get()}};
  absl::StatusOr<std::unique_ptr<Server>> server =
      Server::Start({target}, services);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = *std::move(server);
  stub_ = v1::PeerService::NewStub(grpc::CreateChannel(
      server_->endpoints()[0], grpc::InsecureChannelCredentials()));
}

inline void DestinationTest::StopService() {
  stub_.reset();
  if (server_ != nullptr) server_->Shutdown(absl::Seconds(1));
  server_.reset();
  service_.reset();
}

inline SavedStream DestinationTest::Save(const std::string& source_id,
                                         const std::string& migration_id) {
  SavedStream saved;
  absl::StatusOr<std::shared_ptr<Device>> found = source_->Find(source_id);
  EXPECT_TRUE(found.ok()) << found.status();
  if (!found.ok()) return saved;
  Device& device = **found;
  const MigrationFeatures features = device.info().features;

  saved.header.source_host = kSourceHost;
  saved.header.migration_id = migration_id;
  saved.header.device = DeviceIdentityOf(device.info());
  absl::StatusOr<uint64_t> size = device.StopCopySize();
  EXPECT_TRUE(size.ok());
  saved.header.stop_copy_bytes = size.ok() ? *size : 0;

  stream::StreamWriter writer;
  std::string buffer;
  EXPECT_TRUE(writer.AddHeader(saved.header, &buffer).ok());
  // Larger than a frame, so that full 8 MiB frames occur.
  std::vector<uint8_t> chunk(size_t{16} << 20);
  std::unique_ptr<DataSession> session;
  // Reads the session dry (for now, in pre-copy) into `section`.
  auto drain = [&](stream::Section section) {
    while (true) {
      absl::StatusOr<size_t> n = session->Read(absl::MakeSpan(chunk));
      EXPECT_TRUE(n.ok()) << n.status();
      if (!n.ok() || *n == 0) return;
      EXPECT_TRUE(writer
                      .AddData(section, absl::MakeConstSpan(chunk.data(), *n),
                               stream::ZeroCheck::kDetect, &buffer)
                      .ok());
    }
  };
  DeviceState state = DeviceState::RUNNING;
  auto step = [&](DeviceState to) {
    absl::StatusOr<std::unique_ptr<DataSession>> opened = device.SetState(to);
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (opened.ok() && *opened != nullptr) session = *std::move(opened);
    state = to;
  };
  if (features.pre_copy()) {
    step(DeviceState::PRE_COPY);
    drain(stream::Section::kPreCopy);
  }
  while (state != DeviceState::STOP_COPY) {
    absl::StatusOr<DeviceState> next =
        NextState(features, state, DeviceState::STOP_COPY);
    EXPECT_TRUE(next.ok());
    if (!next.ok()) return saved;
    step(*next);
  }
  drain(stream::Section::kStopCopy);
  EXPECT_TRUE(writer.AddEnd(&buffer).ok());
  step(DeviceState::STOP);
  absl::StatusOr<std::string> digest = device.ContentDigest();
  EXPECT_TRUE(digest.ok());
  saved.digest = digest.ok() ? *digest : "";

  absl::StatusOr<std::vector<std::string_view>> frames =
      stream::SplitFrames(buffer, 1 << 20);
  EXPECT_TRUE(frames.ok()) << frames.status();
  if (frames.ok()) {
    for (std::string_view f : *frames) saved.frames.emplace_back(f);
  }
  return saved;
}

inline v1::PrepareRequest DestinationTest::PrepareRequestFor(
    const std::string& migration_id,
    const std::vector<std::pair<std::string, std::string>>& pairs,
    const std::vector<const SavedStream*>& streams) {
  v1::PrepareRequest request;
  request.set_migration_id(migration_id);
  request.set_source_host(kSourceHost);
  request.set_policy(v1::DEADLINE_POLICY_SLA);
  for (size_t i = 0; i < pairs.size(); ++i) {
    v1::PeerDevice& d = *request.add_devices();
    d.set_source_device_id(pairs[i].first);
    d.set_target_device_id(pairs[i].second);
    *d.mutable_header() = HeaderToProto(streams[i]->header);
  }
  return request;
}

inline grpc::Status DestinationTest::Prepare(const v1::PrepareRequest& request,
                                             v1::PrepareResponse* response) {
  grpc::ClientContext context;
  return stub_->Prepare(&context, request, response);
}

inline grpc::Status DestinationTest::Stream(
    const std::string& migration_id, const std::string& target,
    const std::vector<std::string>& frames, v1::StreamSummary* summary) {
  v1::StreamSummary ignored;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientWriter<v1::StateFrame>> writer =
      stub_->StreamState(&context, summary ? summary : &ignored);
  for (size_t i = 0; i < frames.size(); ++i) {
    v1::StateFrame message;
    if (i == 0) {
      message.set_migration_id(migration_id);
      message.set_target_device_id(target);
    }
    message.set_frame(frames[i]);
    if (!writer->Write(message)) break;
  }
  writer->WritesDone();
  return writer->Finish();
}

inline grpc::Status DestinationTest::Commit(const std::string& migration_id,
                                            v1::CommitResponse* response) {
  v1::CommitRequest request;
  request.set_migration_id(migration_id);
  grpc::ClientContext context;
  return stub_->Commit(&context, request, response);
}

inline grpc::Status DestinationTest::Abort(const std::string& migration_id,
                                           v1::AbortResponse* response) {
  v1::AbortRequest request;
  request.set_migration_id(migration_id);
  request.set_reason("test");
  grpc::ClientContext context;
  return stub_->Abort(&context, request, response);
}

inline DeviceState DestinationTest::TargetState(const std::string& id) {
  absl::StatusOr<std::shared_ptr<Device>> d = destination_->Find(id);
  if (!d.ok()) return DeviceState::ERROR;
  absl::StatusOr<DeviceState> state = (*d)->GetState();
  return state.ok() ? *state : DeviceState::ERROR;
}

inline std::string DestinationTest::TargetDigest(const std::string& id) {
  absl::StatusOr<std::shared_ptr<Device>> d = destination_->Find(id);
  if (!d.ok()) return "";
  absl::StatusOr<std::string> digest = (*d)->ContentDigest();
  return digest.ok() ? *digest : std::string(digest.status().message());
}

inline v1::Migration DestinationTest::Record(const std::string& migration_id) {
  absl::StatusOr<v1::Migration> m = service_->GetMigration(migration_id);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? *m : v1::Migration();
}

inline v1::Migration DestinationTest::AwaitFinished(
    const std::string& migration_id) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  v1::Migration m;
  do {
    m = Record(migration_id);
    if (m.phase() == v1::MIGRATION_PHASE_DONE) return m;
    absl::SleepFor(absl::Milliseconds(10));
  } while (absl::Now() < deadline);
  ADD_FAILURE() << "migration " << migration_id << " did not finish";
  return m;
}

inline void DestinationTest::PrepareTwo(const std::string& migration_id,
                                        SavedStream* gpu, SavedStream* nic) {
  *gpu = Save("gpu0", migration_id);
  *nic = Save("nic0", migration_id);
  v1::PrepareResponse response;
  grpc::Status status = Prepare(
      PrepareRequestFor(migration_id, {{"gpu0", "dgpu0"}, {"nic0", "dnic0"}},
                        {gpu, nic}),
      &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_TRUE(response.ready()) << response.DebugString();
  EXPECT_EQ(TargetState("dgpu0"), DeviceState::RESUMING);
  EXPECT_EQ(TargetState("dnic0"), DeviceState::RESUMING);
}

inline std::unique_ptr<grpc::ClientWriter<v1::StateFrame>>
DestinationTest::OpenStream(grpc::ClientContext* context,
                            v1::StreamSummary* summary,
                            const std::string& migration_id,
                            const std::string& target,
                            const std::vector<std::string>& frames) {
  std::unique_ptr<grpc::ClientWriter<v1::StateFrame>> writer =
      stub_->StreamState(context, summary);
  uint64_t bytes = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    v1::StateFrame message;
    if (i == 0) {
      message.set_migration_id(migration_id);
      message.set_target_device_id(target);
    }
    message.set_frame(frames[i]);
    EXPECT_TRUE(writer->Write(message));
    bytes += frames[i].size() - stream::kFrameHeaderSize;
  }
  // Data frames carry their payload as device bytes (no zero runs in sim
  // content); the header frame's payload is not device data.
  bytes -= frames.empty() ? 0 : frames[0].size() - stream::kFrameHeaderSize;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::Now() < deadline) {
    const v1::Migration record = Record(migration_id);
    for (const v1::MigrationDevice& d : record.devices()) {
      if (d.target_device_id() == target && d.bytes_sent() >= bytes) {
        return writer;
      }
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  ADD_FAILURE() << "the destination did not consume the frames";
  return writer;
}

inline void DestinationTest::ExpectTargetsRunning() {
  for (const auto& [id, digest] : original_digests_) {
    EXPECT_EQ(TargetState(id), DeviceState::RUNNING) << id;
    EXPECT_FALSE(leases_.Owner(id).has_value()) << id;
  }
}

inline void DestinationTest::ExpectTargetsUntouched() {
  for (const auto& [id, digest] : original_digests_) {
    EXPECT_EQ(TargetState(id), DeviceState::RUNNING) << id;
    EXPECT_EQ(TargetDigest(id), digest) << id;
    EXPECT_FALSE(leases_.Owner(id).has_value()) << id;
  }
}

}  // namespace vfiomig::testing

#endif  // VFIOMIG_TESTS_DAEMON_MIGRATION_DESTINATION_TEST_FIXTURE_H_
