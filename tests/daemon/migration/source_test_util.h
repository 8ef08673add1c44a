// Two daemons' worth of migration machinery in one process, for the source
// side's tests: a source (sim devices, MigrationManager) and a destination
// (other sim devices, the real PeerService behind a real gRPC server on
// 127.0.0.1), each from its own JSON config.
#ifndef VFIOMIG_TESTS_DAEMON_MIGRATION_SOURCE_TEST_UTIL_H_
#define VFIOMIG_TESTS_DAEMON_MIGRATION_SOURCE_TEST_UTIL_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/inventory.h"
#include "daemon/migration/device_leases.h"
#include "daemon/migration/migration_manager.h"
#include "daemon/migration/migration_tracker.h"
#include "daemon/peer_service.h"
#include "daemon/server.h"
#include "gtest/gtest.h"
#include "plugins/registry.h"
#include "tests/daemon/migration/sim_inventory.h"
#include "tests/daemon/temp_dir.h"
#include "vfiomig/v1/control.pb.h"

namespace vfiomig::testing {

// Collects a migration's events on a thread of its own, as a watcher
// would.
class EventLog {
 public:
  explicit EventLog(std::unique_ptr<MigrationSubscription> subscription)
      : subscription_(std::move(subscription)), thread_([this] { Loop(); }) {}
  ~EventLog() {
    {
      absl::MutexLock lock(&mu_);
      quit_ = true;
    }
    thread_.join();
  }

  // True once the final event arrived (within `timeout`).
  bool WaitEnded(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&ended_), timeout);
  }
  // Waits until an event satisfies `pred`; returns it (or nullopt).
  template <typename Pred>
  std::optional<v1::MigrationEvent> WaitFor(Pred pred, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    const absl::Time deadline = absl::Now() + timeout;
    size_t seen = 0;
    for (;;) {
      for (; seen < events_.size(); ++seen) {
        if (pred(events_[seen])) return events_[seen];
      }
      if (ended_) return std::nullopt;
      auto more = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return events_.size() > seen || ended_;
      };
      if (!mu_.AwaitWithDeadline(absl::Condition(&more), deadline)) {
        return std::nullopt;
      }
    }
  }
  std::vector<v1::MigrationEvent> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  // When each event arrived.
  std::vector<absl::Time> times() {
    absl::MutexLock lock(&mu_);
    return times_;
  }
  // Distinct phases in event order (consecutive repeats collapsed).
  std::vector<v1::MigrationPhase> Phases() {
    std::vector<v1::MigrationPhase> phases;
    for (const v1::MigrationEvent& e : events()) {
      if (phases.empty() || phases.back() != e.migration().phase()) {
        phases.push_back(e.migration().phase());
      }
    }
    return phases;
  }

 private:
  void Loop() {
    for (;;) {
      {
        absl::MutexLock lock(&mu_);
        if (quit_) return;
      }
      v1::MigrationEvent event;
      switch (subscription_->Next(&event, absl::Milliseconds(50))) {
        case MigrationSubscription::Result::kEvent: {
          absl::MutexLock lock(&mu_);
          events_.push_back(std::move(event));
          times_.push_back(absl::Now());
          break;
        }
        case MigrationSubscription::Result::kEnded: {
          absl::MutexLock lock(&mu_);
          ended_ = true;
          return;
        }
        case MigrationSubscription::Result::kTimeout:
          break;
      }
    }
  }

  std::unique_ptr<MigrationSubscription> subscription_;
  absl::Mutex mu_;
  std::vector<v1::MigrationEvent> events_ ABSL_GUARDED_BY(mu_);
  std::vector<absl::Time> times_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool quit_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

class TwoHostsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    // The manager first: it rolls back what still runs, talking to the
    // destination, which must still be up.
    manager_.reset();
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(2));
    server_.reset();
    peer_.reset();
  }

  // Builds both sides. `destination` empty: no destination daemon.
  void SetUpHosts(const std::string& source_json,
                  const std::string& destination_json,
                  MigrationOptions options = {}) {
    source_ = SimInventory(dir_, "source.json", source_json);
    ASSERT_NE(source_, nullptr);
    if (!destination_json.empty()) {
      destination_ = SimInventory(dir_, "destination.json", destination_json);
      ASSERT_NE(destination_, nullptr);
      peer_ = std::make_unique<PeerService>(destination_.get(),
                                            &destination_leases_);
      const HostedService services[] = {
          {v1::PeerService::service_full_name(), peer_.get()}};
      const std::string listen[] = {"127.0.0.1:0"};
      absl::StatusOr<std::unique_ptr<Server>> server =
          Server::Start(listen, services, ServerOptions::Plaintext());
      ASSERT_TRUE(server.ok()) << server.status();
      server_ = *std::move(server);
      endpoint_ = server_->endpoints().at(0);
    }
    options.source_host = "source-host";
    options.transport = TransportSecurity::Plaintext();  // 127.0.0.1
    manager_ = std::make_unique<MigrationManager>(source_.get(),
                                                  &source_leases_, options);
  }

  static v1::StartMigrationRequest Request(const std::vector<std::string>& ids,
                                           const std::string& destination) {
    v1::StartMigrationRequest request;
    for (const std::string& id : ids) request.add_device_ids(id);
    request.set_destination(destination);
    return request;
  }

  // Starts a migration and watches it from the start.
  std::unique_ptr<EventLog> StartAndWatch(
      const v1::StartMigrationRequest& request, v1::Migration* started) {
    absl::StatusOr<v1::Migration> migration = manager_->Start(request);
    EXPECT_TRUE(migration.ok()) << migration.status();
    if (!migration.ok()) return nullptr;
    *started = *migration;
    absl::StatusOr<std::unique_ptr<MigrationSubscription>> subscription =
        manager_->Watch(migration->id());
    EXPECT_TRUE(subscription.ok()) << subscription.status();
    if (!subscription.ok()) return nullptr;
    return std::make_unique<EventLog>(*std::move(subscription));
  }

  static DeviceState StateOf(const Inventory& inventory,
                             const std::string& id) {
    absl::StatusOr<std::shared_ptr<Device>> device = inventory.Find(id);
    if (!device.ok()) return DeviceState::ERROR;
    absl::StatusOr<DeviceState> state = (*device)->GetState();
    return state.ok() ? *state : DeviceState::ERROR;
  }

  // Waits until every listed device of `inventory` is in `state`.
  static bool WaitAllIn(const Inventory& inventory,
                        const std::vector<std::string>& ids, DeviceState state,
                        absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      bool all = true;
      for (const std::string& id : ids) all &= StateOf(inventory, id) == state;
      if (all) return true;
      if (absl::Now() > deadline) return false;
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  static std::string DigestOf(const Inventory& inventory,
                              const std::string& id) {
    absl::StatusOr<std::shared_ptr<Device>> device = inventory.Find(id);
    if (!device.ok()) return "no device";
    absl::StatusOr<std::string> digest = (*device)->ContentDigest();
    return digest.ok() ? *digest : digest.status().ToString();
  }

  TempDir dir_;
  std::unique_ptr<Inventory> source_;
  std::unique_ptr<Inventory> destination_;
  DeviceLeases source_leases_;
  DeviceLeases destination_leases_;
  std::unique_ptr<PeerService> peer_;
  std::unique_ptr<Server> server_;
  std::string endpoint_;
  std::unique_ptr<MigrationManager> manager_;
};

}  // namespace vfiomig::testing

#endif  // VFIOMIG_TESTS_DAEMON_MIGRATION_SOURCE_TEST_UTIL_H_
