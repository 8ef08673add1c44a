#include "daemon/stream/header.h"

#include <cstdint>
#include <string>

#include "daemon/core/fsm.h"
#include "daemon/stream/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/stream/stream_test_util.h"
#include "vfiomig/v1/stream.pb.h"

namespace vfiomig::stream {
namespace {

using testing::Bytes;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::TestHeader;
using testing::TestIdentity;

TEST(HeaderPayloadTest, RoundTrip) {
  StreamHeader h = TestHeader();
  h.device.mdev_type = "nvidia-35";
  h.stop_copy_bytes = uint64_t{5} << 40;
  absl::StatusOr<std::string> payload = EncodeHeaderPayload(h);
  ASSERT_TRUE(payload.ok()) << payload.status();
  absl::StatusOr<StreamHeader> back = DecodeHeaderPayload(Bytes(*payload));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, h);
}

TEST(HeaderPayloadTest, IsTheProtoMessage) {
  absl::StatusOr<std::string> payload = EncodeHeaderPayload(TestHeader());
  ASSERT_TRUE(payload.ok());
  v1::StreamHeader msg;
  ASSERT_TRUE(msg.ParseFromString(*payload));
  EXPECT_EQ(msg.stream_version(), kStreamVersion);
  EXPECT_EQ(msg.migration_id(), "mig-0001");
  EXPECT_EQ(msg.device().pci_vendor_id(), 0x15b3u);
  EXPECT_EQ(msg.device().driver(), "mlx5_vfio_pci");
}

TEST(HeaderPayloadTest, UnknownFieldsAreIgnored) {
  absl::StatusOr<std::string> payload = EncodeHeaderPayload(TestHeader());
  ASSERT_TRUE(payload.ok());
  // Field 99, varint 1: what a newer writer might add.
  std::string newer = *payload + std::string("\x98\x06\x01", 3);
  absl::StatusOr<StreamHeader> back = DecodeHeaderPayload(Bytes(newer));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, TestHeader());
}

TEST(HeaderPayloadTest, RefusesUnknownStreamVersions) {
  for (uint32_t version : {0u, 2u, 0xffffffffu}) {
    StreamHeader h = TestHeader();
    h.stream_version = version;
    absl::StatusOr<std::string> payload = EncodeHeaderPayload(h);
    ASSERT_TRUE(payload.ok());
    absl::StatusOr<StreamHeader> back = DecodeHeaderPayload(Bytes(*payload));
    EXPECT_EQ(back.status().code(), absl::StatusCode::kUnimplemented);
    EXPECT_THAT(std::string(back.status().message()),
                HasSubstr(absl::StrCat("stream version ", version)));
  }
}

TEST(HeaderPayloadTest, RefusesGarbage) {
  absl::StatusOr<StreamHeader> back =
      DecodeHeaderPayload(Bytes(std::string("\xff\xff\xff", 3)));
  EXPECT_EQ(back.status().code(), absl::StatusCode::kDataLoss);
  // An empty message has stream_version 0.
  EXPECT_EQ(DecodeHeaderPayload({}).status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST(HeaderPayloadTest, RefusesPciIdsBeyond16Bits) {
  v1::StreamHeader msg;
  msg.set_stream_version(kStreamVersion);
  msg.mutable_device()->set_pci_vendor_id(0x10000);
  std::string payload = msg.SerializeAsString();
  EXPECT_EQ(DecodeHeaderPayload(Bytes(payload)).status().code(),
            absl::StatusCode::kInvalidArgument);
  msg.mutable_device()->set_pci_vendor_id(0xffff);
  msg.mutable_device()->set_pci_device_id(0x12345);
  payload = msg.SerializeAsString();
  EXPECT_EQ(DecodeHeaderPayload(Bytes(payload)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(HeaderPayloadTest, SizeIsBounded) {
  StreamHeader h = TestHeader();
  h.device.compatibility = std::string(kMaxHeaderPayload, 'c');
  absl::StatusOr<std::string> payload = EncodeHeaderPayload(h);
  EXPECT_EQ(payload.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(payload.status().message()),
              HasSubstr("exceeds the limit"));

  // Just under the bound is fine.
  h.device.compatibility.clear();
  absl::StatusOr<std::string> small = EncodeHeaderPayload(h);
  ASSERT_TRUE(small.ok());
  h.device.compatibility =
      std::string(kMaxHeaderPayload - small->size() - 8, 'c');
  absl::StatusOr<std::string> big = EncodeHeaderPayload(h);
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_LE(big->size(), kMaxHeaderPayload);
  EXPECT_TRUE(DecodeHeaderPayload(Bytes(*big)).ok());

  std::string oversize(kMaxHeaderPayload + 1, '\0');
  EXPECT_EQ(DecodeHeaderPayload(Bytes(oversize)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

constexpr uint64_t kCapacity = uint64_t{1} << 30;

TEST(HeaderCompatibilityTest, SameDeviceIsCompatible) {
  DeviceIdentity target = TestIdentity();
  target.device_id = "0000:af:00.1";  // ids are never compared
  EXPECT_THAT(HeaderIncompatibilities(TestHeader(), target, kCapacity),
              IsEmpty());
  EXPECT_TRUE(CheckHeaderCompatible(TestHeader(), target, kCapacity).ok());
}

TEST(HeaderCompatibilityTest, TargetWithMoreFeaturesIsCompatible) {
  StreamHeader h = TestHeader();
  h.device.migration_flags = VFIO_MIGRATION_STOP_COPY;
  EXPECT_THAT(HeaderIncompatibilities(h, TestIdentity(), kCapacity), IsEmpty());
}

TEST(HeaderCompatibilityTest, EachReason) {
  struct Case {
    const char* name;
    void (*change)(StreamHeader& h, DeviceIdentity& target);
    const char* reason;
  };
  const Case cases[] = {
      {"driver",
       [](StreamHeader&, DeviceIdentity& t) { t.driver = "vfio-pci"; },
       "different driver: stream has \"mlx5_vfio_pci\", target has "
       "\"vfio-pci\""},
      {"mdev",
       [](StreamHeader& h, DeviceIdentity&) { h.device.mdev_type = "nv-35"; },
       "different mdev type: stream has \"nv-35\", target has \"\""},
      {"vendor",
       [](StreamHeader&, DeviceIdentity& t) { t.pci_vendor_id = 0x10de; },
       "different PCI vendor:device: stream has 15b3:101e, target has "
       "10de:101e"},
      {"device",
       [](StreamHeader&, DeviceIdentity& t) { t.pci_device_id = 0x101d; },
       "different PCI vendor:device: stream has 15b3:101e, target has "
       "15b3:101d"},
      {"features",
       [](StreamHeader&, DeviceIdentity& t) {
         t.migration_flags = VFIO_MIGRATION_STOP_COPY;
       },
       "target lacks migration features the source had: p2p,pre_copy"},
      {"no stop_copy",
       [](StreamHeader& h, DeviceIdentity&) {
         h.device.migration_flags = VFIO_MIGRATION_P2P;
       },
       "source device lacks stop_copy"},
      {"compatibility",
       [](StreamHeader&, DeviceIdentity& t) { t.compatibility = "fw=23"; },
       "compatibility string mismatch: stream has \"fw=22.36.1010\", "
       "target has \"fw=23\""},
      {"capacity",
       [](StreamHeader& h, DeviceIdentity&) {
         h.stop_copy_bytes = kCapacity + 1;
       },
       "device state larger than the target's capacity: stop-copy estimate "
       "1073741825 bytes, capacity 1073741824 bytes"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    StreamHeader h = TestHeader();
    DeviceIdentity target = TestIdentity();
    c.change(h, target);
    EXPECT_THAT(HeaderIncompatibilities(h, target, kCapacity),
                ElementsAre(c.reason));
    absl::Status s = CheckHeaderCompatible(h, target, kCapacity);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.reason));
    EXPECT_THAT(std::string(s.message()),
                HasSubstr("stream from \"src-host-1\" device \"0000:3b:00.1\" "
                          "cannot resume into \"0000:3b:00.1\": "));
  }
}

TEST(HeaderCompatibilityTest, CapacityIsInclusive) {
  StreamHeader h = TestHeader();
  h.stop_copy_bytes = kCapacity;
  EXPECT_THAT(HeaderIncompatibilities(h, TestIdentity(), kCapacity), IsEmpty());
}

TEST(HeaderCompatibilityTest, AllReasonsAreListed) {
  DeviceIdentity target;
  target.driver = "vfio-pci";
  target.migration_flags = VFIO_MIGRATION_STOP_COPY;
  StreamHeader h = TestHeader();
  h.stop_copy_bytes = 2 * kCapacity;
  EXPECT_EQ(HeaderIncompatibilities(h, target, kCapacity).size(), 5u);
  absl::Status s = CheckHeaderCompatible(h, target, kCapacity);
  EXPECT_THAT(std::string(s.message()), HasSubstr("driver"));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("; different PCI vendor:device"));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("; target lacks migration features"));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("; compatibility string mismatch"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("; device state larger"));
}

TEST(HeaderCompatibilityTest, PeerStringsAreEscapedAndCut) {
  StreamHeader h = TestHeader();
  h.device.driver = std::string("evil\n\x1b[31m", 10) + std::string(500, 'x');
  std::vector<std::string> reasons =
      HeaderIncompatibilities(h, TestIdentity(), kCapacity);
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_THAT(reasons[0], HasSubstr("\"evil\\n\\x1b[31m"));
  EXPECT_THAT(reasons[0], HasSubstr("xxx\"..."));
  EXPECT_EQ(reasons[0].find('\n'), std::string::npos);
  EXPECT_LT(reasons[0].size(), 300u);
}

}  // namespace
}  // namespace vfiomig::stream
