// DestinationRegistry: the incoming migrations of this daemon, by id.
//
// The destination side of the peer protocol (api/vfiomig/v1/peer.proto)
// without gRPC: PeerService (daemon/peer_service.h) validates request sizes
// and maps statuses; everything else happens here and in
// DestinationMigration (destination_migration.h).
//
//  - Prepare checks every device before touching any, leases the targets,
//    runs the destination waves up to RESUMING and keeps the resume data
//    sessions. A refusal touches nothing and is an OK result with
//    ready=false and per-device verdicts (a sync gRPC handler cannot send a
//    response with an error status).
//  - OpenStream gives the transport one IncomingStream per device.
//  - Commit resumes every device to RUNNING; Abort rolls every device back.
//  - A migration whose source goes quiet (no Commit/Abort within
//    DestinationOptions::abort_timeout while no stream is open) is aborted
//    by a watchdog thread; a broken stream aborts its migration at once.
//
// Finished migrations (committed, aborted, refused) are kept, the last
// DestinationOptions::history_limit of them, for List/Get.
//
// Thread-safe. `inventory` and `leases` must outlive the registry. The
// destructor aborts the migrations still in progress (their devices go back
// to RUNNING) and must run after the transport stopped calling in.
#ifndef VFIOMIG_DAEMON_MIGRATION_DESTINATION_REGISTRY_H_
#define VFIOMIG_DAEMON_MIGRATION_DESTINATION_REGISTRY_H_

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/inventory.h"
#include "daemon/migration/destination_options.h"
#include "daemon/migration/destination_stream.h"
#include "daemon/migration/device_leases.h"
#include "vfiomig/v1/control.pb.h"
#include "vfiomig/v1/peer.pb.h"

namespace vfiomig {

class DestinationMigration;

class DestinationRegistry {
 public:
  DestinationRegistry(const Inventory* inventory, DeviceLeases* leases,
                      DestinationOptions options);
  ~DestinationRegistry();

  DestinationRegistry(const DestinationRegistry&) = delete;
  DestinationRegistry& operator=(const DestinationRegistry&) = delete;

  // InvalidArgument for a malformed request (destination_request.h
  // ValidatePrepareRequest); AlreadyExists while a migration with that id
  // is in progress. Otherwise OK: ready=true once every target is in
  // RESUMING, or ready=false with verdicts (and `error`) when a device was
  // refused or a wave failed and was rolled back.
  absl::StatusOr<v1::PrepareResponse> Prepare(
      const v1::PrepareRequest& request);

  // The stream of `target_device_id` in a prepared migration. NotFound for
  // an unknown migration or a device not in it; FailedPrecondition when the
  // migration is not receiving (finished, aborted, committing) or the
  // device already has a stream (the first one is unaffected).
  absl::StatusOr<std::unique_ptr<IncomingStream>> OpenStream(
      const std::string& migration_id, const std::string& target_device_id);

  // RESUMING -> STOP for every device and the durable "loaded" record
  // (PROTOCOL.md). NotFound for an unknown id, FailedPrecondition for a
  // migration that is not receiving any more. Any failure, including a
  // stream that has not ended, rolls the migration back and returns the
  // error with every device's final state in the message.
  absl::StatusOr<v1::LoadResponse> Load(const std::string& migration_id);

  // Records the commit and resumes every device (STOP -> RUNNING_P2P ->
  // RUNNING), never rolling back after that record. Idempotent: a
  // migration committed earlier (also before a restart) answers with its
  // final states. NotFound for an unknown id, FailedPrecondition for a
  // migration that ended without a commit (the message says how).
  absl::StatusOr<v1::CommitResponse> Commit(const std::string& migration_id);

  // Rolls every device back to RUNNING and forgets the data. Idempotent:
  // for a finished migration it returns the recorded final states, for an
  // unknown id no devices.
  v1::AbortResponse Abort(const std::string& migration_id,
                          const std::string& reason);

  // Incoming migrations, in progress first (by id), then finished ones,
  // newest first; role "destination", peer = the source host.
  std::vector<v1::Migration> List() const;
  // NotFound when neither in progress nor in the history.
  absl::StatusOr<v1::Migration> Get(const std::string& migration_id) const;
  // Migrations in progress (prepared or preparing, not finished).
  size_t active() const;

  // Finished incoming migrations of earlier lives of the daemon (from the
  // journal), newest first. Before the registry serves calls.
  void LoadHistory(std::vector<v1::Migration> finished);

  // Crash recovery of an unfinished journal entry (role destination):
  // leases its devices and continues it (DestinationMigration::Recover) on
  // a thread of its own; the migration is listed, and Commit and Abort for
  // it wait, from this call on. An error (a device this daemon does not
  // manage any more, a lease conflict) leaves the journal row for a later
  // start. Before the registry serves calls.
  absl::Status Recover(const JournalEntry& entry);

 private:
  // Called by a migration when it finishes (any thread, no lock held).
  void OnFinished(const std::string& id);
  absl::StatusOr<std::shared_ptr<DestinationMigration>> FindLive(
      const std::string& id) const;
  void RecordFinished(v1::Migration record);
  // A Prepare refused before it touched anything: journal and history.
  void RecordRefused(v1::Migration record);
  void WatchdogLoop();

  const Inventory* inventory_;
  DeviceLeases* leases_;
  const DestinationOptions options_;

  mutable absl::Mutex mu_;
  // nullptr while Prepare validates the id's request (reserves the id).
  std::map<std::string, std::shared_ptr<DestinationMigration>> live_
      ABSL_GUARDED_BY(mu_);
  // Aborts that came while Prepare still validated the id (id -> reason).
  std::map<std::string, std::string> aborted_while_reserved_
      ABSL_GUARDED_BY(mu_);
  // Newest at the front.
  std::deque<v1::Migration> history_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watchdog_;
  // Recover()'s threads; joined by the destructor.
  std::vector<std::thread> recoveries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_MIGRATION_DESTINATION_REGISTRY_H_
