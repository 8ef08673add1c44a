#include "plugins/vfio/vfio_error.h"

#include <cerrno>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vfiomig::vfio {
namespace {

TEST(VfioErrorTest, NamesCallPathAndErrno) {
  absl::Status s = SyscallError("VFIO_GROUP_GET_DEVICE_FD",
                                "/dev/vfio/12 (0000:3b:00.0)", EBUSY);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "VFIO_GROUP_GET_DEVICE_FD on /dev/vfio/12 (0000:3b:00.0): EBUSY "
            "(Device or resource busy)");
}

TEST(VfioErrorTest, CodeFollowsErrno) {
  EXPECT_TRUE(absl::IsInvalidArgument(SyscallError("x", "y", EINVAL)));
  EXPECT_TRUE(absl::IsNotFound(SyscallError("x", "y", ENOENT)));
  EXPECT_TRUE(absl::IsPermissionDenied(SyscallError("x", "y", EACCES)));
}

}  // namespace
}  // namespace vfiomig::vfio
