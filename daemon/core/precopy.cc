#include "daemon/core/precopy.h"

#include <algorithm>
#include <cmath>

namespace vfiomig {

std::string_view PrecopyVerdictName(PrecopyVerdict verdict) {
  switch (verdict) {
    case PrecopyVerdict::kContinue:
      return "continue";
    case PrecopyVerdict::kConverged:
      return "converged";
    case PrecopyVerdict::kMaxRounds:
      return "max-rounds";
    case PrecopyVerdict::kStalled:
      return "stalled";
    case PrecopyVerdict::kByteBudget:
      return "byte-budget";
  }
  return "unknown";
}

PrecopyVerdict DecidePrecopy(const PrecopyPolicy& policy,
                             const PrecopyProgress& progress) {
  const absl::Span<const uint64_t> remaining_after_round =
      progress.remaining_after_round;
  const size_t rounds = remaining_after_round.size();
  if (rounds == 0) return PrecopyVerdict::kContinue;
  // Convergence first: a group that converged in its last allowed round is
  // reported as converged, which is what the operator wants to know.
  if (remaining_after_round.back() <= policy.threshold_bytes) {
    return PrecopyVerdict::kConverged;
  }
  if (progress.byte_budget > 0 && progress.bytes_sent >= progress.byte_budget) {
    return PrecopyVerdict::kByteBudget;
  }
  if (rounds >= std::max<uint32_t>(policy.max_rounds, 1)) {
    return PrecopyVerdict::kMaxRounds;
  }
  const size_t window = policy.stall_rounds;
  if (window > 0 && rounds > window) {
    const auto split = remaining_after_round.end() - window;
    const uint64_t best_before =
        *std::min_element(remaining_after_round.begin(), split);
    const uint64_t best_recent =
        *std::min_element(split, remaining_after_round.end());
    if (best_recent >= best_before) return PrecopyVerdict::kStalled;
  }
  return PrecopyVerdict::kContinue;
}

uint64_t StopPhaseBytes(absl::Span<const DowntimeDevice> devices) {
  uint64_t total = 0;
  for (const DowntimeDevice& device : devices) {
    total += std::max(device.precopy_remaining_bytes,
                      device.stop_copy_estimate_bytes);
  }
  return total;
}

std::optional<absl::Duration> PredictDowntime(const DowntimeInputs& inputs) {
  const uint64_t bytes = StopPhaseBytes(inputs.devices);
  absl::Duration transfer = absl::ZeroDuration();
  if (bytes > 0) {
    if (!(inputs.bytes_per_second > 0) ||
        !std::isfinite(inputs.bytes_per_second)) {
      return std::nullopt;
    }
    transfer =
        absl::Seconds(static_cast<double>(bytes) / inputs.bytes_per_second);
  }
  absl::Duration arcs = absl::ZeroDuration();
  if (inputs.measured_waves > 0 && inputs.downtime_waves > 0) {
    arcs = inputs.measured_wave_time / inputs.measured_waves *
           inputs.downtime_waves;
  }
  return transfer + arcs;
}

}  // namespace vfiomig
