// ControlService called in-process over gRPC, on sim devices created through
// the backend registry exactly as the daemon creates them.
#include "daemon/control_service.h"

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "daemon/core/fsm.h"
#include "daemon/core/planner.h"
#include "daemon/inventory.h"
#include "daemon/migration/device_leases.h"
#include "daemon/migration/migration_manager.h"
#include "daemon/peer_service.h"
#include "daemon/proto_convert.h"
#include "daemon/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugins/registry.h"
#include "tests/daemon/temp_dir.h"
#include "vfiomig/v1/control.grpc.pb.h"

namespace vfiomig {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::vfiomig::testing::TempDir;

// Plaintext TCP to the in-process destination on 127.0.0.1.
MigrationOptions PlaintextMigrationOptions() {
  MigrationOptions options;
  options.transport = TransportSecurity::Plaintext();
  return options;
}

constexpr char kSimConfig[] = R"json({
  "devices": [
    {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
     "state_bytes": "2MiB"},
    {"id": "gpu1", "features": ["stop_copy", "p2p", "pre_copy"],
     "state_bytes": "3MiB"},
    {"id": "nic0", "features": ["stop_copy", "p2p"], "state_bytes": "1MiB"},
    {"id": "accel0", "features": ["stop_copy"], "state_bytes": "1MiB"}
  ]
})json";

class ControlServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { StartWith({}); }

  void StartWith(const std::vector<std::string>& filter) {
    BackendOptions options;
    options.sim_config_path = tmp_.WriteFile("sim.json", kSimConfig);
    options.device_filter = filter;
    absl::StatusOr<std::unique_ptr<DeviceBackend>> backend =
        BackendRegistry::Create("sim", options);
    ASSERT_TRUE(backend.ok()) << backend.status();
    absl::StatusOr<std::unique_ptr<Inventory>> inventory =
        Inventory::Create(*std::move(backend), filter);
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    if (server_ != nullptr) server_->Shutdown();
    inventory_ = *std::move(inventory);
    service_ = std::make_unique<ControlService>(inventory_.get());
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::ControlService::NewStub(
        server_->InProcessChannel(grpc::ChannelArguments()));
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  grpc::Status Plan(const std::vector<std::string>& ids, bool allow_no_p2p,
                    v1::MigrationPlan* plan) {
    v1::PlanMigrationRequest request;
    for (const std::string& id : ids) request.add_device_ids(id);
    request.mutable_options()->set_allow_no_p2p(allow_no_p2p);
    grpc::ClientContext context;
    return stub_->PlanMigration(&context, request, plan);
  }

  grpc::Status Get(const std::string& id, v1::Device* device) {
    v1::GetDeviceRequest request;
    request.set_id(id);
    grpc::ClientContext context;
    return stub_->GetDevice(&context, request, device);
  }

  TempDir tmp_;
  std::unique_ptr<Inventory> inventory_;
  std::unique_ptr<ControlService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::ControlService::Stub> stub_;
};

std::string Phase(WavePhase phase) { return std::string(WavePhaseName(phase)); }

// Index of the first wave with an arc satisfying `pred`, or waves.size().
template <typename Pred>
int FirstWave(const google::protobuf::RepeatedPtrField<v1::Wave>& waves,
              Pred pred) {
  for (int i = 0; i < waves.size(); ++i) {
    for (const v1::Arc& arc : waves[i].arcs()) {
      if (pred(arc)) return i;
    }
  }
  return waves.size();
}

// Index of the last wave with an arc satisfying `pred`, or -1.
template <typename Pred>
int LastWave(const google::protobuf::RepeatedPtrField<v1::Wave>& waves,
             Pred pred) {
  for (int i = waves.size() - 1; i >= 0; --i) {
    for (const v1::Arc& arc : waves[i].arcs()) {
      if (pred(arc)) return i;
    }
  }
  return -1;
}

bool IsP2pState(v1::DeviceState s) {
  return s == v1::DEVICE_STATE_RUNNING_P2P ||
         s == v1::DEVICE_STATE_PRE_COPY_P2P;
}

TEST_F(ControlServiceTest, ListDevicesShowsEveryDeviceInConfigOrder) {
  grpc::ClientContext context;
  v1::ListDevicesResponse response;
  ASSERT_TRUE(stub_->ListDevices(&context, {}, &response).ok());
  std::vector<std::string> ids;
  for (const v1::Device& d : response.devices()) ids.push_back(d.id());
  EXPECT_THAT(ids, ElementsAre("gpu0", "gpu1", "nic0", "accel0"));

  const v1::Device& gpu0 = response.devices(0);
  EXPECT_EQ(gpu0.backend(), "sim");
  EXPECT_FALSE(gpu0.driver().empty());
  EXPECT_THAT(gpu0.features(), ElementsAre(v1::MIGRATION_FEATURE_STOP_COPY,
                                           v1::MIGRATION_FEATURE_P2P,
                                           v1::MIGRATION_FEATURE_PRE_COPY));
  EXPECT_EQ(gpu0.migration_flags(), 7u);
  EXPECT_EQ(gpu0.state(), v1::DEVICE_STATE_RUNNING);
  EXPECT_EQ(gpu0.state_name(), "RUNNING");
  EXPECT_TRUE(gpu0.migratable());
  EXPECT_TRUE(gpu0.has_stop_copy_bytes());
  // Listing never reads device content.
  EXPECT_FALSE(gpu0.has_digest());
  EXPECT_THAT(response.devices(3).features(),
              ElementsAre(v1::MIGRATION_FEATURE_STOP_COPY));
  EXPECT_EQ(response.devices(3).migration_flags(), 1u);
}

TEST_F(ControlServiceTest, GetDeviceCarriesTheSimContentDigest) {
  v1::Device gpu0;
  ASSERT_TRUE(Get("gpu0", &gpu0).ok());
  EXPECT_EQ(gpu0.id(), "gpu0");
  EXPECT_EQ(gpu0.state(), v1::DEVICE_STATE_RUNNING);
  ASSERT_TRUE(gpu0.has_digest());
  EXPECT_FALSE(gpu0.digest().empty());
  EXPECT_TRUE(gpu0.has_stop_copy_bytes());

  v1::Device again;
  ASSERT_TRUE(Get("gpu0", &again).ok());
  EXPECT_EQ(again.digest(), gpu0.digest()) << "no dirtying configured";
  v1::Device gpu1;
  ASSERT_TRUE(Get("gpu1", &gpu1).ok());
  EXPECT_NE(gpu1.digest(), gpu0.digest());
}

TEST_F(ControlServiceTest, GetDeviceUnknownIsNotFoundNamingTheId) {
  v1::Device device;
  grpc::Status status = Get("gpu9", &device);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("'gpu9'"));
}

TEST_F(ControlServiceTest, GetDeviceRejectsMalformedIds) {
  v1::Device device;
  EXPECT_EQ(Get("", &device).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Get(std::string(kMaxDeviceIdLength + 1, 'a'), &device).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Get("gpu0\nFAKE LOG LINE", &device).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ControlServiceTest, PlansAGroupOfP2pDevicesWithTheBarriers) {
  v1::MigrationPlan plan;
  ASSERT_TRUE(Plan({"gpu0", "gpu1", "nic0"}, false, &plan).ok());
  EXPECT_TRUE(plan.migratable());
  EXPECT_EQ(plan.blockers_size(), 0);
  EXPECT_EQ(plan.warnings_size(), 0);
  ASSERT_GT(plan.source_waves_size(), 0);
  ASSERT_GT(plan.destination_waves_size(), 0);

  // Wave names are the planner's; pre-copy devices start with pre-copy.
  EXPECT_EQ(plan.source_waves(0).phase(), Phase(WavePhase::kPreCopy));
  for (const auto* waves : {&plan.source_waves(), &plan.destination_waves()}) {
    for (const v1::Wave& wave : *waves) {
      EXPECT_FALSE(wave.phase().empty());
      EXPECT_FALSE(wave.description().empty());
      EXPECT_GT(wave.arcs_size(), 0) << wave.phase();
    }
  }

  // Source: every device in a P2P state before any device stops.
  const int last_quiesce = LastWave(
      plan.source_waves(), [](const v1::Arc& a) { return IsP2pState(a.to()); });
  const int first_stop = FirstWave(plan.source_waves(), [](const v1::Arc& a) {
    return a.to() == v1::DEVICE_STATE_STOP ||
           a.to() == v1::DEVICE_STATE_STOP_COPY;
  });
  EXPECT_GE(last_quiesce, 0);
  EXPECT_LT(last_quiesce, first_stop);
  // Destination: every device back in RUNNING_P2P before any runs.
  const int last_restore =
      LastWave(plan.destination_waves(), [](const v1::Arc& a) {
        return a.to() == v1::DEVICE_STATE_RUNNING_P2P &&
               a.from() == v1::DEVICE_STATE_STOP;
      });
  const int first_run = FirstWave(
      plan.destination_waves(),
      [](const v1::Arc& a) { return a.to() == v1::DEVICE_STATE_RUNNING; });
  EXPECT_GE(last_restore, 0);
  EXPECT_LT(last_restore, first_run);

  // Drain arcs are flagged; each arc is one the kernel takes.
  const MigrationFeatures all(kKnownMigrationFlags);
  const MigrationFeatures no_pre_copy(VFIO_MIGRATION_STOP_COPY |
                                      VFIO_MIGRATION_P2P);
  for (const v1::Wave& wave : plan.source_waves()) {
    for (const v1::Arc& arc : wave.arcs()) {
      const DeviceState from = *DeviceStateFromProto(arc.from());
      const DeviceState to = *DeviceStateFromProto(arc.to());
      EXPECT_EQ(arc.drain(), IsDrainArc(from, to));
      EXPECT_TRUE(
          IsSingleArc(arc.device_id() == "nic0" ? no_pre_copy : all, from, to))
          << arc.device_id() << " " << ArcName(from, to);
    }
  }

  // Per-device paths, in request order.
  ASSERT_EQ(plan.devices_size(), 3);
  EXPECT_EQ(plan.devices(0).device_id(), "gpu0");
  EXPECT_EQ(plan.devices(2).device_id(), "nic0");
  for (const v1::DevicePath& path : plan.devices()) {
    ASSERT_FALSE(path.source_path().empty());
    EXPECT_EQ(path.source_path(0), v1::DEVICE_STATE_RUNNING);
    EXPECT_EQ(*path.source_path().rbegin(), v1::DEVICE_STATE_STOP);
    ASSERT_FALSE(path.destination_path().empty());
    EXPECT_EQ(*path.destination_path().rbegin(), v1::DEVICE_STATE_RUNNING);
    EXPECT_FALSE(path.reasons().empty()) << path.device_id();
  }
  EXPECT_THAT(plan.devices(0).source_path(),
              ::testing::Contains(v1::DEVICE_STATE_PRE_COPY_P2P));
  EXPECT_THAT(plan.devices(2).source_path(),
              ::testing::Contains(v1::DEVICE_STATE_RUNNING_P2P));
}

TEST_F(ControlServiceTest, AGroupWithADeviceLackingP2pIsBlockedOnThatDevice) {
  v1::MigrationPlan plan;
  ASSERT_TRUE(Plan({"gpu0", "accel0", "nic0"}, false, &plan).ok());
  EXPECT_FALSE(plan.migratable());
  ASSERT_EQ(plan.blockers_size(), 1);
  EXPECT_EQ(plan.blockers(0).device_id(), "accel0");
  EXPECT_THAT(absl::AsciiStrToLower(plan.blockers(0).reason()),
              HasSubstr("p2p"));
  EXPECT_EQ(plan.source_waves_size(), 0);
  EXPECT_EQ(plan.destination_waves_size(), 0);
}

TEST_F(ControlServiceTest, ADeviceWithoutP2pMigratesAlone) {
  v1::MigrationPlan plan;
  ASSERT_TRUE(Plan({"accel0"}, false, &plan).ok());
  EXPECT_TRUE(plan.migratable());
  EXPECT_EQ(plan.blockers_size(), 0);
  EXPECT_GT(plan.source_waves_size(), 0);
  ASSERT_EQ(plan.devices_size(), 1);
  EXPECT_THAT(plan.devices(0).source_path(),
              ElementsAre(v1::DEVICE_STATE_RUNNING, v1::DEVICE_STATE_STOP,
                          v1::DEVICE_STATE_STOP_COPY, v1::DEVICE_STATE_STOP));
}

TEST_F(ControlServiceTest, AllowNoP2pUnblocksWithAWarning) {
  v1::MigrationPlan plan;
  ASSERT_TRUE(Plan({"gpu0", "accel0"}, true, &plan).ok());
  EXPECT_TRUE(plan.migratable());
  EXPECT_EQ(plan.blockers_size(), 0);
  ASSERT_GT(plan.warnings_size(), 0);
  EXPECT_THAT(plan.warnings(0), HasSubstr("accel0"));
  EXPECT_GT(plan.source_waves_size(), 0);
}

TEST_F(ControlServiceTest, UnknownIdsAreNotFoundNamingEachOfThem) {
  v1::MigrationPlan plan;
  grpc::Status status = Plan({"gpu0", "gpu7", "nic9"}, false, &plan);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("'gpu7'"));
  EXPECT_THAT(status.error_message(), HasSubstr("'nic9'"));
  EXPECT_THAT(status.error_message(), ::testing::Not(HasSubstr("'gpu0'")));
}

TEST_F(ControlServiceTest, MalformedGroupsAreInvalidArguments) {
  v1::MigrationPlan plan;
  grpc::Status empty = Plan({}, false, &plan);
  EXPECT_EQ(empty.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(empty.error_message(), HasSubstr("empty"));

  grpc::Status twice = Plan({"gpu0", "nic0", "gpu0"}, false, &plan);
  EXPECT_EQ(twice.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(twice.error_message(), HasSubstr("'gpu0'"));

  std::vector<std::string> many(kMaxDevicesPerRequest + 1);
  for (size_t i = 0; i < many.size(); ++i) many[i] = "d" + std::to_string(i);
  EXPECT_EQ(Plan(many, false, &plan).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Plan({std::string(kMaxDeviceIdLength + 1, 'x')}, false, &plan)
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Plan({""}, false, &plan).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ControlServiceTest, DeviceFilterLimitsWhatIsManaged) {
  StartWith({"nic0", "gpu1"});
  grpc::ClientContext context;
  v1::ListDevicesResponse response;
  ASSERT_TRUE(stub_->ListDevices(&context, {}, &response).ok());
  std::vector<std::string> ids;
  for (const v1::Device& d : response.devices()) ids.push_back(d.id());
  EXPECT_THAT(ids, ElementsAre("gpu1", "nic0"));
  v1::Device device;
  EXPECT_EQ(Get("gpu0", &device).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ControlServiceTest, ConcurrentCallsAgree) {
  std::vector<std::thread> threads;
  threads.reserve(8);
  std::vector<int> failures(8, 0);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([this, t, &failures] {
      for (int i = 0; i < 20; ++i) {
        v1::MigrationPlan plan;
        if (!Plan({"gpu0", "gpu1", "nic0"}, false, &plan).ok() ||
            !plan.migratable()) {
          ++failures[t];
        }
        grpc::ClientContext context;
        v1::ListDevicesResponse list;
        if (!stub_->ListDevices(&context, {}, &list).ok() ||
            list.devices_size() != 4) {
          ++failures[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(failures, ::testing::Each(0));
}

TEST_F(ControlServiceTest, MigrationCallsNeedAManager) {
  grpc::ClientContext context;
  v1::Migration migration;
  v1::GetMigrationRequest request;
  request.set_id("m-1");
  EXPECT_EQ(stub_->GetMigration(&context, request, &migration).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

// The migration RPCs, on a daemon whose sim devices migrate to a second,
// in-process destination daemon (PeerService on 127.0.0.1).
class ControlServiceMigrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    source_ = MakeInventory("source.json", kSimConfig);
    destination_ = MakeInventory("destination.json", kSimConfig);
    ASSERT_NE(source_, nullptr);
    ASSERT_NE(destination_, nullptr);
    peer_ =
        std::make_unique<PeerService>(destination_.get(), &destination_leases_);
    const HostedService peer_services[] = {
        {v1::PeerService::service_full_name(), peer_.get()}};
    const std::string listen[] = {"127.0.0.1:0"};
    absl::StatusOr<std::unique_ptr<Server>> destination_server =
        Server::Start(listen, peer_services, ServerOptions::Plaintext());
    ASSERT_TRUE(destination_server.ok()) << destination_server.status();
    destination_server_ = *std::move(destination_server);

    manager_ = std::make_unique<MigrationManager>(
        source_.get(), &source_leases_, PlaintextMigrationOptions());
    service_ = std::make_unique<ControlService>(source_.get(), manager_.get());
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::ControlService::NewStub(
        server_->InProcessChannel(grpc::ChannelArguments()));
  }

  void TearDown() override {
    manager_->Shutdown();
    if (server_ != nullptr) server_->Shutdown();
    if (destination_server_ != nullptr) {
      destination_server_->Shutdown(absl::Seconds(1));
    }
  }

  std::unique_ptr<Inventory> MakeInventory(const std::string& name,
                                           const std::string& json) {
    BackendOptions options;
    options.sim_config_path = tmp_.WriteFile(name, json);
    absl::StatusOr<std::unique_ptr<DeviceBackend>> backend =
        BackendRegistry::Create("sim", options);
    if (!backend.ok()) return nullptr;
    absl::StatusOr<std::unique_ptr<Inventory>> inventory =
        Inventory::Create(*std::move(backend), {});
    return inventory.ok() ? *std::move(inventory) : nullptr;
  }

  grpc::Status Start(const std::vector<std::string>& ids,
                     const std::string& destination, v1::Migration* out) {
    v1::StartMigrationRequest request;
    for (const std::string& id : ids) request.add_device_ids(id);
    request.set_destination(destination);
    grpc::ClientContext context;
    return stub_->StartMigration(&context, request, out);
  }

  grpc::Status Get(const std::string& id, v1::Device* device) {
    v1::GetDeviceRequest request;
    request.set_id(id);
    grpc::ClientContext context;
    return stub_->GetDevice(&context, request, device);
  }

  // Every event of `id` until the stream closes.
  std::vector<v1::MigrationEvent> Watch(const std::string& id,
                                        grpc::Status* status) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    v1::WatchMigrationRequest request;
    request.set_id(id);
    std::unique_ptr<grpc::ClientReader<v1::MigrationEvent>> reader =
        stub_->WatchMigration(&context, request);
    std::vector<v1::MigrationEvent> events;
    v1::MigrationEvent event;
    while (reader->Read(&event)) events.push_back(event);
    *status = reader->Finish();
    return events;
  }

  TempDir tmp_;
  std::unique_ptr<Inventory> source_;
  std::unique_ptr<Inventory> destination_;
  DeviceLeases source_leases_;
  DeviceLeases destination_leases_;
  std::unique_ptr<PeerService> peer_;
  std::unique_ptr<Server> destination_server_;
  std::unique_ptr<MigrationManager> manager_;
  std::unique_ptr<ControlService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::ControlService::Stub> stub_;
};

TEST_F(ControlServiceMigrationTest, StartRefusalsMapToStatusCodes) {
  v1::Migration migration;
  EXPECT_EQ(Start({}, "127.0.0.1:1", &migration).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Start({"gpu0"}, "", &migration).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  const grpc::Status unknown =
      Start({"gpu0", "gpu9"}, "127.0.0.1:1", &migration);
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(unknown.error_message(), HasSubstr("gpu9"));
  const grpc::Status blocked =
      Start({"gpu0", "accel0"}, "127.0.0.1:1", &migration);
  EXPECT_EQ(blocked.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(blocked.error_message(), HasSubstr("accel0"));
}

TEST_F(ControlServiceMigrationTest, LookupsValidateAndMapStatusCodes) {
  grpc::ClientContext get_context;
  v1::GetMigrationRequest get;
  get.set_id("bad id");
  v1::Migration migration;
  EXPECT_EQ(stub_->GetMigration(&get_context, get, &migration).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  grpc::ClientContext missing_context;
  get.set_id("m-missing");
  EXPECT_EQ(stub_->GetMigration(&missing_context, get, &migration).error_code(),
            grpc::StatusCode::NOT_FOUND);
  grpc::Status status;
  EXPECT_TRUE(Watch("m-missing", &status).empty());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext cancel_context;
  v1::CancelMigrationRequest cancel;
  cancel.set_id("m-missing");
  EXPECT_EQ(
      stub_->CancelMigration(&cancel_context, cancel, &migration).error_code(),
      grpc::StatusCode::NOT_FOUND);
}

TEST_F(ControlServiceMigrationTest, MigratesAndStreamsEveryPhase) {
  v1::Migration started;
  ASSERT_TRUE(Start({"gpu0", "gpu1", "nic0"},
                    destination_server_->endpoints().at(0), &started)
                  .ok());
  EXPECT_EQ(started.outcome(), v1::MIGRATION_OUTCOME_IN_PROGRESS);
  grpc::Status status;
  const std::vector<v1::MigrationEvent> events = Watch(started.id(), &status);
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_FALSE(events.empty());
  const v1::Migration& final = events.back().migration();
  EXPECT_EQ(final.outcome(), v1::MIGRATION_OUTCOME_SUCCEEDED) << final.error();
  std::vector<v1::MigrationPhase> phases;
  for (const v1::MigrationEvent& e : events) {
    if (phases.empty() || phases.back() != e.migration().phase()) {
      phases.push_back(e.migration().phase());
    }
  }
  EXPECT_THAT(phases,
              ::testing::IsSupersetOf(
                  {v1::MIGRATION_PHASE_PRE_COPY, v1::MIGRATION_PHASE_SWITCHOVER,
                   v1::MIGRATION_PHASE_QUIESCE, v1::MIGRATION_PHASE_STOP_COPY,
                   v1::MIGRATION_PHASE_COMMITTING, v1::MIGRATION_PHASE_DONE}));
  EXPECT_TRUE(std::is_sorted(phases.begin(), phases.end()));

  grpc::ClientContext list_context;
  v1::ListMigrationsResponse list;
  ASSERT_TRUE(stub_->ListMigrations(&list_context, {}, &list).ok());
  ASSERT_GE(list.migrations_size(), 1);
  EXPECT_EQ(list.migrations(0).id(), started.id());

  grpc::ClientContext cancel_context;
  v1::CancelMigrationRequest cancel;
  cancel.set_id(started.id());
  v1::Migration migration;
  const grpc::Status late =
      stub_->CancelMigration(&cancel_context, cancel, &migration);
  EXPECT_EQ(late.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(late.error_message(), HasSubstr("SUCCEEDED"));
  // The same devices have moved: the source's are stopped now.
  v1::Device device;
  ASSERT_TRUE(Get("gpu0", &device).ok());
  EXPECT_EQ(device.state(), v1::DEVICE_STATE_STOP);
}

}  // namespace
}  // namespace vfiomig
