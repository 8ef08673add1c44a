// DeviceIdentityOf / DeviceStateCapacity (used by both migration sides) and
// the request checks that need no device.
#include <cstdint>
#include <string>

#include "daemon/migration/destination_request.h"
#include "daemon/migration/device_identity.h"
#include "daemon/stream/header.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vfiomig {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;

DeviceInfo SimInfo(const std::string& id, uint32_t flags, uint64_t bytes) {
  DeviceInfo info;
  info.id = id;
  info.backend = "sim";
  info.driver = "sim";
  info.features = MigrationFeatures(flags);
  info.state_capacity_bytes = bytes;
  return info;
}

TEST(DeviceIdentityTest, CopiesEveryField) {
  DeviceInfo info;
  info.id = "0000:3b:00.1";
  info.backend = "vfio";
  info.driver = "mlx5_vfio_pci";
  info.features =
      MigrationFeatures(VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P);
  info.pci_vendor_id = 0x15b3;
  info.pci_device_id = 0x101e;
  info.mdev_type = "";
  const stream::DeviceIdentity id = DeviceIdentityOf(info);
  EXPECT_EQ(id.device_id, "0000:3b:00.1");
  EXPECT_EQ(id.pci_vendor_id, 0x15b3);
  EXPECT_EQ(id.pci_device_id, 0x101e);
  EXPECT_EQ(id.driver, "mlx5_vfio_pci");
  EXPECT_EQ(id.migration_flags, VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P);
  EXPECT_EQ(id.compatibility, "vfio:mlx5_vfio_pci");
  EXPECT_EQ(DeviceStateCapacity(info), kUnknownCapacity);
}

TEST(DeviceIdentityTest, SimDevicesAreCompatibleWhateverTheirIds) {
  const uint32_t all =
      VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;
  const DeviceInfo source = SimInfo("gpu0", all, 4 << 20);
  const DeviceInfo target = SimInfo("dgpu0", all, 4 << 20);
  EXPECT_EQ(DeviceIdentityOf(source).compatibility, "sim");
  stream::StreamHeader header;
  header.device = DeviceIdentityOf(source);
  // The sim's stop-copy stream is its state plus its own framing; the
  // capacity must admit a same-sized target.
  header.stop_copy_bytes = (4 << 20) + 32 + 4 * 24 + 48;
  EXPECT_THAT(stream::HeaderIncompatibilities(header, DeviceIdentityOf(target),
                                              DeviceStateCapacity(target)),
              IsEmpty());
}

TEST(DeviceIdentityTest, SmallerTargetIsRefused) {
  const uint32_t flags = VFIO_MIGRATION_STOP_COPY;
  stream::StreamHeader header;
  header.device = DeviceIdentityOf(SimInfo("gpu0", flags, 4 << 20));
  header.stop_copy_bytes = 4 << 20;
  const DeviceInfo target = SimInfo("small0", flags, 1 << 20);
  EXPECT_THAT(stream::CheckHeaderCompatible(header, DeviceIdentityOf(target),
                                            DeviceStateCapacity(target))
                  .message(),
              HasSubstr("capacity"));
}

TEST(DeviceIdentityTest, CapacitySaturates) {
  DeviceInfo info = SimInfo("x", VFIO_MIGRATION_STOP_COPY, UINT64_MAX - 5);
  EXPECT_EQ(DeviceStateCapacity(info), kUnknownCapacity);
}

TEST(MigrationIdTest, Charset) {
  EXPECT_TRUE(ValidateMigrationId("m-1712345678-3").ok());
  EXPECT_TRUE(ValidateMigrationId("6f1c0e1e-8a4b-4f43-9d1b-0d2c7c1b9a11").ok());
  EXPECT_FALSE(ValidateMigrationId("").ok());
  EXPECT_FALSE(ValidateMigrationId("a b").ok());
  EXPECT_FALSE(ValidateMigrationId("m\n1").ok());
  EXPECT_FALSE(ValidateMigrationId(std::string(129, 'a')).ok());
  EXPECT_TRUE(ValidateMigrationId(std::string(128, 'a')).ok());
}

TEST(PrepareRequestTest, BoundsTheRequest) {
  v1::PrepareRequest request;
  request.set_migration_id("m1");
  request.set_source_host("src");
  EXPECT_THAT(ValidatePrepareRequest(request).message(), HasSubstr("empty"));
  for (int i = 0; i < 257; ++i) {
    v1::PeerDevice& d = *request.add_devices();
    d.set_source_device_id("a");
    d.set_target_device_id("b");
    d.mutable_header();
  }
  EXPECT_THAT(ValidatePrepareRequest(request).message(), HasSubstr("257"));
  request.mutable_devices()->DeleteSubrange(1, 256);
  EXPECT_TRUE(ValidatePrepareRequest(request).ok());
  request.mutable_devices(0)->clear_header();
  EXPECT_THAT(ValidatePrepareRequest(request).message(), HasSubstr("header"));
  request.mutable_devices(0)->mutable_header();
  request.mutable_devices(0)->set_target_device_id(std::string(300, 'x'));
  EXPECT_EQ(ValidatePrepareRequest(request).code(),
            absl::StatusCode::kInvalidArgument);
  request.mutable_devices(0)->set_target_device_id("b");
  request.set_source_host("");
  EXPECT_THAT(ValidatePrepareRequest(request).message(),
              HasSubstr("source_host"));
}

}  // namespace
}  // namespace vfiomig
