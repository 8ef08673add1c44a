#include "daemon/datachannel/policy.h"

namespace vfiomig::datachannel {

Decision DecideDataChannel(bool requested, bool peer_link_tls) {
  if (!requested) return {.enabled = false, .reason = "--data-channel=false"};
  if (peer_link_tls) {
    return {.enabled = false,
            .reason =
                "the peer link uses TLS, and the data channel would "
                "carry device state unencrypted; state streams stay "
                "on the TLS peer link"};
  }
  return {.enabled = true, .reason = ""};
}

}  // namespace vfiomig::datachannel
