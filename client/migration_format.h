// Rendering of migration resources: names, the documented JSON shape, the
// final summary (which on failure names the device, the arc and the state
// every device was left in), the `migrations` table and the pieces of the
// live progress view. Pure functions of their inputs, so tests build protos
// by hand and compare text.
#ifndef VFIOMIG_CLIENT_MIGRATION_FORMAT_H_
#define VFIOMIG_CLIENT_MIGRATION_FORMAT_H_

#include <cstdint>
#include <map>
#include <ostream>
#include <string>

#include "client/output.h"
#include "vfiomig/v1/control.pb.h"

namespace vfiomig::cli {

// Device states on the side a migration resource does not describe. The
// source daemon's resource carries its own devices' states; the CLI asks the
// destination daemon for the others, which can fail (it may be the thing
// that died).
struct PeerStates {
  // False when the peer could not be asked; `unknown_reason` says why.
  bool known = false;
  std::string unknown_reason;
  // Peer device id -> kernel state name ("RUNNING").
  std::map<std::string, std::string> states;
};

// "PRE_COPY", "SUCCEEDED", "sla": the enum names without their prefix
// (policies in the lower case the --policy flag takes). Unset values read
// "UNSPECIFIED" (policy: "sla", the daemon's meaning of unset).
std::string PhaseName(v1::MigrationPhase phase);
std::string OutcomeName(v1::MigrationOutcome outcome);
std::string PolicyName(v1::DeadlinePolicy policy);

bool IsFinal(const v1::Migration& migration);
// True once a migration has failed or been cancelled but is still rolling
// back (not final yet).
bool FailureDecided(const v1::Migration& migration);

// The state name of a migration's device as the resource reports it.
std::string MigrationDeviceState(const v1::MigrationDevice& device);

// The documented JSON object: id, role, peer, outcome, phase, policy,
// domain, switchover,
// drain_timeout_ms, arc_timeout_ms, devices [{device, target, source_state,
// destination_state, bytes_sent, bytes_total, pre_copy_bytes,
// stop_copy_bytes, pre_copy_rounds, was_reset, error}], bytes_sent,
// bytes_total, downtime_ms, downtime_us, predicted_downtime_ms, throughput_mib_s, error,
// failed_device, failed_arc, warnings, started_unix_ms, finished_unix_ms,
// duration_ms. A state the CLI does not know is left out rather than
// guessed; `destination_unknown_reason` then says why.
Json MigrationToJson(const v1::Migration& migration,
                     const PeerStates* peer = nullptr);

// The human report printed when a migration ends: outcome, what failed
// (device and arc), bytes, throughput, downtime, the per-device table with
// the state each device was left in on both sides, and warnings.
void RenderMigrationSummary(const v1::Migration& migration,
                            const PeerStates* peer, std::ostream& out);

// One line for stderr when a migration did not succeed: "migration m1
// FAILED: <error> (device gpu1, arc RUNNING>RUNNING_P2P); rolled back".
std::string FailureLine(const v1::Migration& migration);

// ID, ROLE, OUTCOME, PHASE, DEVICES, BYTES, DOWNTIME, STARTED.
// Where the group runs, for the table: "source", "destination",
// "destination (committing)" after the commit point, "-" before it or when
// unknown; ", recovered" when crash recovery finished it.
std::string RunsOn(const v1::Migration& migration);

void RenderMigrationTable(const v1::ListMigrationsResponse& response,
                          std::ostream& out);

// "[#######.....]" with `width` cells between the brackets; the fraction is
// clamped to [0, 1] (totals are estimates and may be overtaken) and an
// unknown (0) total draws an empty bar.
std::string ProgressBar(uint64_t done, uint64_t total, int width);
// "48.0/64.0 MiB": both in the total's unit. Without a total, just the
// bytes done.
std::string ByteRatio(uint64_t done, uint64_t total);
// "412.0 MiB/s".
std::string HumanRate(double bytes_per_second);
// Milliseconds as "850 ms" below 10 s, else "12.3 s".
std::string HumanMillis(uint64_t ms);

// True when some device is known to be left in a state it should not be in
// once the migration ended: after success, a source device not STOP or a
// destination device not RUNNING; after failure or cancel, any device not
// RUNNING. Unknown states do not count.
bool DevicesNeedAttention(const v1::Migration& migration,
                          const PeerStates* peer);

// The exit code for a migration that ended (see common.h).
int ExitCodeFor(const v1::Migration& migration, const PeerStates* peer);

}  // namespace vfiomig::cli

#endif  // VFIOMIG_CLIENT_MIGRATION_FORMAT_H_
