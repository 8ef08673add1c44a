// A liveness probe for the systemd watchdog: the daemon's own gRPC server,
// asked in process, must answer grpc.health.v1.Health/Check for the whole
// server ("") with SERVING within a deadline. It proves that the server's
// threads still take calls, which is what clients and peers need; a hung
// device does not fail it (arcs run on their own workers).
#ifndef VFIOMIG_DAEMON_LIVENESS_PROBE_H_
#define VFIOMIG_DAEMON_LIVENESS_PROBE_H_

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"

namespace vfiomig {

// OK when `server` answered SERVING within `timeout`; otherwise why not.
absl::Status CheckServing(grpc::Server& server, absl::Duration timeout);

}  // namespace vfiomig

#endif  // VFIOMIG_DAEMON_LIVENESS_PROBE_H_
