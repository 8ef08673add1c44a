#include "daemon/metrics/metrics.h"

#include <atomic>

namespace vfiomig {
namespace {

class DroppingSink final : public MetricsSink {
 public:
  void ArcFinished(const std::string&, DeviceState, DeviceState, absl::Duration,
                   bool) override {}
  void DeviceStateKnown(const std::string&, DeviceState) override {}
  void StreamBytes(MetricsRole, bool, uint64_t) override {}
  void MigrationFinished(MetricsRole, const std::string&) override {}
};

DroppingSink dropping;
std::atomic<MetricsSink*> installed{&dropping};

}  // namespace

MetricsSink& Metrics() { return *installed.load(std::memory_order_acquire); }

void InstallMetrics(MetricsSink* sink) {
  installed.store(sink != nullptr ? sink : &dropping,
                  std::memory_order_release);
}

}  // namespace vfiomig
