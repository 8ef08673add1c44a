#include "daemon/socket_permissions.h"

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "daemon/listen_address.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/temp_dir.h"

namespace vfiomig {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::vfiomig::testing::TempDir;

// uid/gid 65534 (nobody/nogroup on Debian): "someone else" for root.
constexpr uid_t kOtherUid = 65534;
constexpr gid_t kOtherGid = 65534;

#define REQUIRE_ROOT()                                              \
  if (::geteuid() != 0) {                                           \
    GTEST_SKIP() << "needs root to give files to another user (CI " \
                    "runs as root)";                                \
  }

struct stat Stat(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

// A bound (not listening) unix socket file at `path`.
void MakeSocketFile(const fs::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ::close(fd);
}

TEST(SocketAccessForGroup, NamesAndNumbers) {
  absl::StatusOr<SocketAccess> root = SocketAccessForGroup("root");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(root->group, gid_t{0});
  EXPECT_EQ(root->group_name, "root");

  absl::StatusOr<SocketAccess> numeric = SocketAccessForGroup("4242");
  ASSERT_TRUE(numeric.ok()) << numeric.status();
  EXPECT_EQ(numeric->group, gid_t{4242});

  for (const char* bad : {"no-such-group-here", "", "12x", "-1"}) {
    absl::StatusOr<SocketAccess> unknown = SocketAccessForGroup(bad);
    EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
    EXPECT_THAT(unknown.status().message(), HasSubstr("--socket-group"));
  }
}

TEST(PrepareSocketDirectory, CreatesAMissingDirectoryWithMode0750) {
  TempDir tmp;
  const fs::path dir = tmp.path() / "run" / "vfio-migd";
  ASSERT_TRUE(PrepareSocketDirectory(dir, {}).ok());
  const struct stat st = Stat(dir);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, kSocketDirectoryMode);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST(PrepareSocketDirectory, GivesACreatedDirectoryToTheSocketGroup) {
  REQUIRE_ROOT();
  TempDir tmp;
  const fs::path dir = tmp.path() / "sockets";
  const SocketAccess access{.group = kOtherGid, .group_name = "nogroup"};
  ASSERT_TRUE(PrepareSocketDirectory(dir, access).ok());
  EXPECT_EQ(Stat(dir).st_gid, kOtherGid);
}

TEST(PrepareSocketDirectory, RefusesAWorldWritableDirectory) {
  TempDir tmp;
  for (mode_t mode : {0777, 01777, 0703}) {
    const fs::path dir = tmp.path() / ("d" + std::to_string(mode));
    ASSERT_TRUE(fs::create_directory(dir));
    ASSERT_EQ(::chmod(dir.c_str(), mode), 0);
    absl::Status status = PrepareSocketDirectory(dir, {});
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << mode;
    EXPECT_THAT(status.message(), HasSubstr("world-writable"));
    EXPECT_THAT(status.message(), HasSubstr(dir.native()));
  }
}

TEST(PrepareSocketDirectory, AcceptsAnExistingPrivateDirectory) {
  TempDir tmp;  // mkdtemp: 0700, ours
  EXPECT_TRUE(PrepareSocketDirectory(tmp.path(), {}).ok());
  ASSERT_EQ(::chmod(tmp.path().c_str(), 0775), 0);  // group-writable is fine
  EXPECT_TRUE(PrepareSocketDirectory(tmp.path(), {}).ok());
}

TEST(PrepareSocketDirectory, RefusesADirectoryOwnedBySomeoneElse) {
  REQUIRE_ROOT();
  TempDir tmp;
  const fs::path dir = tmp.path() / "theirs";
  ASSERT_TRUE(fs::create_directory(dir));
  ASSERT_EQ(::chown(dir.c_str(), kOtherUid, kOtherGid), 0);
  absl::Status status = PrepareSocketDirectory(dir, {});
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("owned by uid 65534"));
}

TEST(PrepareSocketDirectory, RefusesAFileInPlaceOfTheDirectory) {
  TempDir tmp;
  const std::string file = tmp.WriteFile("not-a-dir", "x");
  absl::Status status = PrepareSocketDirectory(file, {});
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("not a directory"));
}

TEST(CheckReplaceableSocket, OursOrNothingIsReplaceable) {
  TempDir tmp;
  EXPECT_TRUE(CheckReplaceableSocket(tmp.path() / "none.sock").ok());
  MakeSocketFile(tmp.path() / "ours.sock");
  EXPECT_TRUE(CheckReplaceableSocket(tmp.path() / "ours.sock").ok());
}

TEST(CheckReplaceableSocket, AnotherUsersStaleSocketIsLeftAlone) {
  REQUIRE_ROOT();
  TempDir tmp;
  const fs::path socket = tmp.path() / "theirs.sock";
  MakeSocketFile(socket);
  ASSERT_EQ(::lchown(socket.c_str(), kOtherUid, kOtherGid), 0);
  absl::Status status = CheckReplaceableSocket(socket);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("another user"));
  // PrepareUnixSocket (stale-socket removal) refuses it too.
  EXPECT_EQ(PrepareUnixSocket(socket).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(fs::exists(fs::symlink_status(socket)));
}

TEST(RestrictSocket, SetsMode0660AndTheGroup) {
  TempDir tmp;
  const fs::path socket = tmp.path() / "s.sock";
  {
    const ScopedSocketUmask umask;
    MakeSocketFile(socket);
  }
  // Born without any permission for others (the umask), before any chmod.
  EXPECT_EQ(Stat(socket).st_mode & 0007, 0u);
  ASSERT_TRUE(RestrictSocket(socket, {}).ok());
  EXPECT_EQ(Stat(socket).st_mode & 07777, kSocketMode);
  if (::geteuid() == 0) {
    const SocketAccess access{.group = kOtherGid, .group_name = "nogroup"};
    absl::Status status = RestrictSocket(socket, access);
    ASSERT_TRUE(status.ok()) << status;
    const struct stat st = Stat(socket);
    EXPECT_EQ(st.st_gid, kOtherGid);
    EXPECT_EQ(st.st_mode & 07777, kSocketMode);
  }
}

TEST(RestrictSocket, FailsForAMissingSocket) {
  TempDir tmp;
  absl::Status status = RestrictSocket(tmp.path() / "gone.sock", {});
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("gone.sock"));
}

TEST(ScopedSocketUmask, RestoresTheUmask) {
  const mode_t before = ::umask(022);
  { const ScopedSocketUmask umask; }
  EXPECT_EQ(::umask(before), 022u);
}

}  // namespace
}  // namespace vfiomig
