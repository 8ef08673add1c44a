#include "daemon/core/precopy.h"

#include <cstdint>
#include <optional>
#include <vector>

#include "gtest/gtest.h"

namespace vfiomig {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

PrecopyVerdict Decide(const PrecopyPolicy& policy,
                      const std::vector<uint64_t>& remaining) {
  return DecidePrecopy(policy, {.remaining_after_round = remaining});
}

TEST(DecidePrecopyTest, NoRoundYetContinues) {
  EXPECT_EQ(Decide({}, {}), PrecopyVerdict::kContinue);
  EXPECT_EQ(Decide({.max_rounds = 0}, {}), PrecopyVerdict::kContinue);
}

TEST(DecidePrecopyTest, ConvergesAtOrBelowThreshold) {
  const PrecopyPolicy policy{.threshold_bytes = 4 * kMiB};
  EXPECT_EQ(Decide(policy, {4 * kMiB}), PrecopyVerdict::kConverged);
  EXPECT_EQ(Decide(policy, {0}), PrecopyVerdict::kConverged);
  EXPECT_EQ(Decide(policy, {4 * kMiB + 1}), PrecopyVerdict::kContinue);
  EXPECT_EQ(Decide(policy, {100 * kMiB, 10 * kMiB, 3 * kMiB}),
            PrecopyVerdict::kConverged);
}

TEST(DecidePrecopyTest, ZeroThresholdNeedsNothingLeft) {
  const PrecopyPolicy policy{.threshold_bytes = 0, .max_rounds = 100};
  EXPECT_EQ(Decide(policy, {1}), PrecopyVerdict::kContinue);
  EXPECT_EQ(Decide(policy, {1, 0}), PrecopyVerdict::kConverged);
}

TEST(DecidePrecopyTest, StopsAtMaxRounds) {
  const PrecopyPolicy policy{
      .threshold_bytes = kMiB, .max_rounds = 3, .stall_rounds = 0};
  EXPECT_EQ(Decide(policy, {9 * kMiB, 8 * kMiB}), PrecopyVerdict::kContinue);
  EXPECT_EQ(Decide(policy, {9 * kMiB, 8 * kMiB, 7 * kMiB}),
            PrecopyVerdict::kMaxRounds);
  EXPECT_EQ(Decide(policy, {9 * kMiB, 8 * kMiB, 7 * kMiB, 6 * kMiB}),
            PrecopyVerdict::kMaxRounds);
}

TEST(DecidePrecopyTest, ConvergenceWinsInTheLastRound) {
  const PrecopyPolicy policy{.threshold_bytes = kMiB, .max_rounds = 2};
  EXPECT_EQ(Decide(policy, {9 * kMiB, kMiB}), PrecopyVerdict::kConverged);
}

TEST(DecidePrecopyTest, MaxRoundsZeroMeansOne) {
  const PrecopyPolicy policy{.threshold_bytes = 0, .max_rounds = 0};
  EXPECT_EQ(Decide(policy, {5}), PrecopyVerdict::kMaxRounds);
}

TEST(DecidePrecopyTest, StallsWhenNoNewLowInWindow) {
  const PrecopyPolicy policy{
      .threshold_bytes = kMiB, .max_rounds = 100, .stall_rounds = 2};
  // Shrinking: keep going.
  EXPECT_EQ(Decide(policy, {64 * kMiB, 32 * kMiB, 16 * kMiB, 8 * kMiB}),
            PrecopyVerdict::kContinue);
  // Not enough history to judge a stall.
  EXPECT_EQ(Decide(policy, {64 * kMiB, 64 * kMiB}), PrecopyVerdict::kContinue);
  // Two rounds without beating 8 MiB: the devices dirty as fast as we send.
  EXPECT_EQ(Decide(policy, {64 * kMiB, 8 * kMiB, 9 * kMiB, 8 * kMiB}),
            PrecopyVerdict::kStalled);
  // One of the two recent rounds set a new low: not stalled.
  EXPECT_EQ(Decide(policy, {64 * kMiB, 8 * kMiB, 7 * kMiB, 9 * kMiB}),
            PrecopyVerdict::kContinue);
}

TEST(DecidePrecopyTest, StallCheckCanBeDisabled) {
  const PrecopyPolicy policy{
      .threshold_bytes = 0, .max_rounds = 100, .stall_rounds = 0};
  EXPECT_EQ(Decide(policy, {5, 5, 5, 5, 5, 5}), PrecopyVerdict::kContinue);
}

TEST(DecidePrecopyTest, StopsWhenTheByteBudgetIsSpent) {
  const PrecopyPolicy policy{.threshold_bytes = kMiB, .max_rounds = 100};
  const std::vector<uint64_t> remaining = {64 * kMiB, 32 * kMiB};
  EXPECT_EQ(DecidePrecopy(policy, {.remaining_after_round = remaining,
                                   .bytes_sent = 99 * kMiB,
                                   .byte_budget = 100 * kMiB}),
            PrecopyVerdict::kContinue);
  EXPECT_EQ(DecidePrecopy(policy, {.remaining_after_round = remaining,
                                   .bytes_sent = 100 * kMiB,
                                   .byte_budget = 100 * kMiB}),
            PrecopyVerdict::kByteBudget);
  // 0 = unbounded.
  EXPECT_EQ(DecidePrecopy(policy, {.remaining_after_round = remaining,
                                   .bytes_sent = 1000 * kMiB,
                                   .byte_budget = 0}),
            PrecopyVerdict::kContinue);
  // Converged beats the budget.
  const std::vector<uint64_t> converged = {64 * kMiB, kMiB};
  EXPECT_EQ(DecidePrecopy(policy, {.remaining_after_round = converged,
                                   .bytes_sent = 1000 * kMiB,
                                   .byte_budget = 100 * kMiB}),
            PrecopyVerdict::kConverged);
}

TEST(DecidePrecopyTest, VerdictNames) {
  EXPECT_EQ(PrecopyVerdictName(PrecopyVerdict::kContinue), "continue");
  EXPECT_EQ(PrecopyVerdictName(PrecopyVerdict::kConverged), "converged");
  EXPECT_EQ(PrecopyVerdictName(PrecopyVerdict::kMaxRounds), "max-rounds");
  EXPECT_EQ(PrecopyVerdictName(PrecopyVerdict::kStalled), "stalled");
  EXPECT_EQ(PrecopyVerdictName(PrecopyVerdict::kByteBudget), "byte-budget");
}

TEST(StopPhaseBytesTest, TakesTheLargerFigurePerDevice) {
  const std::vector<DowntimeDevice> devices = {
      {.precopy_remaining_bytes = 3 * kMiB,
       .stop_copy_estimate_bytes = 5 * kMiB},
      {.precopy_remaining_bytes = 7 * kMiB,
       .stop_copy_estimate_bytes = 2 * kMiB},
      {.precopy_remaining_bytes = 0, .stop_copy_estimate_bytes = kMiB}};
  EXPECT_EQ(StopPhaseBytes(devices), 13 * kMiB);
  EXPECT_EQ(StopPhaseBytes({}), 0u);
}

TEST(PredictDowntimeTest, TransferPlusProjectedWaveTime) {
  const std::vector<DowntimeDevice> devices = {
      {.precopy_remaining_bytes = 0, .stop_copy_estimate_bytes = 100 * kMiB}};
  const std::optional<absl::Duration> downtime = PredictDowntime({
      .devices = devices,
      .bytes_per_second = 1000.0 * kMiB,
      .measured_wave_time = absl::Milliseconds(30),
      .measured_waves = 2,
      .downtime_waves = 4,
  });
  ASSERT_TRUE(downtime.has_value());
  // 100 MiB at 1000 MiB/s = 100 ms; 15 ms per wave x 4 waves = 60 ms.
  EXPECT_EQ(*downtime, absl::Milliseconds(160));
}

TEST(PredictDowntimeTest, NoRateMeansNoPrediction) {
  const std::vector<DowntimeDevice> devices = {
      {.precopy_remaining_bytes = 1, .stop_copy_estimate_bytes = 0}};
  EXPECT_FALSE(PredictDowntime({.devices = devices}).has_value());
  EXPECT_FALSE(PredictDowntime({.devices = devices, .bytes_per_second = -1})
                   .has_value());
}

TEST(PredictDowntimeTest, NothingToSendNeedsNoRate) {
  const std::optional<absl::Duration> downtime = PredictDowntime({
      .devices = {},
      .measured_wave_time = absl::Milliseconds(10),
      .measured_waves = 1,
      .downtime_waves = 3,
  });
  ASSERT_TRUE(downtime.has_value());
  EXPECT_EQ(*downtime, absl::Milliseconds(30));
}

TEST(PredictDowntimeTest, NoMeasuredWavesAddsNoArcTime) {
  const std::vector<DowntimeDevice> devices = {
      {.precopy_remaining_bytes = 2 * kMiB, .stop_copy_estimate_bytes = 0}};
  const std::optional<absl::Duration> downtime = PredictDowntime({
      .devices = devices,
      .bytes_per_second = 2.0 * kMiB,
      .downtime_waves = 5,
  });
  ASSERT_TRUE(downtime.has_value());
  EXPECT_EQ(*downtime, absl::Seconds(1));
}

}  // namespace
}  // namespace vfiomig
