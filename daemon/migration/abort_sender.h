// AbortSender: delivers the Aborts a source could not get through.
//
// A destination that answered Load holds the group's state, stopped, until
// the source's verdict comes (PROTOCOL.md): it must not time out, because
// the source may have committed. So when a source fails before its commit
// point and its Abort call does not get through (the destination is down,
// the link is cut), the verdict must still arrive. The migration records
// `pending = abort` in its journal row and hands it here; this thread
// retries with backoff (1 s, doubling, at most 30 s) on a fresh connection
// each time until the destination answers, then clears the row's pending
// verdict. Rows still pending when the daemon stops are picked up from the
// journal at the next start (Journal::PendingVerdicts).
//
// Thread-safe. The destructor stops retrying (pending rows stay pending).
#ifndef VFIOMIG_DAEMON_MIGRATION_ABORT_SENDER_H_
#define VFIOMIG_DAEMON_MIGRATION_ABORT_SENDER_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/migration/migration_journal.h"
#include "grpcpp/security/credentials.h"

namespace vfiomig {

class AbortSender {
 public:
  // `call_timeout`: deadline of each Abort call.
  explicit AbortSender(absl::Duration call_timeout);
  ~AbortSender();

  AbortSender(const AbortSender&) = delete;
  AbortSender& operator=(const AbortSender&) = delete;

  // Delivers an Abort of `row`'s migration to `destination` (a gRPC
  // target), then records the verdict as delivered in `row`.
  // `credentials` dial it (TransportSecurity).
  void Add(std::shared_ptr<MigrationJournal> row, std::string destination,
           std::shared_ptr<grpc::ChannelCredentials> credentials,
           std::string reason);

  // Aborts not delivered yet.
  size_t pending() const;

 private:
  struct Item {
    std::shared_ptr<MigrationJournal> row;
    std::string id;
    std::string destination;
    std::shared_ptr<grpc::ChannelCredentials> credentials;
    std::string reason;
    absl::Time next_attempt;
    absl::Duration backoff;
    int attempts = 0;
  };

  void Loop();

  const absl::Duration call_timeout_;
  mutable absl::Mutex mu_;
  std::vector<Item> items_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_ABORT_SENDER_H_
