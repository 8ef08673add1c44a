// How fast the sim devices themselves produce and consume state, one thread
// each, with no transport: the ceiling they put on any migration.
//
//   SimSource  reads every device of `config` from its STOP_COPY session in
//              1 MiB chunks; time = all the reads.
//   SimSink    streams every device of `config` into a twin in RESUMING and
//              on to RUNNING; time = the writes and the resume check only
//              (the source reads are not counted).
//
// Both measure wall time and the thread's CPU time over the same spans; the
// CPU time is what a core of its own would need, whatever else runs.
//
// PlanGroup times the group planner (daemon/core/planner.h) on `devices`
// P2P + pre-copy devices: the fastest and median of `iterations` runs.
#ifndef VFIOMIG_TESTS_BENCH_DEVICE_BENCH_H_
#define VFIOMIG_TESTS_BENCH_DEVICE_BENCH_H_

#include <cstdint>
#include <string>

namespace vfiomig::bench {

struct DeviceResult {
  uint64_t bytes = 0;
  double seconds = 0;
  double cpu_seconds = 0;
};

DeviceResult SimSource(const std::string& config);
DeviceResult SimSink(const std::string& config);

struct PlanResult {
  double median_us = 0;
  double min_us = 0;
  int waves = 0;
};

PlanResult PlanGroup(int devices, int iterations);

}  // namespace vfiomig::bench

#endif  // VFIOMIG_TESTS_BENCH_DEVICE_BENCH_H_
