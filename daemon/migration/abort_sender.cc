#include "daemon/migration/abort_sender.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "daemon/migration/source_peer.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

constexpr absl::Duration kFirstBackoff = absl::Seconds(1);
constexpr absl::Duration kMaxBackoff = absl::Seconds(30);

}  // namespace

AbortSender::AbortSender(absl::Duration call_timeout)
    : call_timeout_(call_timeout), thread_([this] { Loop(); }) {}

AbortSender::~AbortSender() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

void AbortSender::Add(std::shared_ptr<MigrationJournal> row,
                      std::string destination,
                      std::shared_ptr<grpc::ChannelCredentials> credentials,
                      std::string reason) {
  Item item;
  item.id = row->entry().record.id();
  item.row = std::move(row);
  item.destination = std::move(destination);
  item.credentials = std::move(credentials);
  item.reason = std::move(reason);
  item.next_attempt = absl::Now();
  item.backoff = kFirstBackoff;
  spdlog::warn(
      "migration {}: the destination {} has not acknowledged the abort; "
      "retrying until it does",
      item.id, item.destination);
  absl::MutexLock lock(&mu_);
  items_.push_back(std::move(item));
}

size_t AbortSender::pending() const {
  absl::MutexLock lock(&mu_);
  return items_.size();
}

void AbortSender::Loop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    absl::Time next = absl::InfiniteFuture();
    for (const Item& item : items_) next = std::min(next, item.next_attempt);
    auto wake = [this]()
                    ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    // Also wakes up for items added meanwhile at most a second later.
    const absl::Time deadline = std::min(next, absl::Now() + absl::Seconds(1));
    if (mu_.AwaitWithDeadline(absl::Condition(&wake), deadline)) break;
    const absl::Time now = absl::Now();
    for (size_t i = 0; i < items_.size() && !stopping_;) {
      if (items_[i].next_attempt > now) {
        ++i;
        continue;
      }
      Item item = items_[i];
      mu_.Unlock();
      ++item.attempts;
      absl::StatusOr<v1::AbortResponse> response =
          PeerClient::Connect(item.destination, item.credentials)
              ->Abort(item.id, item.reason, call_timeout_);
      bool delivered = response.ok();
      if (delivered) {
        spdlog::info("migration {}: abort delivered to {} after {} attempts",
                     item.id, item.destination, item.attempts);
        delivered =
            item.row
                ->Update(
                    [](JournalEntry& e) { e.pending = PeerVerdict::kNone; },
                    Durability::kRelaxed)
                .ok();
      } else if (item.attempts == 1 || item.attempts % 10 == 0) {
        spdlog::warn(
            "migration {}: abort to {} not delivered ({} attempts): {}",
            item.id, item.destination, item.attempts,
            std::string(response.status().message()));
      }
      mu_.Lock();
      if (delivered) {
        items_.erase(items_.begin() + static_cast<ptrdiff_t>(i));
      } else {
        items_[i].attempts = item.attempts;
        items_[i].next_attempt = absl::Now() + items_[i].backoff;
        items_[i].backoff = std::min(items_[i].backoff * 2, kMaxBackoff);
        ++i;
      }
    }
  }
}

}  // namespace vfiomig
