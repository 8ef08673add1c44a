// The transport floor of this machine: bare loopback TCP, and the baseline
// migration (sim source devices -> one plain TCP connection -> sim sink
// devices), each between two processes.
#include "tests/bench/transport_bench.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "daemon/stream/format.h"
#include "daemon/stream/frame_buffer.h"
#include "plugins/sim/sim_generator.h"

namespace vfiomig::bench {
namespace {

// Bytes per write: the same as a vfio-migd data frame's payload.
constexpr size_t kChunk = size_t{1} << 20;
// The plain baseline's only framing: a length before each chunk.
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

namespace {

// How the baseline frames the device bytes on its connection.
//
// kLengthPrefix: a u64 length before each chunk; 0 ends a device.
// kSealed: each chunk is a vfio-migd data frame, built and sealed in place
// in a stream::FrameBuffer exactly as the daemon's data channel does
// (stream/format.h: header, then XXH3 over header and payload), and the
// receiver verifies every frame's checksum before the sink sees it; a
// frame with no payload ends a device.
class Framing {
 public:
  explicit Framing(BaselineFraming kind) : kind_(kind) {}

  // Room for the next chunk's payload, at most kChunk bytes.
  absl::Span<uint8_t> Payload() { return Frame(kChunk).subspan(HeaderSize()); }
  // Sends the chunk of `n` payload bytes just written into Payload() (0:
  // the end of a device).
  bool Send(int fd, size_t n) {
    absl::Span<uint8_t> frame = Frame(n);
    if (kind_ == BaselineFraming::kSealed) {
      stream::SealFrame(
          frame,
          n > 0 ? stream::FrameType::kStopCopyData : stream::FrameType::kEnd,
          sequence_++);
    } else {
      const uint64_t length = n;
      std::memcpy(frame.data(), &length, sizeof(length));
    }
    return WriteAll(fd, frame);
  }
  // Receives the next chunk: its payload, empty at the end of a device.
  // Dies on a broken connection or a frame that fails its checksum.
  absl::Span<const uint8_t> Receive(int fd) {
    uint8_t header[stream::kFrameHeaderSize];
    absl::Span<uint8_t> head = absl::MakeSpan(header, HeaderSize());
    if (!ReadAll(fd, head)) DieErrno("baseline receive");
    uint64_t n = 0;
    uint64_t checksum = 0;
    if (kind_ == BaselineFraming::kSealed) {
      const stream::FrameHeader h = stream::DecodeFrameHeader(header);
      n = h.length;
      checksum = h.checksum;
    } else {
      std::memcpy(&n, header, sizeof(n));
    }
    if (n > kChunk) Die("baseline", absl::DataLossError("chunk too large"));
    absl::Span<uint8_t> frame = Frame(static_cast<size_t>(n));
    std::memcpy(frame.data(), header, head.size());
    absl::Span<uint8_t> payload = frame.subspan(HeaderSize());
    if (!ReadAll(fd, payload)) DieErrno("baseline receive");
    if (kind_ == BaselineFraming::kSealed &&
        stream::FrameChecksum(frame) != checksum) {
      Die("baseline", absl::DataLossError("frame checksum mismatch"));
    }
    return payload;
  }

 private:
  size_t HeaderSize() const {
    return kind_ == BaselineFraming::kSealed ? stream::kFrameHeaderSize
                                             : kLengthPrefix;
  }
  // The frame (header and `payload` bytes) at the start of the buffer.
  absl::Span<uint8_t> Frame(size_t payload) {
    absl::Span<uint8_t> all = kind_ == BaselineFraming::kSealed
                                  ? sealed_.Frame(HeaderSize() + kChunk)
                                  : absl::MakeSpan(plain_);
    return all.first(HeaderSize() + payload);
  }

  const BaselineFraming kind_;
  // The plain baseline keeps the buffer it always had (a vector: where its
  // payload falls relative to a cache line is part of what it measured).
  std::vector<uint8_t> plain_ = std::vector<uint8_t>(
      kind_ == BaselineFraming::kSealed ? 0 : kLengthPrefix + kChunk);
  stream::FrameBuffer sealed_;
  uint64_t sequence_ = 1;
};

}  // namespace

TransportResult Baseline(const std::string& source_config,
                         const std::string& dest_config,
                         BaselineFraming framing, Pinning pinning) {
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
    Framing in(framing);
    for (const auto& device : sinks) {
      std::unique_ptr<DataSession> resume = OpenResume(*device);
      for (;;) {
        absl::Span<const uint8_t> chunk = in.Receive(fd);
        if (chunk.empty()) break;
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
  // The header sits right before the payload, so each chunk leaves in one
  // write, as a data frame leaves vfio-migd.
  Framing out(framing);
  uint64_t bytes = 0;
  const Clock::time_point start = Clock::now();
  const double cpu = CpuSeconds();
  for (const auto& device : sources) {
    std::unique_ptr<DataSession> save = OpenSave(*device);
    for (;;) {
      absl::StatusOr<size_t> n = save->Read(out.Payload());
      if (!n.ok()) Die(device->info().id, n.status());
      if (!out.Send(fd, *n)) DieErrno("write");
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
