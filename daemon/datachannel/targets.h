// Where a source connects for a destination's data channel offer.
//
// The offer lists the destination's listen hosts with their data channel
// ports. A wildcard host ("0.0.0.0", "[::]") means "the address you reached
// me at": the host of the peer API target the source dialled. A host equal
// to that one comes first; other specific hosts follow as given, in case
// the source can reach them too.
//
// Pure.
#ifndef VFIOMIG_DAEMON_DATACHANNEL_TARGETS_H_
#define VFIOMIG_DAEMON_DATACHANNEL_TARGETS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "vfiomig/v1/peer.pb.h"

namespace vfiomig::datachannel {

// Candidates tried at most, best first.
inline constexpr size_t kMaxTargets = 3;

struct Target {
  std::string host;
  uint16_t port = 0;

  friend bool operator==(const Target&, const Target&) = default;
};

// The host of a gRPC client target: "host:port", "[v6]:port",
// "dns:///host:port", "ipv4:a.b.c.d:port", "ipv6:[v6]:port". nullopt for
// unix sockets and anything else without a network host.
std::optional<std::string> TargetHost(const std::string& destination);

// Empty when the offer is unusable: a token that is not kTokenSize bytes,
// no endpoint with a port, or a destination without a network host.
std::vector<Target> DataChannelTargets(const v1::DataChannelOffer& offer,
                                       const std::string& destination);

}  // namespace vfiomig::datachannel

#endif  // VFIOMIG_DAEMON_DATACHANNEL_TARGETS_H_
