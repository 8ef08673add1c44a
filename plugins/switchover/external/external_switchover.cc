// The `external` switchover action: the control plane pauses the VM itself
// and says so with the Switchover RPC (`vfio-migctl switchover ID`).
//
// Pause waits until that call (Proceed) arrives, the migration is
// cancelled, or SwitchoverContext::timeout passes; the last two fail the
// switchover, and the migration rolls back with nothing stopped. A call
// that comes before the migration reaches its switchover point is
// remembered (the control plane may pause early), one that comes after
// Pause returned is refused. Resume and Start have nothing to do: the
// control plane watches the migration's outcome and resumes the VM on the
// side where it should run.
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "daemon/migration/switchover.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

class ExternalSwitchover final : public SwitchoverAction {
 public:
  std::string_view name() const override { return "external"; }

  absl::Status Pause(const SwitchoverContext& context) override {
    spdlog::info(
        "migration {}: waiting up to {} ms for the Switchover call (the "
        "control plane pauses the VM{})",
        context.migration_id, absl::ToInt64Milliseconds(context.timeout),
        context.domain.empty() ? "" : " " + context.domain);
    const absl::Time deadline = absl::Now() + context.timeout;
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return proceeded_ || cancelled_;
    };
    mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
    passed_ = true;
    if (proceeded_) return absl::OkStatus();
    if (cancelled_) {
      return absl::CancelledError("cancelled while waiting for Switchover");
    }
    return absl::DeadlineExceededError(
        absl::StrCat("no Switchover call within ",
                     absl::ToInt64Milliseconds(context.timeout), " ms"));
  }

  absl::Status Resume(const SwitchoverContext& context) override {
    spdlog::info(
        "migration {}: rolled back; the control plane resumes the VM on the "
        "source",
        context.migration_id);
    return absl::OkStatus();
  }

  absl::Status Proceed() override {
    absl::MutexLock lock(&mu_);
    if (passed_) {
      return absl::FailedPreconditionError(
          proceeded_ ? "the switchover was already given"
                     : "the switchover point has passed (deadline or "
                       "cancel); the migration rolls back");
    }
    proceeded_ = true;
    return absl::OkStatus();
  }

  void Cancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }

 private:
  absl::Mutex mu_;
  bool proceeded_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  // Pause has returned: later calls change nothing.
  bool passed_ ABSL_GUARDED_BY(mu_) = false;
};

const SwitchoverRegistration kRegistration(
    "external", []() -> absl::StatusOr<std::unique_ptr<SwitchoverAction>> {
      return std::make_unique<ExternalSwitchover>();
    });

}  // namespace
}  // namespace vfiomig
