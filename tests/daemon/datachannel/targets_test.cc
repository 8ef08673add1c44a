// Which addresses a source tries for a data channel offer.
#include "daemon/datachannel/targets.h"

#include <string>

#include "daemon/datachannel/handshake.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vfiomig::datachannel {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

v1::DataChannelOffer Offer(
    std::initializer_list<std::pair<const char*, uint32_t>> endpoints) {
  v1::DataChannelOffer offer;
  offer.set_token(std::string(kTokenSize, 't'));
  for (const auto& [host, port] : endpoints) {
    v1::DataChannelEndpoint* e = offer.add_endpoints();
    e->set_host(host);
    e->set_port(port);
  }
  return offer;
}

TEST(TargetsTest, HostOfEveryTargetSyntax) {
  EXPECT_EQ(TargetHost("dest-b:7800"), "dest-b");
  EXPECT_EQ(TargetHost("10.0.0.2:7800"), "10.0.0.2");
  EXPECT_EQ(TargetHost("[fd00::2]:7800"), "[fd00::2]");
  EXPECT_EQ(TargetHost("dns:///dest-b:7800"), "dest-b");
  EXPECT_EQ(TargetHost("ipv4:10.0.0.2:7800"), "10.0.0.2");
  EXPECT_EQ(TargetHost("ipv6:[fd00::2]:7800"), "[fd00::2]");
  EXPECT_EQ(TargetHost("unix:/run/vfio-migd/vfio-migd.sock"), std::nullopt);
  EXPECT_EQ(TargetHost("unix-abstract:migd"), std::nullopt);
  EXPECT_EQ(TargetHost("fd00::2:7800"), std::nullopt);  // ambiguous
  EXPECT_EQ(TargetHost("dest-b"), std::nullopt);
  EXPECT_EQ(TargetHost(":7800"), std::nullopt);
}

TEST(TargetsTest, WildcardAndMatchingHostsUseTheDialledHostFirst) {
  EXPECT_THAT(
      DataChannelTargets(
          Offer({{"192.168.1.5", 4001}, {"0.0.0.0", 4002}, {"10.0.0.2", 4003}}),
          "10.0.0.2:7800"),
      ElementsAre(Target{"10.0.0.2", 4002}, Target{"10.0.0.2", 4003},
                  Target{"192.168.1.5", 4001}));
  EXPECT_THAT(DataChannelTargets(Offer({{"[::]", 4002}}), "[fd00::2]:7800"),
              ElementsAre(Target{"[fd00::2]", 4002}));
}

TEST(TargetsTest, UnusableOffersGiveNoTargets) {
  EXPECT_THAT(DataChannelTargets(Offer({{"0.0.0.0", 4002}}), "unix:/x.sock"),
              IsEmpty());
  v1::DataChannelOffer short_token = Offer({{"0.0.0.0", 4002}});
  short_token.set_token("abc");
  EXPECT_THAT(DataChannelTargets(short_token, "dest:1"), IsEmpty());
  EXPECT_THAT(
      DataChannelTargets(Offer({{"0.0.0.0", 0}, {"0.0.0.0", 70000}}), "dest:1"),
      IsEmpty());
  EXPECT_THAT(DataChannelTargets(v1::DataChannelOffer(), "dest:1"), IsEmpty());
}

TEST(TargetsTest, AtMostAFewDistinctTargets) {
  EXPECT_THAT(
      DataChannelTargets(
          Offer({{"0.0.0.0", 1}, {"dest", 1}, {"a", 2}, {"b", 3}, {"c", 4}}),
          "dest:7800"),
      ElementsAre(Target{"dest", 1}, Target{"a", 2}, Target{"b", 3}));
}

}  // namespace
}  // namespace vfiomig::datachannel
