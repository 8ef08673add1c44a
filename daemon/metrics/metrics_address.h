// The address of the metrics HTTP listener: "HOST:PORT", where HOST is a
// name, an IPv4 address or a bracketed IPv6 address ("[::1]:9474") and
// PORT is 0..65535 (0: any free port, for tests).
#ifndef VFIOMIG_DAEMON_METRICS_METRICS_ADDRESS_H_
#define VFIOMIG_DAEMON_METRICS_METRICS_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"

namespace vfiomig {

struct MetricsAddress {
  std::string host;  // without brackets
  int port = 0;
};

// InvalidArgument naming the address when it is malformed.
absl::StatusOr<MetricsAddress> ParseMetricsAddress(const std::string& text);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_METRICS_METRICS_ADDRESS_H_
