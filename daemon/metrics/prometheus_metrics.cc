#include "daemon/metrics/prometheus_metrics.h"

#include <sstream>
#include <vector>

#include "prometheus/text_serializer.h"

namespace vfiomig {
namespace {

// Arcs take milliseconds (sim, fast devices) to minutes (drains that wait
// for a guest): the buckets span both.
const prometheus::Histogram::BucketBoundaries& ArcBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
      1,     2.5,    5,     10,   30,    60,   120, 300};
  return *buckets;
}

const char* RoleName(MetricsRole role) {
  return role == MetricsRole::kSource ? "source" : "destination";
}

constexpr DeviceState kAllStates[] = {
    DeviceState::ERROR,     DeviceState::STOP,        DeviceState::RUNNING,
    DeviceState::STOP_COPY, DeviceState::RESUMING,    DeviceState::RUNNING_P2P,
    DeviceState::PRE_COPY,  DeviceState::PRE_COPY_P2P};

}  // namespace

PrometheusMetrics::PrometheusMetrics(const std::string& version)
    : registry_(std::make_shared<prometheus::Registry>()),
      migrations_(prometheus::BuildCounter()
                      .Name("vfiomig_migrations_total")
                      .Help("Migrations that ended, by role and outcome")
                      .Register(*registry_)),
      running_(prometheus::BuildGauge()
                   .Name("vfiomig_migrations_running")
                   .Help("Migrations running now, by role")
                   .Register(*registry_)),
      stream_bytes_(prometheus::BuildCounter()
                        .Name("vfiomig_stream_bytes_total")
                        .Help("Device state bytes sent (source) or written "
                              "to devices (destination), by section")
                        .Register(*registry_)),
      arc_seconds_(prometheus::BuildHistogram()
                       .Name("vfiomig_arc_duration_seconds")
                       .Help("Duration of device state arcs (one SET each), "
                             "failed ones included")
                       .Register(*registry_)),
      arc_failures_(prometheus::BuildCounter()
                        .Name("vfiomig_arc_failures_total")
                        .Help("Device state arcs the device refused or failed")
                        .Register(*registry_)),
      drain_seconds_(prometheus::BuildHistogram()
                         .Name("vfiomig_drain_duration_seconds")
                         .Help("Duration of drain arcs (into RUNNING_P2P, "
                               "PRE_COPY_P2P, STOP), by kernel driver")
                         .Register(*registry_)),
      devices_(prometheus::BuildGauge()
                   .Name("vfiomig_devices")
                   .Help("Managed devices by the migration state the daemon "
                         "last knew")
                   .Register(*registry_)) {
  prometheus::BuildGauge()
      .Name("vfiomig_build_info")
      .Help("The running vfio-migd's version")
      .Register(*registry_)
      .Add({{"version", version}})
      .Set(1);
  for (MetricsRole role : {MetricsRole::kSource, MetricsRole::kDestination}) {
    running_.Add({{"role", RoleName(role)}});
    for (const char* outcome : {"succeeded", "failed", "cancelled"}) {
      migrations_.Add({{"role", RoleName(role)}, {"outcome", outcome}});
    }
    for (bool pre_copy : {true, false}) {
      stream_counters_[static_cast<int>(role)][pre_copy] = &stream_bytes_.Add(
          {{"role", RoleName(role)},
           {"section", pre_copy ? "pre_copy" : "stop_copy"}});
    }
  }
  for (DeviceState state : kAllStates) {
    devices_.Add({{"state", std::string(DeviceStateName(state))}});
  }
}

void PrometheusMetrics::SetRunning(MetricsRole role, RunningCounter counter) {
  absl::MutexLock lock(&mu_);
  running_counters_[role] = std::move(counter);
}

std::string PrometheusMetrics::Render() {
  // Gauges that are states, not events: filled in at the scrape.
  std::map<MetricsRole, RunningCounter> counters;
  std::map<DeviceState, int> by_state;
  {
    absl::MutexLock lock(&mu_);
    counters = running_counters_;
    for (const auto& [device, state] : device_states_) ++by_state[state];
  }
  for (DeviceState state : kAllStates) {
    devices_.Add({{"state", std::string(DeviceStateName(state))}})
        .Set(by_state[state]);
  }
  for (const auto& [role, counter] : counters) {
    running_.Add({{"role", RoleName(role)}})
        .Set(static_cast<double>(counter()));
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

void PrometheusMetrics::ArcFinished(const std::string& driver, DeviceState from,
                                    DeviceState to, absl::Duration elapsed,
                                    bool ok) {
  const std::string arc = ArcName(from, to);
  const double seconds = absl::ToDoubleSeconds(elapsed);
  arc_seconds_.Add({{"arc", arc}}, ArcBuckets()).Observe(seconds);
  if (!ok) arc_failures_.Add({{"arc", arc}}).Increment();
  if (IsDrainArc(from, to)) {
    drain_seconds_.Add({{"driver", driver}}, ArcBuckets()).Observe(seconds);
  }
}

void PrometheusMetrics::DeviceStateKnown(const std::string& device,
                                         DeviceState state) {
  absl::MutexLock lock(&mu_);
  device_states_[device] = state;
}

void PrometheusMetrics::StreamBytes(MetricsRole role, bool pre_copy,
                                    uint64_t bytes) {
  stream_counters_[static_cast<int>(role)][pre_copy]->Increment(
      static_cast<double>(bytes));
}

void PrometheusMetrics::MigrationFinished(MetricsRole role,
                                          const std::string& outcome) {
  migrations_.Add({{"role", RoleName(role)}, {"outcome", outcome}}).Increment();
}

}  // namespace vfiomig
