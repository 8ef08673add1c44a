#include "daemon/engine/device_worker.h"

#include <exception>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "daemon/engine/thread_name.h"
#include "daemon/engine/thread_pool.h"
#include "daemon/metrics/metrics.h"

namespace vfiomig {
namespace {

// What the worker learned from one call; published into the DeviceCall
// under the mutex.
struct Outcome {
  absl::Status status;
  std::unique_ptr<DataSession> session;
  absl::StatusOr<DeviceState> state = absl::UnknownError("state not read");
};

Outcome Execute(Device& device, const DeviceCall& call) {
  Outcome out;
  switch (call.kind) {
    case CallKind::kSetState: {
      absl::StatusOr<std::unique_ptr<DataSession>> session =
          device.SetState(call.to);
      if (session.ok()) {
        out.session = *std::move(session);
      } else {
        out.status = session.status();
        // A failed SET leaves the device in its old state or in ERROR; the
        // caller acts on which, so read it now, before anything else runs.
        out.state = device.GetState();
      }
      break;
    }
    case CallKind::kGetState:
      out.state = device.GetState();
      out.status = out.state.status();
      break;
    case CallKind::kReset:
      out.status = device.Reset();
      out.state = device.GetState();
      break;
  }
  return out;
}

// What one returned call tells the metrics: an arc's duration (also of an
// arc whose poster stopped waiting at its deadline: the device's own
// time), and the state the device is now known to be in.
void Report(const std::string& device, const std::string& driver,
            const DeviceCall& call, const Outcome& out, absl::Time finished) {
  MetricsSink& metrics = Metrics();
  if (call.kind == CallKind::kSetState) {
    metrics.ArcFinished(driver, call.from, call.to, finished - call.started,
                        out.status.ok());
    if (out.status.ok()) {
      metrics.DeviceStateKnown(device, call.to);
      return;
    }
  }
  if (out.state.ok()) metrics.DeviceStateKnown(device, *out.state);
}

// Backends report errors as statuses; an exception from one must still not
// take the daemon down from a worker thread.
Outcome ExecuteNoThrow(Device& device, const DeviceCall& call) {
  try {
    return Execute(device, call);
  } catch (const std::exception& e) {
    Outcome out;
    out.status = absl::InternalError(
        absl::StrCat("backend threw during ", call.Describe(), ": ", e.what()));
    return out;
  } catch (...) {
    Outcome out;
    out.status = absl::InternalError(
        absl::StrCat("backend threw during ", call.Describe()));
    return out;
  }
}

}  // namespace

std::string DeviceCall::Describe() const {
  switch (kind) {
    case CallKind::kSetState:
      return ArcName(from, to);
    case CallKind::kGetState:
      return "GET";
    case CallKind::kReset:
      return "RESET";
  }
  return "?";
}

absl::Duration DeviceCall::Elapsed(absl::Time now) const {
  return (done ? finished : now) - started;
}

std::string Millis(absl::Duration d) {
  return absl::StrCat(absl::ToInt64Milliseconds(d), " ms");
}

DeviceWorker::DeviceWorker(std::string id, std::shared_ptr<Device> device,
                           absl::Mutex* mu)
    : id_(std::move(id)), device_(std::move(device)), mu_(mu) {
  // Set before the loop can end. A thread that cannot start throws, as a
  // std::thread of our own would.
  looping_ = true;
  WorkerThreads().Run([this] { Loop(); });
}

DeviceWorker::~DeviceWorker() {
  absl::MutexLock lock(mu_);
  stopping_ = true;
  // The loop's last act is clearing looping_ under the lock; after that its
  // thread touches nothing of ours and goes back to the pool.
  mu_->Await(absl::Condition(
      +[](bool* looping) { return !*looping; }, &looping_));
}

bool DeviceWorker::Idle() const {
  return queue_.empty() && current_ == nullptr;
}

std::shared_ptr<const DeviceCall> DeviceWorker::Current() const {
  return current_;
}

void DeviceWorker::Post(std::shared_ptr<DeviceCall> call) {
  queue_.push_back(std::move(call));
}

void DeviceWorker::Loop() {
  NameThisThread(ThreadName("dw:", id_));
  auto has_work = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(*mu_) {
    return stopping_ || !queue_.empty();
  };
  mu_->Lock();
  while (true) {
    mu_->Await(absl::Condition(&has_work));
    if (queue_.empty()) break;  // stopping, and nothing left to run
    current_ = std::move(queue_.front());
    queue_.pop_front();
    std::shared_ptr<DeviceCall> call = current_;
    mu_->Unlock();

    Outcome out = ExecuteNoThrow(*device_, *call);
    const absl::Time finished = absl::Now();
    Report(id_, device_->info().driver, *call, out, finished);

    mu_->Lock();
    call->status = std::move(out.status);
    call->session = std::move(out.session);
    call->state = std::move(out.state);
    call->finished = finished;
    call->done = true;
    current_ = nullptr;
    mu_->Unlock();
    // Dropped outside the lock: when the poster has stopped waiting, this is
    // the last reference, and a session's destructor may call the backend.
    call.reset();
    mu_->Lock();
  }
  looping_ = false;
  mu_->Unlock();
}

}  // namespace vfiomig
