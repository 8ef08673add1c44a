// The rule that keeps device state off plaintext connections when the peer
// link is TLS (policy.h).
#include "daemon/datachannel/policy.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vfiomig::datachannel {
namespace {

using ::testing::HasSubstr;

TEST(DataChannelPolicyTest, OnlyOnAPlaintextPeerLink) {
  EXPECT_TRUE(DecideDataChannel(true, /*peer_link_tls=*/false).enabled);
  const Decision tls = DecideDataChannel(true, /*peer_link_tls=*/true);
  EXPECT_FALSE(tls.enabled);
  EXPECT_THAT(tls.reason, HasSubstr("TLS"));
}

TEST(DataChannelPolicyTest, OffWhenNotRequested) {
  for (bool tls : {false, true}) {
    const Decision d = DecideDataChannel(false, tls);
    EXPECT_FALSE(d.enabled);
    EXPECT_FALSE(d.reason.empty());
  }
}

}  // namespace
}  // namespace vfiomig::datachannel
