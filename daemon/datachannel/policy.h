// When the data channel may carry device state.
//
// A data channel connection is plain TCP: the per-migration token that the
// destination hands out over the peer link authenticates a connection, but
// nothing encrypts or integrity-protects what follows beyond the stream's
// own checksums. So the rule is: a data channel only where the peer link
// itself is plaintext (--insecure, or a build without TLS). With mutual TLS
// on the peer link, state keeps flowing in StreamState calls over that TLS
// link, on both sides: a TLS destination offers no data channel, and a TLS
// source ignores any offer.
//
// Pure.
#ifndef VFIOMIG_DAEMON_DATACHANNEL_POLICY_H_
#define VFIOMIG_DAEMON_DATACHANNEL_POLICY_H_

#include <string>

namespace vfiomig::datachannel {

struct Decision {
  bool enabled = false;
  // Why not, for the log; empty when enabled.
  std::string reason;
};

// `requested`: --data-channel; `peer_link_tls`: the peer link (listen
// targets and destinations over TCP) uses TLS.
Decision DecideDataChannel(bool requested, bool peer_link_tls);

}  // namespace vfiomig::datachannel

#endif  // VFIOMIG_DAEMON_DATACHANNEL_POLICY_H_
