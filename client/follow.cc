#include "client/follow.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vfiomig::cli {
namespace {

// How often a watch that ends before its migration is re-opened before the
// CLI gives up (each time the daemon must still know the migration).
constexpr int kMaxReattach = 5;

}  // namespace

Follower::Follower(const ControlClient* client,
                   std::unique_ptr<ProgressView> view, InterruptAction action,
                   absl::Duration rollback_grace)
    : client_(client),
      start_(std::chrono::steady_clock::now()),
      action_(action),
      rollback_grace_(rollback_grace),
      view_(std::move(view)) {}

Follower::~Follower() {
  {
    absl::MutexLock lock(&mu_);
    run_done_ = true;  // in case Run never ran
  }
  if (grace_thread_.joinable()) grace_thread_.join();
  if (!cancel_thread_.joinable()) return;
  // A cancel still waiting for its answer is moot once we are leaving (the
  // daemon rolls back either way), but one that was only just sent must
  // get the time to reach the daemon first.
  for (int i = 0; i < 20 && !cancel_done_; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  cancel_context_.TryCancel();
  cancel_thread_.join();
}

double Follower::Now() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                       start_)
      .count();
}

void Follower::FinishView() {
  absl::MutexLock lock(&mu_);
  if (view_ != nullptr) view_->Finish(Now());
}

void Follower::Note(std::string_view line) {
  absl::MutexLock lock(&mu_);
  NoteLocked(line);
}

void Follower::NoteLocked(std::string_view line) {
  if (view_ != nullptr) {
    view_->Note(line, Now());
  } else {
    PrintError(absl::string_view(line.data(), line.size()));
  }
}

bool Follower::cancel_requested() const {
  absl::MutexLock lock(&mu_);
  return cancel_requested_;
}

void Follower::SetMigrationId(const std::string& id) {
  absl::MutexLock lock(&mu_);
  id_ = id;
  if (cancel_pending_) StartCancelLocked();
}

void Follower::StartCancelLocked() {
  cancel_pending_ = false;
  if (cancel_requested_) return;
  cancel_requested_ = true;
  NoteLocked(absl::StrCat("interrupted: cancelling migration ", id_,
                          " and waiting for the rollback (Ctrl-C again to "
                          "stop waiting)"));
  const std::string id = id_;
  cancel_thread_ = std::thread([this, id] {
    absl::StatusOr<v1::Migration> result =
        client_->CancelMigration(id, &cancel_context_);
    // The watch reports the outcome; only a refusal needs saying here
    // (typically: the migration ended before the request arrived).
    if (!result.ok() && !absl::IsCancelled(result.status())) {
      absl::MutexLock lock(&mu_);
      NoteLocked(absl::StrCat("cancel: ", result.status().message()));
    }
    cancel_done_ = true;
  });
}

void Follower::OnInterrupt(int count) {
  absl::MutexLock lock(&mu_);
  if (count == 1 && action_ == InterruptAction::kCancel) {
    if (id_.empty()) {
      // StartMigration has not answered yet: cancel once we know the id.
      cancel_pending_ = true;
      NoteLocked("interrupted: will cancel as soon as the migration starts");
    } else {
      StartCancelLocked();
    }
    return;
  }
  detached_ = true;
  if (watch_ != nullptr) watch_->Cancel();
}

void Follower::StartGraceTimerLocked() {
  if (grace_thread_.joinable()) return;
  grace_thread_ = std::thread([this] {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&run_done_), rollback_grace_)) {
      gave_up_ = true;
      if (watch_ != nullptr) watch_->Cancel();
    }
  });
}

absl::StatusOr<FollowResult> Follower::Run() {
  std::string id;
  {
    absl::MutexLock lock(&mu_);
    id = id_;
  }
  // Whatever way Run ends, the grace timer must stop waiting for it.
  struct Done {
    Follower* self;
    ~Done() {
      absl::MutexLock lock(&self->mu_);
      self->run_done_ = true;
    }
  } done{this};

  std::optional<v1::Migration> last;
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<std::unique_ptr<MigrationWatch>> watch =
        client_->WatchMigration(id);
    if (!watch.ok()) return watch.status();
    {
      absl::MutexLock lock(&mu_);
      if (detached_) return absl::CancelledError("stopped waiting");
      if (gave_up_ && last.has_value()) {
        return FollowResult{*last, /*rollback_pending=*/true};
      }
      watch_ = watch->get();
    }
    v1::MigrationEvent event;
    while ((*watch)->Read(&event)) {
      absl::MutexLock lock(&mu_);
      if (view_ != nullptr) view_->OnEvent(event, Now());
      last = event.migration();
      if (FailureDecided(*last)) StartGraceTimerLocked();
    }
    bool detached;
    bool gave_up;
    {
      absl::MutexLock lock(&mu_);
      watch_ = nullptr;
      detached = detached_;
      gave_up = gave_up_;
    }
    const absl::Status status = (*watch)->Finish();
    if (last.has_value() && IsFinal(*last)) return FollowResult{*last, false};
    if (detached) return absl::CancelledError("stopped waiting");
    if (gave_up && last.has_value()) return FollowResult{*last, true};
    if (absl::IsNotFound(status) || absl::IsInvalidArgument(status) ||
        absl::IsUnimplemented(status)) {
      return status;
    }
    // The stream ended before the migration did. Ask where it stands: a
    // migration that ended meanwhile has its final state; one that still
    // runs gets a new watch.
    absl::StatusOr<v1::Migration> current = client_->GetMigration(id);
    if (current.ok() && IsFinal(*current)) return FollowResult{*current, false};
    if (!current.ok()) {
      return absl::Status(current.status().code(),
                          absl::StrCat("lost track of migration ", id, ": ",
                                       status.ok() ? current.status().message()
                                                   : status.message()));
    }
    last = *current;
    if (attempt + 1 >= kMaxReattach) {
      return absl::UnavailableError(absl::StrCat(
          "the watch of migration ", id, " keeps ending early (last: ",
          status.ok() ? "closed" : status.message(),
          "); it is still running: try `vfio-migctl watch ", id, "`"));
    }
    absl::SleepFor(absl::Milliseconds(200 << attempt));
  }
}

PeerStates QueryPeerStates(const v1::Migration& migration,
                           const std::string& target,
                           const GlobalOptions& global) {
  PeerStates peer;
  // A destination's resource already describes the destination; the
  // source host it names need not run a daemon we may reach.
  if (migration.role() == "destination" || target.empty()) return peer;
  GlobalOptions options = global;
  options.server = target;
  options.timeout_seconds = std::min(global.timeout_seconds, 3.0);
  absl::StatusOr<ControlClient> client = ControlClient::Create(options);
  if (!client.ok()) {
    peer.unknown_reason = std::string(client.status().message());
    return peer;
  }
  absl::StatusOr<v1::ListDevicesResponse> devices = client->ListDevices();
  if (!devices.ok()) {
    peer.unknown_reason = std::string(devices.status().message());
    return peer;
  }
  peer.known = true;
  for (const v1::Device& device : devices->devices()) {
    peer.states[device.id()] = DeviceStateLabel(device);
  }
  return peer;
}

int TerminalColumns() {
  winsize size{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
    return size.ws_col;
  }
  return 100;
}

int ReportFinal(const FollowResult& result, const PeerStates& peer,
                bool cancelled, bool json, std::ostream& out) {
  const v1::Migration& migration = result.migration;
  if (json) {
    Json object = MigrationToJson(migration, &peer);
    if (result.rollback_pending) object["rollback_pending"] = true;
    PrintJson(out, object);
  } else {
    out << '\n';
    RenderMigrationSummary(migration, &peer, out);
    if (result.rollback_pending) {
      out << "\nThe rollback is still running: some device's arc has not "
             "returned\n(a hung drain?); each device is rolled back as soon "
             "as its arc\nreturns. `vfio-migctl watch "
          << migration.id() << "` follows it to the end.\n";
    }
  }
  out.flush();
  if (migration.outcome() != v1::MIGRATION_OUTCOME_SUCCEEDED) {
    PrintError(FailureLine(migration));
  }
  if (result.rollback_pending) {
    return cancelled ? kExitMigrationCancelled : kExitMigrationFailed;
  }
  return ExitCodeFor(migration, &peer);
}

}  // namespace vfiomig::cli
