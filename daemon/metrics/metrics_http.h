// MetricsHttpServer: serves PrometheusMetrics at GET /metrics over HTTP
// (cpp-httplib), on its own threads, for Prometheus to scrape.
//
// Plain HTTP on purpose: metrics carry no secrets and no control, and
// Prometheus scrapes plain HTTP by default; bind it to a management
// address. Anything but GET /metrics is 404.
//
// `metrics` must outlive the server. Stop() (or the destructor) stops
// serving and joins the threads.
#ifndef VFIOMIG_DAEMON_METRICS_METRICS_HTTP_H_
#define VFIOMIG_DAEMON_METRICS_METRICS_HTTP_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "daemon/metrics/metrics_address.h"
#include "daemon/metrics/prometheus_metrics.h"

namespace httplib {
class Server;
}

namespace vfiomig {

class MetricsHttpServer {
 public:
  // Binds `address` and starts serving. Unavailable naming the address when
  // it cannot bind.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const MetricsAddress& address, PrometheusMetrics* metrics);
  ~MetricsHttpServer();

  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // "http://127.0.0.1:9474/metrics", with port 0 resolved.
  const std::string& url() const { return url_; }

  void Stop();

 private:
  MetricsHttpServer() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string url_;
};

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_METRICS_METRICS_HTTP_H_
