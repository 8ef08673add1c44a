// PrometheusMetrics: the MetricsSink of vfio-migd, kept in a prometheus-cpp
// registry and rendered in the Prometheus text format (version 0.0.4).
//
//   vfiomig_build_info{version}                       gauge, 1
//   vfiomig_migrations_total{role,outcome}            counter
//   vfiomig_migrations_running{role}                  gauge
//   vfiomig_stream_bytes_total{role,section}          counter
//   vfiomig_arc_duration_seconds{arc}                 histogram
//   vfiomig_arc_failures_total{arc}                   counter
//   vfiomig_drain_duration_seconds{driver}            histogram
//   vfiomig_devices{state}                            gauge
//
// role is "source" or "destination"; outcome "succeeded", "failed" or
// "cancelled"; section "pre_copy" or "stop_copy"; arc "FROM>TO" in the
// kernel's state names; state every kernel state name (zero included, so
// the series always exist). Drains are the arcs into RUNNING_P2P,
// PRE_COPY_P2P and STOP, per kernel driver: the figures to set
// [drivers.NAME] deadlines from.
//
// Thread-safe.
#ifndef VFIOMIG_DAEMON_METRICS_PROMETHEUS_METRICS_H_
#define VFIOMIG_DAEMON_METRICS_PROMETHEUS_METRICS_H_

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "daemon/metrics/metrics.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace vfiomig {

class PrometheusMetrics final : public MetricsSink {
 public:
  // How many migrations of a role run now; asked at every scrape.
  using RunningCounter = std::function<size_t()>;

  explicit PrometheusMetrics(const std::string& version);

  // Set before the first scrape.
  void SetRunning(MetricsRole role, RunningCounter counter);

  // The registry's metrics in the Prometheus text format.
  std::string Render();

  void ArcFinished(const std::string& driver, DeviceState from, DeviceState to,
                   absl::Duration elapsed, bool ok) override;
  void DeviceStateKnown(const std::string& device, DeviceState state) override;
  void StreamBytes(MetricsRole role, bool pre_copy, uint64_t bytes) override;
  void MigrationFinished(MetricsRole role, const std::string& outcome) override;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& migrations_;
  prometheus::Family<prometheus::Gauge>& running_;
  prometheus::Family<prometheus::Counter>& stream_bytes_;
  prometheus::Family<prometheus::Histogram>& arc_seconds_;
  prometheus::Family<prometheus::Counter>& arc_failures_;
  prometheus::Family<prometheus::Histogram>& drain_seconds_;
  prometheus::Family<prometheus::Gauge>& devices_;
  // [role][pre_copy]: looked up once, since every frame adds to one.
  prometheus::Counter* stream_counters_[2][2] = {};

  absl::Mutex mu_;
  std::map<std::string, DeviceState> device_states_ ABSL_GUARDED_BY(mu_);
  std::map<MetricsRole, RunningCounter> running_counters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_METRICS_PROMETHEUS_METRICS_H_
