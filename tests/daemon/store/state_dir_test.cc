#include "daemon/store/state_dir.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/daemon/store/store_test_util.h"

namespace vfiomig {
namespace {

TEST(StateDirTest, CreatesAPrivateDirectory) {
  TempDir tmp;
  const auto path = tmp.path() / "a" / "state";
  absl::StatusOr<std::unique_ptr<StateDir>> dir = StateDir::Open(path);
  ASSERT_TRUE(dir.ok()) << dir.status();
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST(StateDirTest, SecondHolderIsRefusedUntilTheFirstLetsGo) {
  TempDir tmp;
  absl::StatusOr<std::unique_ptr<StateDir>> first = StateDir::Open(tmp.path());
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<StateDir>> second = StateDir::Open(tmp.path());
  ASSERT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find(
                absl::StrCat("in use by another vfio-migd (pid ", getpid())),
            std::string::npos)
      << second.status();
  first->reset();
  EXPECT_TRUE(StateDir::Open(tmp.path()).ok());
}

TEST(StateDirTest, LockDiesWithItsProcess) {
  TempDir tmp;
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto dir = StateDir::Open(tmp.path());
    if (!dir.ok()) _exit(1);
    raise(SIGKILL);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_TRUE(StateDir::Open(tmp.path()).ok());
}

TEST(StateDirTest, AFileIsNotADirectory) {
  TempDir tmp;
  const auto path = tmp.path() / "file";
  std::ofstream(path) << "x";
  EXPECT_EQ(StateDir::Open(path).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace vfiomig
