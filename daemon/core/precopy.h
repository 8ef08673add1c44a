// Pre-copy policy: when to stop iterating pre-copy rounds, and how long the
// switchover that follows will stop the devices.
//
// A pre-copy round sends what each PRE_COPY device had pending when the
// round began (VFIO_MIG_GET_PRECOPY_INFO initial_bytes + dirty_bytes); the
// device keeps running and dirtying its state meanwhile. After each round the
// engine asks DecidePrecopy whether another round is worth it:
//
//  - kConverged: what is left (the sum over devices of initial + dirty bytes)
//    fits under the threshold, so stop-copy will be short;
//  - kMaxRounds: the round limit is reached (the operator's bound on how long
//    a migration may pre-copy);
//  - kStalled: the remaining bytes stopped shrinking: the devices dirty as
//    fast as the link drains them, and more rounds only burn bandwidth;
//  - kByteBudget: pre-copy already sent as much as it may (the destination
//    bounds a stream to a multiple of the device's capacity, and resending
//    dirty data forever is no migration);
//  - kContinue: otherwise.
//
// PredictDowntime turns what is left and the measured transfer rate into the
// expected stop time, before the devices stop (Migration.predicted_downtime).
//
// Pure: no I/O, no threads.
#ifndef VFIOMIG_DAEMON_CORE_PRECOPY_H_
#define VFIOMIG_DAEMON_CORE_PRECOPY_H_

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/time/time.h"
#include "absl/types/span.h"

namespace vfiomig {

struct PrecopyPolicy {
  // Stop iterating once at most this many bytes remain, summed over the
  // group's PRE_COPY devices.
  uint64_t threshold_bytes = uint64_t{4} << 20;
  // At most this many rounds (the first, which sends the initial data,
  // counts). At least 1: a device in PRE_COPY always gets one round.
  uint32_t max_rounds = 8;
  // Stop when the last `stall_rounds` rounds brought no new low of the
  // remaining bytes. 0 disables the check.
  uint32_t stall_rounds = 2;
};

enum class PrecopyVerdict {
  kContinue,
  kConverged,
  kMaxRounds,
  kStalled,
  kByteBudget
};

// "continue", "converged", "max-rounds", "stalled", "byte-budget".
std::string_view PrecopyVerdictName(PrecopyVerdict verdict);

struct PrecopyProgress {
  // Element i: the group's remaining pre-copy bytes measured after round
  // i+1 finished; the size is the number of rounds done.
  absl::Span<const uint64_t> remaining_after_round;
  // Pre-copy bytes sent so far, and the most pre-copy may send (0: no
  // bound).
  uint64_t bytes_sent = 0;
  uint64_t byte_budget = 0;
};

// With no round done yet the answer is kContinue. Checks, in order:
// converged, byte budget, max rounds (0 counts as 1), stalled.
PrecopyVerdict DecidePrecopy(const PrecopyPolicy& policy,
                             const PrecopyProgress& progress);

// What the stop phase of one device will still have to send.
struct DowntimeDevice {
  // initial_bytes + dirty_bytes (0 for a device without PRE_COPY).
  uint64_t precopy_remaining_bytes = 0;
  // VFIO_DEVICE_FEATURE_MIG_DATA_SIZE now.
  uint64_t stop_copy_estimate_bytes = 0;
};

struct DowntimeInputs {
  absl::Span<const DowntimeDevice> devices;
  // Device bytes per second measured while pre-copying; 0 when nothing was
  // measured (then no prediction is possible for a non-empty stop-copy).
  double bytes_per_second = 0;
  // Arc time measured so far: the sum of the durations of the waves run so
  // far (each wave as long as its slowest arc), over `measured_waves`.
  absl::Duration measured_wave_time = absl::ZeroDuration();
  int measured_waves = 0;
  // Waves between the first quiesce arc and the destination's last RUNNING
  // (source quiesce..stop-after-copy plus the destination's commit waves).
  int downtime_waves = 0;
};

// Bytes the stop phase will send: per device the larger of the two figures.
// Drivers differ in whether MIG_DATA_SIZE counts pre-copy data not yet read
// (the kernel calls it the data "required to complete stop copy"), so the
// larger one never undercounts and never counts the same bytes twice.
uint64_t StopPhaseBytes(absl::Span<const DowntimeDevice> devices);

// Predicted downtime: StopPhaseBytes / bytes_per_second plus the mean
// measured wave time for each downtime wave. nullopt when there are bytes to
// send but no rate was measured.
std::optional<absl::Duration> PredictDowntime(const DowntimeInputs& inputs);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_CORE_PRECOPY_H_
