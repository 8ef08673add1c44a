// Transport measurements between two processes over 127.0.0.1 (the process
// forks; the child receives).
//
//   RawTcp    `bytes` of incompressible data, written in 1 MiB writes and
//             read into a 1 MiB buffer; no other work. The loopback floor.
//   Baseline  every device of `source_config` (sim devices, in file order)
//             read from its STOP_COPY save session in 1 MiB chunks and sent
//             over one connection, length-prefixed, into the matching
//             device of `dest_config` in RESUMING, which then goes to
//             RUNNING (the sim checks every byte and the digest). What a
//             migration costs with no daemon, no gRPC and no stream format.
//             With BaselineFraming::kSealed the chunks travel as
//             vfio-migd's checksummed data frames instead (sealed by the
//             sender, verified by the receiver, same code and buffers as
//             the daemon's data channel): the ceiling of any checksummed
//             stream on this machine.
//
// Both time from the first byte sent to the receiver's acknowledgement that
// it has everything (devices included), so the receiver's work counts, and
// report the CPU time each side spent in that window.
#ifndef VFIOMIG_TESTS_BENCH_TRANSPORT_BENCH_H_
#define VFIOMIG_TESTS_BENCH_TRANSPORT_BENCH_H_

#include <cstdint>
#include <string>

#include "tests/bench/bench_util.h"

namespace vfiomig::bench {

struct TransportResult {
  uint64_t bytes = 0;
  double seconds = 0;
  double sender_cpu_seconds = 0;
  double receiver_cpu_seconds = 0;
  double gib_s() const { return GiBps(bytes, seconds); }
};

enum class BaselineFraming { kLengthPrefix, kSealed };

TransportResult RawTcp(uint64_t bytes, Pinning pinning);
TransportResult Baseline(const std::string& source_config,
                         const std::string& dest_config,
                         BaselineFraming framing, Pinning pinning);

}  // namespace vfiomig::bench

#endif  // VFIOMIG_TESTS_BENCH_TRANSPORT_BENCH_H_
