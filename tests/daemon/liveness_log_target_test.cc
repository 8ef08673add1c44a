// The daemon's systemd edges that need no systemd: the watchdog's liveness
// probe against a real gRPC server, and the choice of the log target from
// $JOURNAL_STREAM (systemd.exec(5)).
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/liveness_probe.h"
#include "daemon/log_target.h"
#include "daemon/server.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/daemon/temp_dir.h"

namespace vfiomig {
namespace {

TEST(LivenessProbe, TheDaemonsServerIsServing) {
  testing::TempDir dir;
  const std::string target = "unix:" + (dir.path() / "s.sock").native();
  absl::StatusOr<std::unique_ptr<Server>> server = Server::Start({target}, {});
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_TRUE(CheckServing(*(*server)->grpc_server(), absl::Seconds(5)).ok());
  (*server)->Shutdown(absl::ZeroDuration());
}

// A server that is not SERVING: without a health service (UNIMPLEMENTED)
// or, once another test enabled gRPC's default one for the process, with
// it set to NOT_SERVING.
TEST(LivenessProbe, FailsWhenNotServing) {
  grpc::ServerBuilder builder;
  std::unique_ptr<grpc::Server> bare = builder.BuildAndStart();
  ASSERT_NE(bare, nullptr);
  if (bare->GetHealthCheckService() != nullptr) {
    bare->GetHealthCheckService()->SetServingStatus(false);
  }
  const absl::Status status = CheckServing(*bare, absl::Seconds(5));
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  bare->Shutdown();
}

class LogTargetTest : public ::testing::Test {
 protected:
  void TearDown() override { unsetenv("JOURNAL_STREAM"); }
  // "DEVICE:INODE" of the current stderr, as systemd sets it.
  static std::string StderrId() {
    struct stat st;
    EXPECT_EQ(fstat(STDERR_FILENO, &st), 0);
    return absl::StrCat(st.st_dev, ":", st.st_ino);
  }
};

TEST_F(LogTargetTest, ExplicitTargets) {
  setenv("JOURNAL_STREAM", StderrId().c_str(), 1);
  EXPECT_EQ(*ChooseLogTarget("stderr"), LogTarget::kStderr);
  unsetenv("JOURNAL_STREAM");
  EXPECT_EQ(*ChooseLogTarget("journal"), LogTarget::kJournal);
  absl::StatusOr<LogTarget> bad = ChooseLogTarget("syslog");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "unknown log target 'syslog' (auto, journal, stderr)");
}

TEST_F(LogTargetTest, AutoIsTheJournalOnlyWhenStderrIsIt) {
  EXPECT_EQ(*ChooseLogTarget("auto"), LogTarget::kStderr);
  setenv("JOURNAL_STREAM", StderrId().c_str(), 1);
  EXPECT_TRUE(StderrIsJournal());
  EXPECT_EQ(*ChooseLogTarget("auto"), LogTarget::kJournal);
  // Inherited by a service whose stderr was redirected elsewhere.
  setenv("JOURNAL_STREAM", "1:2", 1);
  EXPECT_EQ(*ChooseLogTarget("auto"), LogTarget::kStderr);
  setenv("JOURNAL_STREAM", "garbage", 1);
  EXPECT_EQ(*ChooseLogTarget("auto"), LogTarget::kStderr);
}

}  // namespace
}  // namespace vfiomig
