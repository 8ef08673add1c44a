// The transport floor of this machine: bare loopback TCP, and the baseline
// migration (sim source devices -> one plain TCP connection -> sim sink
// devices), each between two processes.
#include "tests/bench/transport_bench.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "plugins/sim/sim_generator.h"

namespace vfiomig::bench {
namespace {

// Bytes per write: the same as a vfio-migd data frame's payload.
constexpr size_t kChunk = size_t{1} << 20;
// The baseline's only framing: a length before each chunk, 0 ends a device.
constexpr size_t kLengthPrefix = sizeof(uint64_t);

// Runs `child` in a forked process that exits with its result; returns the
// pid. The parent's stdout buffer is flushed first so nothing prints twice.
template <typename F>
pid_t Fork(F child) {
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) DieErrno("fork");
  if (pid == 0) _exit(child());
  return pid;
}

// The receiver's last word: it has everything, and the CPU time it spent
// since the connection was accepted.
bool SendAck(int fd, double cpu_seconds) {
  uint8_t ack[sizeof(double)];
  std::memcpy(ack, &cpu_seconds, sizeof(ack));
  return WriteAll(fd, absl::MakeConstSpan(ack));
}

double ReadAck(int fd) {
  uint8_t ack[sizeof(double)];
  if (!ReadAll(fd, absl::MakeSpan(ack))) DieErrno("read ack");
  double cpu_seconds;
  std::memcpy(&cpu_seconds, ack, sizeof(ack));
  return cpu_seconds;
}

void Reap(pid_t pid, const char* what) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0) {
    Die(what, absl::InternalError("the receiving process failed"));
  }
}

}  // namespace

TransportResult RawTcp(uint64_t bytes, Pinning pinning) {
  int port = 0;
  const int listen_fd = Listen(&port);
  const pid_t child = Fork([&] {
    PinTo(pinning.receiver);
    const int fd = Accept(listen_fd);
    const double cpu = CpuSeconds();
    std::vector<uint8_t> buf(kChunk);
    uint64_t got = 0;
    while (got < bytes) {
      ssize_t n = read(fd, buf.data(), buf.size());
      if (n <= 0) return 1;
      got += static_cast<uint64_t>(n);
    }
    return SendAck(fd, CpuSeconds() - cpu) ? 0 : 1;
  });
  close(listen_fd);
  PinTo(pinning.sender);
  const int fd = Connect(port);
  std::vector<uint8_t> buf(kChunk);
  sim::FillContent(1, 0, absl::MakeSpan(buf));  // incompressible, not zero
  const Clock::time_point start = Clock::now();
  const double cpu = CpuSeconds();
  for (uint64_t sent = 0; sent < bytes;) {
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(kChunk, bytes - sent));
    if (!WriteAll(fd, absl::MakeConstSpan(buf).first(n))) DieErrno("write");
    sent += n;
  }
  const double receiver_cpu = ReadAck(fd);
  const double seconds = SecondsSince(start);
  const double sender_cpu = CpuSeconds() - cpu;
  close(fd);
  Reap(child, "raw tcp");
  return TransportResult{.bytes = bytes,
                         .seconds = seconds,
                         .sender_cpu_seconds = sender_cpu,
                         .receiver_cpu_seconds = receiver_cpu};
}

TransportResult Baseline(const std::string& source_config,
                         const std::string& dest_config, Pinning pinning) {
  int port = 0;
  const int listen_fd = Listen(&port);
  const pid_t child = Fork([&] {
    PinTo(pinning.receiver);
    std::vector<std::shared_ptr<sim::SimDevice>> sinks;
    for (sim::SimDeviceConfig& c : LoadDevices(dest_config)) {
      sinks.push_back(sim::SimDevice::Create(std::move(c)));
    }
    const int fd = Accept(listen_fd);
    const double cpu = CpuSeconds();
    std::vector<uint8_t> buf(kChunk);
    for (const auto& device : sinks) {
      std::unique_ptr<DataSession> resume = OpenResume(*device);
      for (;;) {
        uint8_t prefix[kLengthPrefix];
        if (!ReadAll(fd, absl::MakeSpan(prefix))) return 1;
        uint64_t n;
        std::memcpy(&n, prefix, sizeof(n));
        if (n == 0) break;
        if (n > buf.size()) return 1;
        absl::Span<uint8_t> chunk = absl::MakeSpan(buf).first(n);
        if (!ReadAll(fd, chunk)) return 1;
        if (absl::Status s = resume->Write(chunk); !s.ok()) {
          Die(device->info().id, s);
        }
      }
      resume.reset();
      FinishResume(*device);
    }
    return SendAck(fd, CpuSeconds() - cpu) ? 0 : 1;
  });
  close(listen_fd);
  PinTo(pinning.sender);
  std::vector<std::shared_ptr<sim::SimDevice>> sources;
  for (sim::SimDeviceConfig& c : LoadDevices(source_config)) {
    sources.push_back(sim::SimDevice::Create(std::move(c)));
  }
  const int fd = Connect(port);
  // The length prefix sits right before the payload, so each chunk leaves
  // in one write, as a data frame leaves vfio-migd.
  std::vector<uint8_t> buf(kLengthPrefix + kChunk);
  uint64_t bytes = 0;
  const Clock::time_point start = Clock::now();
  const double cpu = CpuSeconds();
  for (const auto& device : sources) {
    std::unique_ptr<DataSession> save = OpenSave(*device);
    for (;;) {
      absl::StatusOr<size_t> n =
          save->Read(absl::MakeSpan(buf).subspan(kLengthPrefix));
      if (!n.ok()) Die(device->info().id, n.status());
      const uint64_t length = *n;
      std::memcpy(buf.data(), &length, sizeof(length));
      if (!WriteAll(fd, absl::MakeConstSpan(buf).first(kLengthPrefix + *n))) {
        DieErrno("write");
      }
      if (*n == 0) break;
      bytes += *n;
    }
  }
  const double receiver_cpu = ReadAck(fd);
  const double seconds = SecondsSince(start);
  const double sender_cpu = CpuSeconds() - cpu;
  close(fd);
  Reap(child, "baseline");
  return TransportResult{.bytes = bytes,
                         .seconds = seconds,
                         .sender_cpu_seconds = sender_cpu,
                         .receiver_cpu_seconds = receiver_cpu};
}

}  // namespace vfiomig::bench
