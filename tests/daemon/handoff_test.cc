// The device hand-off side channel: a real HandoffServer on a unix socket,
// asked through the client's RequestDeviceFd, over an inventory whose
// device hands out a dup of a memfd (standing in for a VFIO device fd).
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "daemon/handoff/handoff_server.h"
#include "daemon/handoff/protocol.h"
#include "daemon/inventory.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/temp_dir.h"

namespace vfiomig {
namespace {

using ::testing::HasSubstr;

class FdDevice final : public Device {
 public:
  FdDevice(std::string id, int fd) : fd_(fd) {
    info_.id = std::move(id);
    info_.backend = "test";
  }
  ~FdDevice() override {
    if (fd_ >= 0) ::close(fd_);
  }
  const DeviceInfo& info() const override { return info_; }
  absl::StatusOr<DeviceState> GetState() override {
    return DeviceState::RUNNING;
  }
  absl::StatusOr<std::unique_ptr<DataSession>> SetState(DeviceState) override {
    return absl::UnimplementedError("no arcs");
  }
  absl::StatusOr<uint64_t> StopCopySize() override { return 0; }
  absl::Status Reset() override { return absl::OkStatus(); }
  absl::StatusOr<int> DuplicateFd() override {
    if (fd_ < 0) return absl::UnimplementedError("no fd");
    return ::dup(fd_);
  }

 private:
  DeviceInfo info_;
  int fd_;
};

class TestBackend final : public DeviceBackend {
 public:
  explicit TestBackend(std::vector<std::shared_ptr<Device>> devices)
      : devices_(std::move(devices)) {}
  std::string_view name() const override { return "test"; }
  std::vector<std::shared_ptr<Device>> Devices() override { return devices_; }

 private:
  std::vector<std::shared_ptr<Device>> devices_;
};

ino_t Inode(int fd) {
  struct stat st {};
  EXPECT_EQ(::fstat(fd, &st), 0);
  return st.st_ino;
}

class HandoffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    memfd_ = ::memfd_create("device", MFD_CLOEXEC);
    ASSERT_GE(memfd_, 0);
    absl::StatusOr<std::unique_ptr<Inventory>> inventory = Inventory::Create(
        std::make_unique<TestBackend>(std::vector<std::shared_ptr<Device>>{
            std::make_shared<FdDevice>("dev0", ::dup(memfd_)),
            std::make_shared<FdDevice>("nofd", -1)}),
        {});
    ASSERT_TRUE(inventory.ok()) << inventory.status();
    inventory_ = *std::move(inventory);
    path_ = (dir_.path() / "ctl-handoff.sock").native();
    absl::StatusOr<std::unique_ptr<HandoffServer>> server =
        HandoffServer::Start(path_, inventory_.get());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void TearDown() override {
    server_.reset();
    if (memfd_ >= 0) ::close(memfd_);
  }

  testing::TempDir dir_;
  int memfd_ = -1;
  std::unique_ptr<Inventory> inventory_;
  std::string path_;
  std::unique_ptr<HandoffServer> server_;
};

TEST_F(HandoffTest, HandsOverADuplicateOfTheDeviceFd) {
  absl::StatusOr<int> fd = handoff::RequestDeviceFd(path_, "dev0");
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(Inode(*fd), Inode(memfd_));
  // The same open file: what one side writes, the other reads.
  ASSERT_EQ(::pwrite(*fd, "abc", 3, 0), 3);
  char buf[3] = {};
  ASSERT_EQ(::pread(memfd_, buf, 3, 0), 3);
  EXPECT_EQ(std::string(buf, 3), "abc");
  ::close(*fd);
  // The daemon kept its own reference: a second hand-off works too.
  absl::StatusOr<int> again = handoff::RequestDeviceFd(path_, "dev0");
  ASSERT_TRUE(again.ok()) << again.status();
  ::close(*again);
}

TEST_F(HandoffTest, SocketIsOwnerAndGroupOnly) {
  struct stat st {};
  ASSERT_EQ(::lstat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, kSocketMode);
  EXPECT_EQ(st.st_uid, ::geteuid());
  EXPECT_EQ(st.st_gid, ::getegid());
}

// The control socket's rules (socket_permissions.h) hold for this one too.
TEST(HandoffSocketTest, RefusesAWorldWritableDirectory) {
  testing::TempDir dir;
  const std::filesystem::path open_dir = dir.path() / "open";
  ASSERT_TRUE(std::filesystem::create_directory(open_dir));
  ASSERT_EQ(::chmod(open_dir.c_str(), 0777), 0);
  absl::StatusOr<std::unique_ptr<Inventory>> inventory = Inventory::Create(
      std::make_unique<TestBackend>(std::vector<std::shared_ptr<Device>>{}),
      {});
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  absl::StatusOr<std::unique_ptr<HandoffServer>> server =
      HandoffServer::Start(open_dir / "h.sock", inventory->get());
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(server.status().message(), HasSubstr("world-writable"));
  EXPECT_FALSE(std::filesystem::exists(open_dir / "h.sock"));
}

TEST(HandoffSocketTest, TakesTheSocketGroup) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown to a group";
  constexpr gid_t kNogroup = 65534;
  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<Inventory>> inventory = Inventory::Create(
      std::make_unique<TestBackend>(std::vector<std::shared_ptr<Device>>{}),
      {});
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  const std::filesystem::path path = dir.path() / "h.sock";
  absl::StatusOr<std::unique_ptr<HandoffServer>> server = HandoffServer::Start(
      path, inventory->get(),
      SocketAccess{.group = kNogroup, .group_name = "nogroup"});
  ASSERT_TRUE(server.ok()) << server.status();
  struct stat st {};
  ASSERT_EQ(::lstat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, kNogroup);
  EXPECT_EQ(st.st_mode & 07777, kSocketMode);
}

TEST_F(HandoffTest, UnknownDeviceIsNotFound) {
  absl::StatusOr<int> fd = handoff::RequestDeviceFd(path_, "gpu9");
  ASSERT_FALSE(fd.ok());
  EXPECT_TRUE(absl::IsNotFound(fd.status())) << fd.status();
  EXPECT_THAT(fd.status().message(), HasSubstr("gpu9"));
}

TEST_F(HandoffTest, DeviceWithoutFdSaysSo) {
  absl::StatusOr<int> fd = handoff::RequestDeviceFd(path_, "nofd");
  ASSERT_FALSE(fd.ok());
  EXPECT_TRUE(absl::IsUnimplemented(fd.status())) << fd.status();
}

TEST_F(HandoffTest, MalformedDeviceIdIsRefused) {
  absl::StatusOr<int> fd = handoff::RequestDeviceFd(path_, "bad\tid");
  ASSERT_FALSE(fd.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(fd.status())) << fd.status();
}

TEST_F(HandoffTest, NothingListeningIsUnavailable) {
  server_.reset();
  absl::StatusOr<int> fd = handoff::RequestDeviceFd(path_, "dev0");
  ASSERT_FALSE(fd.ok());
  EXPECT_TRUE(absl::IsUnavailable(fd.status())) << fd.status();
  // The server removed its socket file on the way out.
  EXPECT_FALSE(std::filesystem::exists(path_));
}

TEST(HandoffPolicyTest, OnlyRootAndTheDaemonsUser) {
  EXPECT_TRUE(HandoffServer::CallerAllowed(0, 1000));
  EXPECT_TRUE(HandoffServer::CallerAllowed(1000, 1000));
  EXPECT_FALSE(HandoffServer::CallerAllowed(1001, 1000));
  EXPECT_TRUE(HandoffServer::CallerAllowed(0, 0));
  EXPECT_FALSE(HandoffServer::CallerAllowed(1000, 0));
}

TEST(HandoffPolicyTest, MembersOfTheSocketGroup) {
  // No socket group: group membership admits nobody.
  EXPECT_FALSE(HandoffServer::CallerAllowed(1001, 1000, std::nullopt, {36}));
  EXPECT_TRUE(HandoffServer::CallerAllowed(1001, 1000, 36, {1001, 36}));
  EXPECT_FALSE(HandoffServer::CallerAllowed(1001, 1000, 36, {1001, 37}));
  EXPECT_FALSE(HandoffServer::CallerAllowed(1001, 1000, 36, {}));
}

TEST(HandoffPathTest, BesideTheControlSocket) {
  EXPECT_EQ(handoff::HandoffPathFor("/run/vfio-migd/vfio-migd.sock"),
            "/run/vfio-migd/vfio-migd-handoff.sock");
  EXPECT_EQ(handoff::HandoffPathFor("/tmp/ctl"), "/tmp/ctl-handoff");
}

}  // namespace
}  // namespace vfiomig
