#include "daemon/metrics/metrics_address.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace vfiomig {

absl::StatusOr<MetricsAddress> ParseMetricsAddress(const std::string& text) {
  auto bad = [&text](const char* why) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad metrics address '", text, "': ", why,
                     " (HOST:PORT, e.g. 127.0.0.1:9474 or [::1]:9474)"));
  };
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return bad("no port");
  MetricsAddress address;
  address.host = text.substr(0, colon);
  if (address.host.size() >= 2 && address.host.front() == '[' &&
      address.host.back() == ']') {
    address.host = address.host.substr(1, address.host.size() - 2);
  } else if (address.host.find(':') != std::string::npos) {
    return bad("an IPv6 host needs brackets");
  }
  if (address.host.empty()) return bad("no host");
  int port = 0;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return bad("port must be a number from 0 to 65535");
  }
  address.port = port;
  return address;
}

}  // namespace vfiomig
