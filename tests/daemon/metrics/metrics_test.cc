// The Prometheus registry and its HTTP listener: what a report turns into
// in the text format, and GET /metrics over a real socket.
#include "daemon/metrics/metrics.h"

#include <string>

#include "daemon/metrics/metrics_address.h"
#include "daemon/metrics/metrics_http.h"
#include "daemon/metrics/prometheus_metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"

namespace vfiomig {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(PrometheusMetrics, StartsWithEverySeriesAtZero) {
  PrometheusMetrics metrics("1.2.3");
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("vfiomig_build_info{version=\"1.2.3\"} 1"));
  EXPECT_THAT(text, HasSubstr("# TYPE vfiomig_migrations_total counter"));
  EXPECT_THAT(text, HasSubstr("vfiomig_migrations_total{outcome=\"succeeded\","
                              "role=\"source\"} 0"));
  EXPECT_THAT(text, HasSubstr("vfiomig_migrations_total{outcome=\"cancelled\","
                              "role=\"destination\"} 0"));
  EXPECT_THAT(text, HasSubstr("vfiomig_stream_bytes_total{role=\"source\","
                              "section=\"stop_copy\"} 0"));
  EXPECT_THAT(text, HasSubstr("vfiomig_devices{state=\"PRE_COPY_P2P\"} 0"));
  EXPECT_THAT(text, HasSubstr("vfiomig_migrations_running{role=\"source\"} 0"));
  // No arc has run: no histogram series yet.
  EXPECT_THAT(text, Not(HasSubstr("vfiomig_arc_duration_seconds_count")));
}

TEST(PrometheusMetrics, ReportsBecomeSeries) {
  PrometheusMetrics metrics("1");
  metrics.MigrationFinished(MetricsRole::kSource, "succeeded");
  metrics.MigrationFinished(MetricsRole::kSource, "succeeded");
  metrics.MigrationFinished(MetricsRole::kDestination, "failed");
  metrics.StreamBytes(MetricsRole::kSource, /*pre_copy=*/true, 1000);
  metrics.StreamBytes(MetricsRole::kSource, /*pre_copy=*/true, 24);
  metrics.StreamBytes(MetricsRole::kDestination, /*pre_copy=*/false,
                      uint64_t{5} << 30);
  metrics.ArcFinished("mlx5_vfio_pci", DeviceState::RUNNING,
                      DeviceState::RUNNING_P2P, absl::Milliseconds(30), true);
  metrics.ArcFinished("mlx5_vfio_pci", DeviceState::RUNNING,
                      DeviceState::RUNNING_P2P, absl::Seconds(3), false);
  metrics.ArcFinished("sim", DeviceState::STOP, DeviceState::STOP_COPY,
                      absl::Milliseconds(2), true);
  metrics.DeviceStateKnown("gpu0", DeviceState::RUNNING);
  metrics.DeviceStateKnown("gpu1", DeviceState::RUNNING);
  metrics.DeviceStateKnown("nic0", DeviceState::RUNNING);
  metrics.DeviceStateKnown("nic0", DeviceState::STOP);
  metrics.SetRunning(MetricsRole::kDestination, [] { return size_t{2}; });

  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("vfiomig_migrations_total{outcome=\"succeeded\","
                              "role=\"source\"} 2"));
  EXPECT_THAT(text, HasSubstr("vfiomig_migrations_total{outcome=\"failed\","
                              "role=\"destination\"} 1"));
  EXPECT_THAT(text, HasSubstr("vfiomig_stream_bytes_total{role=\"source\","
                              "section=\"pre_copy\"} 1024"));
  EXPECT_THAT(text, HasSubstr("vfiomig_stream_bytes_total{role=\"destination\","
                              "section=\"stop_copy\"} 5368709120"));
  EXPECT_THAT(text,
              HasSubstr("vfiomig_arc_duration_seconds_count{arc=\"RUNNING>"
                        "RUNNING_P2P\"} 2"));
  EXPECT_THAT(text, HasSubstr("vfiomig_arc_duration_seconds_bucket{arc=\""
                              "RUNNING>RUNNING_P2P\",le=\"0.05\"} 1"));
  EXPECT_THAT(text, HasSubstr("vfiomig_arc_duration_seconds_bucket{arc=\""
                              "RUNNING>RUNNING_P2P\",le=\"5\"} 2"));
  EXPECT_THAT(text, HasSubstr("vfiomig_arc_failures_total{arc=\"RUNNING>"
                              "RUNNING_P2P\"} 1"));
  // Drains by driver; STOP>STOP_COPY is no drain.
  EXPECT_THAT(text, HasSubstr("vfiomig_drain_duration_seconds_count{driver=\""
                              "mlx5_vfio_pci\"} 2"));
  EXPECT_THAT(text, Not(HasSubstr("driver=\"sim\"")));
  EXPECT_THAT(text, HasSubstr("vfiomig_devices{state=\"RUNNING\"} 2"));
  EXPECT_THAT(text, HasSubstr("vfiomig_devices{state=\"STOP\"} 1"));
  EXPECT_THAT(text,
              HasSubstr("vfiomig_migrations_running{role=\"destination\"} 2"));
}

TEST(MetricsSink, DropsReportsUntilInstalled) {
  Metrics().MigrationFinished(MetricsRole::kSource, "succeeded");  // no-op
  PrometheusMetrics metrics("1");
  InstallMetrics(&metrics);
  Metrics().MigrationFinished(MetricsRole::kSource, "cancelled");
  InstallMetrics(nullptr);
  Metrics().MigrationFinished(MetricsRole::kSource, "cancelled");
  EXPECT_THAT(metrics.Render(),
              HasSubstr("vfiomig_migrations_total{outcome=\"cancelled\","
                        "role=\"source\"} 1"));
}

TEST(MetricsAddress, Parses) {
  absl::StatusOr<MetricsAddress> a = ParseMetricsAddress("127.0.0.1:9474");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9474);
  a = ParseMetricsAddress("[::1]:0");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "::1");
  EXPECT_EQ(a->port, 0);
  for (const char* bad : {"", "9474", ":9474", "host:", "host:x", "host:65536",
                          "host:-1", "::1:9474", "[]:1"}) {
    EXPECT_FALSE(ParseMetricsAddress(bad).ok()) << bad;
  }
}

TEST(MetricsHttpServer, ServesMetricsAndNothingElse) {
  PrometheusMetrics metrics("9.9");
  metrics.MigrationFinished(MetricsRole::kSource, "failed");
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
      MetricsHttpServer::Start({"127.0.0.1", 0}, &metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string url = (*server)->url();
  ASSERT_THAT(url, ::testing::StartsWith("http://127.0.0.1:"));
  const int port = std::stoi(url.substr(url.rfind(':') + 1));

  httplib::Client client("127.0.0.1", port);
  httplib::Result got = client.Get("/metrics");
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, 200);
  EXPECT_EQ(got->get_header_value("Content-Type"),
            "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(got->body,
              HasSubstr("vfiomig_migrations_total{outcome=\"failed\","
                        "role=\"source\"} 1"));
  EXPECT_EQ(client.Get("/")->status, 404);
  EXPECT_EQ(client.Post("/metrics", "", "text/plain")->status, 404);

  // A second listener on the same port is refused with the address.
  absl::StatusOr<std::unique_ptr<MetricsHttpServer>> twice =
      MetricsHttpServer::Start({"127.0.0.1", port}, &metrics);
  EXPECT_FALSE(twice.ok());
  EXPECT_THAT(std::string(twice.status().message()),
              HasSubstr(absl::StrCat("127.0.0.1:", port)));

  (*server)->Stop();
  EXPECT_FALSE(client.Get("/metrics"));
}

TEST(MetricsHttpServer, StopRightAfterStartReturns) {
  PrometheusMetrics metrics("1");
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> server =
        MetricsHttpServer::Start({"127.0.0.1", 0}, &metrics);
    ASSERT_TRUE(server.ok());
  }
}

}  // namespace
}  // namespace vfiomig
