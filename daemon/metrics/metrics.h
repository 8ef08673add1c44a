// MetricsSink: what the daemon measures, as its engine and migration code
// report it. The reporting code sees only this interface (no HTTP, no
// Prometheus): daemon/metrics/prometheus_metrics.h implements it, and
// vfio-migd installs that once at start-up when --metrics-listen is set.
// Until a sink is installed, and in tests and tools, reports go nowhere.
//
// Reports are cheap and never block on I/O; they may come from any thread.
#ifndef VFIOMIG_DAEMON_METRICS_METRICS_H_
#define VFIOMIG_DAEMON_METRICS_METRICS_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "daemon/core/fsm.h"

namespace vfiomig {

enum class MetricsRole { kSource, kDestination };

class MetricsSink {
 public:
  virtual ~MetricsSink() = default;

  // A device's SET for the arc from -> to returned after `elapsed` (the
  // whole call, also when its caller stopped waiting at the deadline).
  virtual void ArcFinished(const std::string& driver, DeviceState from,
                           DeviceState to, absl::Duration elapsed, bool ok) = 0;
  // The state the daemon last learned for `device`: after an arc, a GET, a
  // reset, or at start-up.
  virtual void DeviceStateKnown(const std::string& device,
                                DeviceState state) = 0;
  // Device state bytes of one frame: sent (source) or written to the device
  // (destination).
  virtual void StreamBytes(MetricsRole role, bool pre_copy, uint64_t bytes) = 0;
  // A migration ended: "succeeded", "failed" or "cancelled".
  virtual void MigrationFinished(MetricsRole role,
                                 const std::string& outcome) = 0;
};

// The installed sink, or one that drops every report.
MetricsSink& Metrics();

// Installs `sink`, which must outlive every report (the daemon's lifetime);
// nullptr restores the dropping sink. Call before the daemon serves.
void InstallMetrics(MetricsSink* sink);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_METRICS_METRICS_H_
