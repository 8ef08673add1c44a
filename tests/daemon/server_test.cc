#include "daemon/server.h"

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "daemon/control_service.h"
#include "daemon/inventory.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/daemon/temp_dir.h"
#include "vfiomig/v1/control.grpc.pb.h"

namespace vfiomig {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::vfiomig::testing::TempDir;

class EmptyBackend final : public DeviceBackend {
 public:
  std::string_view name() const override { return "empty"; }
  std::vector<std::shared_ptr<Device>> Devices() override { return {}; }
};

// grpc.health.v1.HealthCheckResponse.ServingStatus.
enum ServingStatus { kServing = 1, kNotServing = 2 };

// Calls grpc.health.v1.Health/Check with hand-encoded protobuf, as any
// generic client could: HealthCheckRequest{service = 1} and
// HealthCheckResponse{status = 1}.
grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel,
                         const std::string& service, int* status) {
  std::string request;
  if (!service.empty()) {
    request.push_back('\x0a');
    request.push_back(static_cast<char>(service.size()));
    request += service;
  }
  grpc::Slice slice(request);
  grpc::ByteBuffer request_buffer(&slice, 1);
  grpc::ByteBuffer response_buffer;
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(),
                 &request_buffer, &response_buffer,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  grpc::Status result = done.get_future().get();
  if (result.ok()) {
    std::vector<grpc::Slice> slices;
    (void)response_buffer.Dump(&slices);
    std::string response;
    for (const grpc::Slice& s : slices) {
      response.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    // An empty message is status UNKNOWN (0).
    *status = response.size() == 2 && response[0] == '\x08' ? response[1] : 0;
  }
  return result;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Inventory>> inventory =
        Inventory::Create(std::make_unique<EmptyBackend>(), {});
    ASSERT_TRUE(inventory.ok());
    inventory_ = *std::move(inventory);
    control_ = std::make_unique<ControlService>(inventory_.get());
    services_ = {{v1::ControlService::service_full_name(), control_.get()}};
  }

  // Plaintext TCP unless a test says otherwise: these tests are about the
  // server, not about TLS (transport_security_test.cc is).
  absl::StatusOr<std::unique_ptr<Server>> Start(
      const std::vector<std::string>& targets,
      const ServerOptions& options = ServerOptions::Plaintext()) {
    return Server::Start(targets, services_, options);
  }

  TempDir tmp_;
  std::unique_ptr<Inventory> inventory_;
  std::unique_ptr<ControlService> control_;
  std::vector<HostedService> services_;
};

TEST_F(ServerTest, ServesHealthForTheServerAndTheControlService) {
  const std::string target = "unix:" + (tmp_.path() / "d.sock").native();
  absl::StatusOr<std::unique_ptr<Server>> server = Start({target});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT((*server)->endpoints(), ::testing::ElementsAre(target));
  auto channel =
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  for (const std::string& service :
       {std::string(""), std::string("vfiomig.v1.ControlService")}) {
    int status = 0;
    grpc::Status rpc = HealthCheck(channel, service, &status);
    ASSERT_TRUE(rpc.ok()) << service << ": " << rpc.error_message();
    EXPECT_EQ(status, kServing) << service;
  }
  int status = 0;
  EXPECT_EQ(HealthCheck(channel, "no.such.Service", &status).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServerTest, ShutdownRemovesTheSocketFile) {
  const fs::path socket = tmp_.path() / "d.sock";
  absl::StatusOr<std::unique_ptr<Server>> server =
      Start({"unix:" + socket.native()});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(fs::exists(socket));
  (*server)->Shutdown(absl::Seconds(1));
  EXPECT_FALSE(fs::exists(socket));
  (*server)->Shutdown(absl::Seconds(1));  // Idempotent.
}

TEST_F(ServerTest, ShutdownWaitsWhileBusyButNotForTheWholeGrace) {
  absl::StatusOr<std::unique_ptr<Server>> server =
      Start({"unix:" + (tmp_.path() / "d.sock").native()});
  ASSERT_TRUE(server.ok()) << server.status();
  const absl::Time start = absl::Now();
  (*server)->Shutdown(absl::Seconds(10), [start] {
    return absl::Now() - start < absl::Milliseconds(200);
  });
  const absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(200));
  EXPECT_LT(took, absl::Seconds(5));
}

TEST_F(ServerTest, ASecondServerOnTheSameSocketFailsAndLeavesTheFirstAlone) {
  const std::string target = "unix:" + (tmp_.path() / "d.sock").native();
  absl::StatusOr<std::unique_ptr<Server>> first = Start({target});
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<Server>> second = Start({target});
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr(target));
  EXPECT_THAT(second.status().message(), HasSubstr("in use"));
  auto channel =
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  int status = 0;
  ASSERT_TRUE(HealthCheck(channel, "", &status).ok());
  EXPECT_EQ(status, kServing);
}

TEST_F(ServerTest, ResolvesTcpPortZeroAndRefusesToShareTheTcpPort) {
  absl::StatusOr<std::unique_ptr<Server>> first = Start({"127.0.0.1:0"});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ((*first)->endpoints().size(), 1u);
  const std::string endpoint = (*first)->endpoints()[0];
  EXPECT_THAT(endpoint, ::testing::StartsWith("127.0.0.1:"));
  EXPECT_NE(endpoint, "127.0.0.1:0");

  auto channel =
      grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials());
  auto stub = v1::ControlService::NewStub(channel);
  grpc::ClientContext context;
  v1::ListDevicesResponse response;
  ASSERT_TRUE(stub->ListDevices(&context, {}, &response).ok());
  EXPECT_EQ(response.devices_size(), 0);

  // Without SO_REUSEPORT the port is ours alone.
  absl::StatusOr<std::unique_ptr<Server>> second = Start({endpoint});
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr(endpoint));
}

TEST_F(ServerTest, RefusesPlaintextTcpAndAbstractSocketsByDefault) {
  for (const char* target : {"127.0.0.1:0", "unix-abstract:vfio-migd-test"}) {
    absl::Status status = Start({target}, ServerOptions()).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << target;
    EXPECT_THAT(status.message(), HasSubstr(target));
    EXPECT_THAT(status.message(), HasSubstr("--insecure"));
  }
  // Nothing was bound: a unix target next to a refused one is not created.
  const fs::path socket = tmp_.path() / "d.sock";
  absl::Status status =
      Start({"unix:" + socket.native(), "127.0.0.1:0"}, ServerOptions())
          .status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_FALSE(fs::exists(socket));
}

TEST_F(ServerTest, TheUnixSocketIsCreatedWithMode0660) {
  const fs::path socket = tmp_.path() / "run" / "d.sock";
  absl::StatusOr<std::unique_ptr<Server>> server =
      Start({"unix:" + socket.native()});
  ASSERT_TRUE(server.ok()) << server.status();
  struct stat st {};
  ASSERT_EQ(::lstat(socket.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  EXPECT_EQ(st.st_uid, ::geteuid());
  ASSERT_EQ(::stat(socket.parent_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
}

TEST_F(ServerTest, RefusesAWorldWritableSocketDirectory) {
  const fs::path dir = tmp_.path() / "open";
  fs::create_directory(dir);
  fs::permissions(dir, fs::perms::all);  // 0777, as /tmp without sticky
  absl::Status status = Start({"unix:" + (dir / "d.sock").native()}).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("world-writable"));
  EXPECT_FALSE(fs::exists(dir / "d.sock"));
}

TEST_F(ServerTest, RejectsBadAndDuplicateTargets) {
  EXPECT_EQ(Start({}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Start({"nonsense"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::string target = "unix:" + (tmp_.path() / "d.sock").native();
  absl::Status duplicate = Start({target, target}).status();
  EXPECT_EQ(duplicate.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(duplicate.message(), HasSubstr("twice"));
}

}  // namespace
}  // namespace vfiomig
