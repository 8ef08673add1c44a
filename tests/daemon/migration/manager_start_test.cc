// MigrationManager: what Start refuses before touching anything, and the
// resource bookkeeping (ids, history, Get/List/Watch/Cancel).
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/migration/migration_manager.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/migration/source_test_util.h"

namespace vfiomig {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::vfiomig::testing::TwoHostsTest;

constexpr char kSource[] = R"json({"devices": [
  {"id": "gpu0", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "1MiB"},
  {"id": "gpu1", "features": ["stop_copy", "p2p", "pre_copy"],
   "state_bytes": "1MiB"},
  {"id": "acc0", "features": ["stop_copy"], "state_bytes": "1MiB"}
]})json";

// Nothing listens on port 1: migrations there fail at Prepare, untouched.
constexpr char kNowhere[] = "127.0.0.1:1";

class ManagerStartTest : public TwoHostsTest {
 protected:
  void SetUp() override { SetUpHosts(kSource, "", Options()); }

  virtual MigrationOptions Options() {
    MigrationOptions options;
    options.default_deadlines.drain = absl::Milliseconds(4321);
    options.default_deadlines.arc = absl::Milliseconds(8765);
    return options;
  }

  absl::Status StartStatus(const v1::StartMigrationRequest& request) {
    return manager_->Start(request).status();
  }

  // Starts a migration that fails at Prepare and waits for its end.
  v1::Migration StartAndFinish(v1::StartMigrationRequest request) {
    absl::StatusOr<v1::Migration> m = manager_->Start(request);
    EXPECT_TRUE(m.ok()) << m.status();
    if (!m.ok()) return {};
    absl::StatusOr<std::unique_ptr<MigrationSubscription>> sub =
        manager_->Watch(m->id());
    EXPECT_TRUE(sub.ok());
    v1::MigrationEvent event;
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline &&
           (*sub)->Next(&event, absl::Seconds(1)) !=
               MigrationSubscription::Result::kEnded) {
    }
    return *manager_->Get(m->id());
  }
};

TEST_F(ManagerStartTest, RejectsMalformedRequestsBeforeTouchingAnything) {
  struct Case {
    std::string name;
    std::function<void(v1::StartMigrationRequest&)> mutate;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"no devices", [](auto& r) { r.clear_device_ids(); }, "empty"},
      {"too many",
       [](auto& r) {
         for (int i = 0; i < 300; ++i) r.add_device_ids(absl::StrCat("d", i));
       },
       "at most"},
      {"duplicate", [](auto& r) { r.add_device_ids("gpu0"); }, "twice"},
      {"bad id", [](auto& r) { r.add_device_ids("gpu 9"); }, "printable"},
      {"no destination", [](auto& r) { r.clear_destination(); }, "destination"},
      {"map key not in group",
       [](auto& r) { (*r.mutable_device_map())["acc0"] = "x"; }, "acc0"},
      {"two into one",
       [](auto& r) { (*r.mutable_device_map())["gpu0"] = "gpu1"; }, "'gpu1'"},
      {"bad map target",
       [](auto& r) { (*r.mutable_device_map())["gpu0"] = ""; }, "device_map"},
      {"policy",
       [](auto& r) { r.set_policy(static_cast<v1::DeadlinePolicy>(9)); },
       "policy"},
      {"deadline", [](auto& r) { r.set_drain_timeout_ms(4000000000u); },
       "24 h"},
      {"migration id", [](auto& r) { r.set_migration_id("no spaces"); },
       "migration_id"},
  };
  for (const Case& c : cases) {
    v1::StartMigrationRequest request = Request({"gpu0", "gpu1"}, kNowhere);
    c.mutate(request);
    const absl::Status status = StartStatus(request);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(status.message(), HasSubstr(c.message)) << c.name;
  }
  EXPECT_TRUE(manager_->List().empty());
  EXPECT_FALSE(source_leases_.Owner("gpu0").has_value());
}

TEST_F(ManagerStartTest, UnknownDevicesAreNotFoundByName) {
  const absl::Status status =
      StartStatus(Request({"gpu0", "nope1", "nope2"}, kNowhere));
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("nope1"));
  EXPECT_THAT(status.message(), HasSubstr("nope2"));
  EXPECT_FALSE(source_leases_.Owner("gpu0").has_value());
}

TEST_F(ManagerStartTest, BusyDeviceIsFailedPrecondition) {
  absl::StatusOr<Lease> held = source_leases_.Acquire({"gpu1"}, "m-other");
  ASSERT_TRUE(held.ok());
  const absl::Status status = StartStatus(Request({"gpu0", "gpu1"}, kNowhere));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("gpu1 is in migration m-other"));
  EXPECT_FALSE(source_leases_.Owner("gpu0").has_value());
}

TEST_F(ManagerStartTest, BlockedPlanIsFailedPreconditionWithTheReason) {
  const absl::Status status = StartStatus(Request({"gpu0", "acc0"}, kNowhere));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("acc0"));
  EXPECT_FALSE(source_leases_.Owner("gpu0").has_value());
  // The operator may accept the risk.
  v1::StartMigrationRequest request = Request({"gpu0", "acc0"}, kNowhere);
  request.mutable_plan_options()->set_allow_no_p2p(true);
  const v1::Migration m = StartAndFinish(request);
  EXPECT_EQ(m.outcome(), v1::MIGRATION_OUTCOME_FAILED);  // nobody listens
  EXPECT_THAT(m.warnings(), ::testing::Not(::testing::IsEmpty()));
}

TEST_F(ManagerStartTest, TheResourceStartsComplete) {
  v1::StartMigrationRequest request = Request({"gpu0", "gpu1"}, kNowhere);
  (*request.mutable_device_map())["gpu1"] = "gpu7";
  request.set_arc_timeout_ms(1234);
  request.set_policy(v1::DEADLINE_POLICY_MANDATORY);
  absl::StatusOr<v1::Migration> m = manager_->Start(request);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_THAT(m->id(), MatchesRegex("m-[0-9]{8}-[0-9]{6}-[0-9a-f]{6}"));
  EXPECT_EQ(m->role(), "source");
  EXPECT_EQ(m->peer(), kNowhere);
  EXPECT_EQ(m->outcome(), v1::MIGRATION_OUTCOME_IN_PROGRESS);
  EXPECT_EQ(m->policy(), v1::DEADLINE_POLICY_MANDATORY);
  EXPECT_EQ(m->drain_timeout_ms(), 4321u);  // the daemon's default
  EXPECT_EQ(m->arc_timeout_ms(), 1234u);
  ASSERT_EQ(m->devices_size(), 2);
  EXPECT_EQ(m->devices(0).target_device_id(), "gpu0");
  EXPECT_EQ(m->devices(1).target_device_id(), "gpu7");
  EXPECT_EQ(m->devices(1).state(), v1::DEVICE_STATE_RUNNING);
  EXPECT_GT(m->started_unix_ms(), 0);
}

TEST_F(ManagerStartTest, DuplicateIdIsAlreadyExistsEvenWhenFinished) {
  v1::StartMigrationRequest request = Request({"gpu0"}, kNowhere);
  request.set_migration_id("m-fixed");
  const v1::Migration first = StartAndFinish(request);
  EXPECT_EQ(first.id(), "m-fixed");
  EXPECT_EQ(first.outcome(), v1::MIGRATION_OUTCOME_FAILED);
  const absl::Status again = StartStatus(request);
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(again.message(), HasSubstr("m-fixed"));
}

TEST_F(ManagerStartTest, ListIsNewestFirstAndGetFindsEach) {
  const v1::Migration a = StartAndFinish(Request({"gpu0"}, kNowhere));
  const v1::Migration b = StartAndFinish(Request({"gpu1"}, kNowhere));
  const std::vector<v1::Migration> list = manager_->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id(), b.id());
  EXPECT_EQ(list[1].id(), a.id());
  EXPECT_EQ(manager_->Get(a.id())->devices(0).source_device_id(), "gpu0");
}

TEST_F(ManagerStartTest, UnknownIdsAreNotFound) {
  EXPECT_EQ(manager_->Get("m-x").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->Watch("m-x").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(manager_->Cancel("m-x", absl::Now()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ManagerStartTest, CancelOfAFinishedMigrationIsFailedPrecondition) {
  const v1::Migration m = StartAndFinish(Request({"gpu0"}, kNowhere));
  const absl::Status status =
      manager_->Cancel(m.id(), absl::Now() + absl::Seconds(1)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("FAILED"));
}

TEST_F(ManagerStartTest, ShutdownRefusesNewMigrations) {
  manager_->Shutdown();
  const absl::Status status = StartStatus(Request({"gpu0"}, kNowhere));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("shutting down"));
}

TEST_F(ManagerStartTest, IncomingMigrationsAreListedAfterOutgoingOnes) {
  v1::Migration incoming;
  incoming.set_id("m-in");
  incoming.set_role("destination");
  manager_->SetIncoming(IncomingMigrations{
      .list = [incoming] { return std::vector<v1::Migration>{incoming}; },
      .get =
          [incoming](const std::string& id) -> absl::StatusOr<v1::Migration> {
        if (id == incoming.id()) return incoming;
        return absl::NotFoundError("no");
      },
  });
  const v1::Migration out = StartAndFinish(Request({"gpu0"}, kNowhere));
  const std::vector<v1::Migration> list = manager_->List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id(), out.id());
  EXPECT_EQ(list[1].id(), "m-in");
  EXPECT_EQ(manager_->Get("m-in")->role(), "destination");
  EXPECT_EQ(manager_->Cancel("m-in", absl::Now()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(manager_->Get("m-nope").status().code(),
            absl::StatusCode::kNotFound);
}

class ManagerHistoryTest : public ManagerStartTest {
 protected:
  MigrationOptions Options() override {
    MigrationOptions options;
    options.history_limit = 2;
    return options;
  }
};

TEST_F(ManagerHistoryTest, KeepsOnlyTheNewestFinishedMigrations) {
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(StartAndFinish(Request({"gpu0"}, kNowhere)).id());
  }
  // Reaping happens on Start: one more brings the history to its bound.
  ids.push_back(StartAndFinish(Request({"gpu1"}, kNowhere)).id());
  const std::vector<v1::Migration> list = manager_->List();
  ASSERT_LE(list.size(), 3u);  // 2 finished + the one reaped next time
  EXPECT_EQ(list[0].id(), ids[4]);
  EXPECT_EQ(manager_->Get(ids[0]).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace vfiomig
