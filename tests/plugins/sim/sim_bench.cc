// sim_bench: how fast the sim produces and consumes device state, so that
// a benchmark of the daemon knows the sim is not its bottleneck.
//
//   sim_bench [GiB]   (default 4)
//
// Prints the content generator's raw speed, then a single-threaded round
// trip of a device of that size: STOP_COPY reads into a 1 MiB buffer, each
// buffer written straight into a resuming device, with the time spent on
// each side. Not a test: numbers depend on the machine and the build type.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "plugins/sim/sim_content.h"
#include "plugins/sim/sim_device.h"
#include "plugins/sim/sim_generator.h"
#include "xxhash.h"

namespace vfiomig::sim {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

double GiBps(uint64_t bytes, double seconds) {
  return static_cast<double>(bytes) / seconds / (1 << 30);
}

void Die(const absl::Status& s) {
  std::fprintf(stderr, "sim_bench: %s\n", s.ToString().c_str());
  std::exit(1);
}

SimDeviceConfig Config(const char* id, uint64_t size) {
  SimDeviceConfig c;
  c.id = id;
  c.features = MigrationFeatures(VFIO_MIGRATION_STOP_COPY);
  c.state_bytes = size;
  c.seed = DefaultSeed(id);
  return c;
}

void Primitives(uint64_t total) {
  std::vector<uint8_t> buf(kBlockSize);
  uint64_t sink = 0;
  auto t = Clock::now();
  for (uint64_t i = 0; i < total / kBlockSize; ++i) {
    FillContent(BlockKey(1, i, 0), 0, absl::MakeSpan(buf));
    sink += buf[i % buf.size()];
  }
  std::printf("generate (FillContent)   %6.2f GiB/s\n",
              GiBps(total, Seconds(t)));
  t = Clock::now();
  for (uint64_t i = 0; i < total / kBlockSize; ++i) {
    sink += MatchContent(BlockKey(1, total / kBlockSize - 1, 0), 0, buf);
  }
  std::printf("verify (MatchContent)    %6.2f GiB/s\n",
              GiBps(total, Seconds(t)));
  t = Clock::now();
  for (uint64_t i = 0; i < total / kBlockSize; ++i) {
    sink += XXH3_64bits(buf.data(), buf.size());
  }
  std::printf("hash (XXH3-64)           %6.2f GiB/s   (%llu)\n",
              GiBps(total, Seconds(t)), static_cast<unsigned long long>(sink));
}

void RoundTrip(uint64_t size) {
  auto src = SimDevice::Create(Config("src", size));
  auto dst = SimDevice::Create(Config("dst", size));
  auto t = Clock::now();
  absl::StatusOr<std::string> digest = src->ContentDigest();
  if (!digest.ok()) Die(digest.status());
  std::printf("cold digest              %6.2f GiB/s\n",
              GiBps(size, Seconds(t)));

  if (auto s = src->SetState(DeviceState::STOP); !s.ok()) Die(s.status());
  if (auto s = dst->SetState(DeviceState::STOP); !s.ok()) Die(s.status());
  absl::StatusOr<std::unique_ptr<DataSession>> save =
      src->SetState(DeviceState::STOP_COPY);
  if (!save.ok()) Die(save.status());
  absl::StatusOr<std::unique_ptr<DataSession>> resume =
      dst->SetState(DeviceState::RESUMING);
  if (!resume.ok()) Die(resume.status());

  std::vector<uint8_t> buf(kBlockSize);
  double read_s = 0, write_s = 0;
  uint64_t bytes = 0;
  for (;;) {
    auto r = Clock::now();
    absl::StatusOr<size_t> n = (*save)->Read(absl::MakeSpan(buf));
    read_s += Seconds(r);
    if (!n.ok()) Die(n.status());
    if (*n == 0) break;
    auto w = Clock::now();
    absl::Status s = (*resume)->Write(absl::MakeConstSpan(buf).first(*n));
    write_s += Seconds(w);
    if (!s.ok()) Die(s);
    bytes += *n;
  }
  if (auto s = dst->SetState(DeviceState::STOP); !s.ok()) Die(s.status());
  absl::StatusOr<std::string> dst_digest = dst->ContentDigest();
  if (!dst_digest.ok()) Die(dst_digest.status());
  std::printf("save (STOP_COPY reads)   %6.2f GiB/s\n", GiBps(bytes, read_s));
  std::printf("resume (RESUMING writes) %6.2f GiB/s\n", GiBps(bytes, write_s));
  std::printf(
      "round trip, one thread   %6.2f GiB/s   %.2f GiB in %.2f s, "
      "digests %s\n",
      GiBps(bytes, read_s + write_s), static_cast<double>(bytes) / (1 << 30),
      read_s + write_s, *digest == *dst_digest ? "equal" : "DIFFER");
}

}  // namespace
}  // namespace vfiomig::sim

int main(int argc, char** argv) {
  uint64_t gib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 4;
  if (gib == 0 || gib > 1024) {
    std::fprintf(stderr, "usage: sim_bench [GiB, 1..1024]\n");
    return 2;
  }
  vfiomig::sim::Primitives(uint64_t{1} << 30);
  vfiomig::sim::RoundTrip(gib << 30);
  return 0;
}
