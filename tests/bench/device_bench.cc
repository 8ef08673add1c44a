#include "tests/bench/device_bench.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_format.h"
#include "daemon/core/planner.h"
#include "tests/bench/bench_util.h"

namespace vfiomig::bench {
namespace {

constexpr size_t kChunk = size_t{1} << 20;

}  // namespace

DeviceResult SimSource(const std::string& config) {
  DeviceResult result;
  std::vector<uint8_t> buf(kChunk);
  for (sim::SimDeviceConfig& c : LoadDevices(config)) {
    std::shared_ptr<sim::SimDevice> device =
        sim::SimDevice::Create(std::move(c));
    const Clock::time_point start = Clock::now();
    const double cpu = ThreadCpuSeconds();
    std::unique_ptr<DataSession> save = OpenSave(*device);
    for (;;) {
      absl::StatusOr<size_t> n = save->Read(absl::MakeSpan(buf));
      if (!n.ok()) Die(device->info().id, n.status());
      if (*n == 0) break;
      result.bytes += *n;
    }
    result.seconds += SecondsSince(start);
    result.cpu_seconds += ThreadCpuSeconds() - cpu;
  }
  return result;
}

DeviceResult SimSink(const std::string& config) {
  DeviceResult result;
  std::vector<uint8_t> buf(kChunk);
  for (sim::SimDeviceConfig& c : LoadDevices(config)) {
    sim::SimDeviceConfig twin = c;
    twin.seed = ~c.seed;  // other content until the resume replaces it
    std::shared_ptr<sim::SimDevice> source =
        sim::SimDevice::Create(std::move(c));
    std::shared_ptr<sim::SimDevice> sink =
        sim::SimDevice::Create(std::move(twin));
    std::unique_ptr<DataSession> save = OpenSave(*source);
    std::unique_ptr<DataSession> resume = OpenResume(*sink);
    for (;;) {
      absl::StatusOr<size_t> n = save->Read(absl::MakeSpan(buf));
      if (!n.ok()) Die(source->info().id, n.status());
      if (*n == 0) break;
      const Clock::time_point start = Clock::now();
      const double cpu = ThreadCpuSeconds();
      absl::Status s = resume->Write(absl::MakeConstSpan(buf).first(*n));
      result.seconds += SecondsSince(start);
      result.cpu_seconds += ThreadCpuSeconds() - cpu;
      if (!s.ok()) Die(sink->info().id, s);
      result.bytes += *n;
    }
    resume.reset();
    const Clock::time_point start = Clock::now();
    const double cpu = ThreadCpuSeconds();
    FinishResume(*sink);
    result.seconds += SecondsSince(start);
    result.cpu_seconds += ThreadCpuSeconds() - cpu;
  }
  return result;
}

PlanResult PlanGroup(int devices, int iterations) {
  std::vector<PlanDevice> group;
  for (int i = 0; i < devices; ++i) {
    PlanDevice device;
    device.id = absl::StrFormat("0000:%02x:%02x.0", i / 32, i % 32);
    device.features = MigrationFeatures(kKnownMigrationFlags);
    group.push_back(std::move(device));
  }
  std::vector<double> us;
  PlanResult result;
  for (int i = 0; i < iterations; ++i) {
    const Clock::time_point start = Clock::now();
    GroupPlan plan = PlanMigration(group, PlanOptions{});
    us.push_back(SecondsSince(start) * 1e6);
    if (!plan.migratable) {
      Die("plan", absl::InternalError("a P2P group came out blocked"));
    }
    result.waves =
        static_cast<int>(plan.source.size() + plan.destination.size());
  }
  std::sort(us.begin(), us.end());
  result.min_us = us.front();
  result.median_us = us[us.size() / 2];
  return result;
}

}  // namespace vfiomig::bench
