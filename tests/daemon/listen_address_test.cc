#include "daemon/listen_address.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/temp_dir.h"

namespace vfiomig {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::vfiomig::testing::TempDir;

TEST(ParseListenAddress, UnixForms) {
  absl::StatusOr<ListenAddress> a = ParseListenAddress("unix:/run/x/y.sock");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->target, "unix:/run/x/y.sock");
  EXPECT_EQ(a->unix_path, fs::path("/run/x/y.sock"));
  EXPECT_TRUE(a->is_local());

  absl::StatusOr<ListenAddress> uri = ParseListenAddress("unix:///run/y.sock");
  ASSERT_TRUE(uri.ok()) << uri.status();
  EXPECT_EQ(uri->unix_path, fs::path("/run/y.sock"));

  absl::StatusOr<ListenAddress> relative = ParseListenAddress("unix:y.sock");
  ASSERT_TRUE(relative.ok());
  EXPECT_EQ(relative->unix_path, fs::path("y.sock"));

  absl::StatusOr<ListenAddress> abstract =
      ParseListenAddress("unix-abstract:vfio-migd");
  ASSERT_TRUE(abstract.ok());
  EXPECT_FALSE(abstract->unix_path.has_value());
  EXPECT_TRUE(abstract->is_local());
}

TEST(ParseListenAddress, TcpForms) {
  absl::StatusOr<ListenAddress> v4 = ParseListenAddress("127.0.0.1:7000");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->tcp_host, "127.0.0.1");
  EXPECT_FALSE(v4->is_local());
  absl::StatusOr<ListenAddress> v6 = ParseListenAddress("[::]:0");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->tcp_host, "[::]");
}

TEST(ParseListenAddress, RejectsMalformedTargetsNamingThem) {
  for (const char* bad : {"", "unix:", "unix://relative", "unix-abstract:",
                          "localhost", "localhost:", "localhost:http",
                          "localhost:70000", ":80", "localhost:+80"}) {
    absl::Status status = ParseListenAddress(bad).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(status.message(), HasSubstr(std::string("'") + bad + "'"));
  }
}

// A listening socket at `path`; -1 on failure. The caller closes it.
int Listen(const fs::path& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, 1) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

TEST(PrepareUnixSocket, CreatesAMissingDirectoryPrivately) {
  TempDir tmp;
  const fs::path socket = tmp.path() / "run" / "vfio-migd" / "d.sock";
  ASSERT_TRUE(PrepareUnixSocket(socket).ok());
  ASSERT_TRUE(fs::is_directory(socket.parent_path()));
  const fs::perms perms = fs::status(socket.parent_path()).permissions();
  EXPECT_EQ(perms & fs::perms::others_all, fs::perms::none);
}

TEST(PrepareUnixSocket, RemovesAStaleSocket) {
  TempDir tmp;
  const fs::path socket = tmp.path() / "stale.sock";
  const int fd = Listen(socket);
  ASSERT_GE(fd, 0);
  ::close(fd);  // The file stays; nobody answers any more.
  ASSERT_TRUE(fs::exists(socket));
  absl::Status status = PrepareUnixSocket(socket);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_FALSE(fs::exists(socket));
}

TEST(PrepareUnixSocket, RefusesASocketSomeoneListensOn) {
  TempDir tmp;
  const fs::path socket = tmp.path() / "live.sock";
  const int fd = Listen(socket);
  ASSERT_GE(fd, 0);
  absl::Status status = PrepareUnixSocket(socket);
  ::close(fd);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("in use"));
  EXPECT_TRUE(fs::exists(socket));
}

TEST(PrepareUnixSocket, NeverRemovesAFileThatIsNotASocket) {
  TempDir tmp;
  const std::string file = tmp.WriteFile("precious", "data");
  absl::Status status = PrepareUnixSocket(file);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("not a socket"));
  EXPECT_TRUE(fs::exists(file));
}

TEST(RemoveUnixSocket, RemovesOnlyTheSocketItWasGiven) {
  TempDir tmp;
  const fs::path socket = tmp.path() / "s.sock";
  int fd = Listen(socket);
  ASSERT_GE(fd, 0);
  absl::StatusOr<SocketFileId> first = StatSocket(socket);
  ASSERT_TRUE(first.ok());
  ::close(fd);
  // A newer daemon replaced the file: the old id must not remove it.
  ASSERT_TRUE(fs::remove(socket));
  fd = Listen(socket);
  ASSERT_GE(fd, 0);
  absl::StatusOr<SocketFileId> second = StatSocket(socket);
  ASSERT_TRUE(second.ok());
  if (second->inode != first->inode) {
    RemoveUnixSocket(socket, *first);
    EXPECT_TRUE(fs::exists(socket));
  }
  RemoveUnixSocket(socket, *second);
  EXPECT_FALSE(fs::exists(socket));
  ::close(fd);
}

}  // namespace
}  // namespace vfiomig
