// Small helpers shared by the vfiomig_bench subcommands: timing, byte
// formatting, exiting on errors, loopback sockets and sim devices driven
// through their save and resume sessions exactly as the daemon drives them.
//
// Benchmark code, not product code: every failure ends the process with a
// message on stderr and exit status 1, so that the driver (bench.py) sees a
// broken measurement instead of a number.
#ifndef VFIOMIG_TESTS_BENCH_BENCH_UTIL_H_
#define VFIOMIG_TESTS_BENCH_BENCH_UTIL_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "plugins/backend.h"
#include "plugins/sim/sim_config.h"
#include "plugins/sim/sim_device.h"

namespace vfiomig::bench {

using Clock = std::chrono::steady_clock;

inline double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

inline double GiBps(uint64_t bytes, double seconds) {
  return seconds > 0 ? static_cast<double>(bytes) / seconds / (1 << 30) : 0;
}

// User + system CPU time this process has used so far, in seconds.
double CpuSeconds();
// CPU time of the calling thread so far, in seconds.
double ThreadCpuSeconds();

// Which CPU each side of a two-process measurement runs on: the sender
// (and single-process measurements) on `sender`, the receiver on
// `receiver`; -1 leaves the scheduler free. Pinning gives each side one
// core, as two hosts would, and keeps a side with more threads from taking
// a larger share of a busy machine.
struct Pinning {
  int sender = -1;
  int receiver = -1;
};
// Pins the calling process (all its future threads) to `cpu` unless -1.
void PinTo(int cpu);

// Prints "vfiomig_bench: <what>: <status>" and exits 1.
[[noreturn]] void Die(const std::string& what, const absl::Status& status);
[[noreturn]] void DieErrno(const std::string& what);

// The devices of a sim config file, in file order.
std::vector<sim::SimDeviceConfig> LoadDevices(const std::string& path);

// Walks `device` from RUNNING through the kernel's save path to STOP_COPY
// and returns its save session.
std::unique_ptr<DataSession> OpenSave(Device& device);
// Walks `device` from RUNNING to RESUMING and returns its resume session.
std::unique_ptr<DataSession> OpenResume(Device& device);
// RESUMING -> STOP (the sim checks the whole stream here) -> RUNNING.
void FinishResume(Device& device);

// A TCP socket pair over 127.0.0.1: Listen() binds port 0; Accept() and
// Connect() return connected fds with TCP_NODELAY off (bulk data).
int Listen(int* port);
int Accept(int listen_fd);
int Connect(int port);

// Writes or reads exactly data.size() bytes; false on EOF (reads) or error.
bool WriteAll(int fd, absl::Span<const uint8_t> data);
bool ReadAll(int fd, absl::Span<uint8_t> data);

}  // namespace vfiomig::bench

#endif  // VFIOMIG_TESTS_BENCH_BENCH_UTIL_H_
