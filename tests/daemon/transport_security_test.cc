// TransportSecurity: the TLS files' checks, which targets need what, and
// mutual TLS through the real server: a client without a certificate or
// with one from another CA is refused; one the CA signed gets through.
// Certificates come from deploy/make-test-certs.sh, the script operators
// use.
#include "daemon/transport_security.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/control_service.h"
#include "daemon/inventory.h"
#include "daemon/server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/temp_dir.h"
#include "vfiomig/v1/control.grpc.pb.h"

namespace vfiomig {
namespace {

using ::testing::HasSubstr;
using ::vfiomig::testing::TempDir;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class EmptyBackend final : public DeviceBackend {
 public:
  std::string_view name() const override { return "empty"; }
  std::vector<std::shared_ptr<Device>> Devices() override { return {}; }
};

class TransportSecurityTest : public ::testing::Test {
 protected:
  // Two CAs: "good" signed host-a and host-b, "other" signed rogue.
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const std::string script =
        std::string(VFIOMIG_SOURCE_DIR) + "/deploy/make-test-certs.sh";
    const std::string good = (dir_->path() / "good").native();
    const std::string other = (dir_->path() / "other").native();
    const std::string command =
        "bash " + script + " " + good + " host-a host-b >/dev/null && bash " +
        script + " --ca-name 'other CA' " + other + " rogue >/dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static std::string Good(const std::string& name) {
    return (dir_->path() / "good" / name).native();
  }
  static std::string Other(const std::string& name) {
    return (dir_->path() / "other" / name).native();
  }
  static TlsFiles Host(const std::string& host) {
    return {.ca = Good("ca.pem"),
            .cert = Good(host + ".pem"),
            .key = Good(host + ".key")};
  }

  static TempDir* dir_;
};

TempDir* TransportSecurityTest::dir_ = nullptr;

TEST_F(TransportSecurityTest, AGoodSetLoads) {
  absl::StatusOr<TransportSecurity> security =
      TransportSecurity::Create(Host("host-a"), false);
  ASSERT_TRUE(security.ok()) << security.status();
  EXPECT_TRUE(security->has_tls());
  EXPECT_FALSE(security->insecure());
  EXPECT_EQ(security->subject(), "CN=host-a");
}

TEST_F(TransportSecurityTest, NeedsAllThreeFilesAndNotWithInsecure) {
  TlsFiles partial = Host("host-a");
  partial.key.clear();
  absl::Status status = TransportSecurity::Create(partial, false).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("all of --tls-ca"));

  status = TransportSecurity::Create(Host("host-a"), true).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("--insecure"));
}

TEST_F(TransportSecurityTest, RefusesUnsoundFilesNamingThem) {
  TempDir tmp;
  struct Case {
    TlsFiles files;
    std::string expected;
  };
  const std::string garbage = tmp.WriteFile("garbage.pem", "not a PEM file\n");
  const std::string world_readable_key =
      tmp.WriteFile("world.key", ReadFile(Good("host-a.key")));
  ::chmod(world_readable_key.c_str(), 0644);
  const std::string key_copy =
      tmp.WriteFile("garbage.key", "-----BEGIN PRIVATE KEY-----\nAAAA\n");
  ::chmod(key_copy.c_str(), 0600);
  const std::vector<Case> cases = {
      // The certificate of another host with this host's key.
      {{Good("ca.pem"), Good("host-b.pem"), Good("host-a.key")},
       "is not the key of --tls-cert"},
      // A certificate another CA signed: every peer would refuse it.
      {{Good("ca.pem"), Other("rogue.pem"), Other("rogue.key")},
       "does not verify against --tls-ca"},
      {{garbage, Good("host-a.pem"), Good("host-a.key")}, "no PEM certificate"},
      {{Good("ca.pem"), garbage, Good("host-a.key")}, "no PEM certificate"},
      {{Good("ca.pem"), Good("host-a.pem"), key_copy},
       "no unencrypted PEM private key"},
      {{Good("ca.pem"), Good("host-a.pem"), world_readable_key},
       "accessible to every user"},
      {{Good("missing.pem"), Good("host-a.pem"), Good("host-a.key")},
       "cannot read"},
  };
  for (const Case& c : cases) {
    absl::Status status = TransportSecurity::Create(c.files, false).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition)
        << c.expected;
    EXPECT_THAT(status.message(), HasSubstr(c.expected));
  }
}

TEST_F(TransportSecurityTest, TargetKinds) {
  EXPECT_EQ(KindOfTarget("unix:/run/x.sock"), TargetKind::kFileSocket);
  EXPECT_EQ(KindOfTarget("unix:///run/x.sock"), TargetKind::kFileSocket);
  EXPECT_EQ(KindOfTarget("unix-abstract:x"), TargetKind::kAbstractSocket);
  EXPECT_EQ(KindOfTarget("10.0.0.1:7000"), TargetKind::kNetwork);
  EXPECT_EQ(KindOfTarget("dns:///host:7000"), TargetKind::kNetwork);
  EXPECT_EQ(KindOfTarget("[::1]:7000"), TargetKind::kNetwork);
}

TEST_F(TransportSecurityTest, WithoutTlsOrInsecureOnlyFileSocketsAreAllowed) {
  const TransportSecurity none;
  EXPECT_TRUE(none.ChannelCredentialsFor("unix:/run/x.sock").ok());
  EXPECT_TRUE(none.ServerCredentialsFor("unix:/run/x.sock").ok());
  for (const char* target : {"127.0.0.1:7000", "unix-abstract:x"}) {
    absl::Status dial = none.ChannelCredentialsFor(target).status();
    EXPECT_EQ(dial.code(), absl::StatusCode::kFailedPrecondition) << target;
    EXPECT_THAT(dial.message(), HasSubstr("--insecure"));
    absl::Status listen = none.ServerCredentialsFor(target).status();
    EXPECT_EQ(listen.code(), absl::StatusCode::kFailedPrecondition) << target;
    EXPECT_THAT(listen.message(), HasSubstr(target));
  }
  absl::Status tcp = none.ServerCredentialsFor("0.0.0.0:7000").status();
  EXPECT_THAT(tcp.message(), HasSubstr("--tls-ca, --tls-cert and --tls-key"));

  absl::StatusOr<TransportSecurity> insecure =
      TransportSecurity::Create({}, true);
  ASSERT_TRUE(insecure.ok());
  EXPECT_TRUE(insecure->ChannelCredentialsFor("127.0.0.1:7000").ok());
  EXPECT_TRUE(insecure->ServerCredentialsFor("unix-abstract:x").ok());

  // With TLS, abstract sockets still need --insecure: TLS does not cover
  // them.
  absl::StatusOr<TransportSecurity> tls =
      TransportSecurity::Create(Host("host-a"), false);
  ASSERT_TRUE(tls.ok());
  EXPECT_TRUE(tls->ServerCredentialsFor("127.0.0.1:7000").ok());
  EXPECT_FALSE(tls->ServerCredentialsFor("unix-abstract:x").ok());
}

// A daemon (host-a) serving the control API on TCP with mutual TLS.
class MutualTlsServerTest : public TransportSecurityTest {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Inventory>> inventory =
        Inventory::Create(std::make_unique<EmptyBackend>(), {});
    ASSERT_TRUE(inventory.ok());
    inventory_ = *std::move(inventory);
    control_ = std::make_unique<ControlService>(inventory_.get());
    absl::StatusOr<TransportSecurity> security =
        TransportSecurity::Create(Host("host-a"), false);
    ASSERT_TRUE(security.ok()) << security.status();
    const HostedService services[] = {
        {v1::ControlService::service_full_name(), control_.get()}};
    const std::string listen[] = {"127.0.0.1:0"};
    ServerOptions options;
    options.transport = *security;
    absl::StatusOr<std::unique_ptr<Server>> server =
        Server::Start(listen, services, options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    endpoint_ = server_->endpoints().at(0);
  }

  grpc::Status ListDevices(
      const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    auto stub = v1::ControlService::NewStub(
        grpc::CreateChannel(endpoint_, credentials));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    v1::ListDevicesResponse response;
    return stub->ListDevices(&context, {}, &response);
  }

  static std::shared_ptr<grpc::ChannelCredentials> Ssl(const std::string& ca,
                                                       const std::string& cert,
                                                       const std::string& key) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = ReadFile(ca);
    if (!cert.empty()) {
      options.pem_cert_chain = ReadFile(cert);
      options.pem_private_key = ReadFile(key);
    }
    return grpc::SslCredentials(options);
  }

  std::unique_ptr<Inventory> inventory_;
  std::unique_ptr<ControlService> control_;
  std::unique_ptr<Server> server_;
  std::string endpoint_;
};

TEST_F(MutualTlsServerTest, AClientTheCaSignedGetsThrough) {
  absl::StatusOr<TransportSecurity> client =
      TransportSecurity::Create(Host("host-b"), false);
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      client->ChannelCredentialsFor(endpoint_);
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  grpc::Status status = ListDevices(*credentials);
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(MutualTlsServerTest, APlaintextClientIsRefused) {
  grpc::Status status = ListDevices(grpc::InsecureChannelCredentials());
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
}

TEST_F(MutualTlsServerTest, AClientWithoutACertificateIsRefused) {
  grpc::Status status = ListDevices(Ssl(Good("ca.pem"), "", ""));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
}

TEST_F(MutualTlsServerTest, AClientCertificateFromAnotherCaIsRefused) {
  // The client trusts our CA, but its own certificate is the other CA's.
  grpc::Status status =
      ListDevices(Ssl(Good("ca.pem"), Other("rogue.pem"), Other("rogue.key")));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
}

TEST_F(MutualTlsServerTest, AClientRefusesAServerFromAnotherCa) {
  // rogue trusts only its own CA: our server is a stranger to it.
  grpc::Status status =
      ListDevices(Ssl(Other("ca.pem"), Other("rogue.pem"), Other("rogue.key")));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << status.error_message();
}

}  // namespace
}  // namespace vfiomig
