#include "daemon/metrics/metrics_http.h"

#include <sys/socket.h>

#include <atomic>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/engine/thread_name.h"
#include "httplib.h"
#include "spdlog/spdlog.h"

namespace vfiomig {
namespace {

// The Prometheus text exposition format.
constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";
// Scrapes are rare and small: two threads serve them.
constexpr size_t kThreads = 2;

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const MetricsAddress& address, PrometheusMetrics* metrics) {
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer());
  server->server_ = std::make_unique<httplib::Server>();
  httplib::Server& http = *server->server_;
  http.new_task_queue = [] { return new httplib::ThreadPool(kThreads); };
  // cpp-httplib sets SO_REUSEPORT by default, which would let a second
  // daemon share the port and take half the scrapes: SO_REUSEADDR only
  // (a restarted daemon rebinds at once), so a second one is refused.
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  http.set_read_timeout(5, 0);
  http.set_write_timeout(5, 0);
  http.Get("/metrics",
           [metrics](const httplib::Request&, httplib::Response& response) {
             response.set_content(metrics->Render(), kContentType);
           });
  int port = address.port;
  if (port == 0) {
    port = http.bind_to_any_port(address.host);
  } else if (!http.bind_to_port(address.host, port)) {
    port = -1;
  }
  if (port < 0) {
    return absl::UnavailableError(absl::StrCat(
        "metrics: cannot listen on ", address.host, ":", address.port,
        " (in use, or not an address of this "
        "host)"));
  }
  const bool v6 = address.host.find(':') != std::string::npos;
  server->url_ = absl::StrCat("http://", v6 ? "[" : "", address.host,
                              v6 ? "]" : "", ":", port, "/metrics");
  auto exited = std::make_shared<std::atomic<bool>>(false);
  server->thread_ = std::thread([&http, exited] {
    NameThisThread("migd-metrics");
    if (!http.listen_after_bind()) {
      spdlog::error("metrics: the HTTP listener stopped unexpectedly");
    }
    exited->store(true);
  });
  // stop() only stops a server that already runs: wait for it, so that a
  // Stop() right after Start() cannot leave the thread listening.
  while (!http.is_running() && !exited->load()) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  return server;
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

void MetricsHttpServer::Stop() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace vfiomig
