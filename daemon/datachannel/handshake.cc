#include "daemon/datachannel/handshake.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "daemon/stream/format.h"

namespace vfiomig::datachannel {
namespace {

using stream::GetFixed;
using stream::PutFixed;

// The highest absl::StatusCode (kUnauthenticated); others are refused.
constexpr uint32_t kMaxStatusCode = 16;

absl::Status Refuse(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("data channel: ", what));
}

}  // namespace

std::string EncodeHello(const Hello& hello) {
  const size_t mig = std::min(hello.migration_id.size(), kMaxIdLength);
  const size_t dev = std::min(hello.target_device_id.size(), kMaxIdLength);
  std::string out(kHelloFixedSize + mig + dev, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  PutFixed<uint32_t>(p, kHelloMagic);
  p[4] = kVersion;
  std::memcpy(p + 8, hello.token.data(), kTokenSize);
  PutFixed<uint16_t>(p + 40, static_cast<uint16_t>(mig));
  PutFixed<uint16_t>(p + 42, static_cast<uint16_t>(dev));
  std::memcpy(p + kHelloFixedSize, hello.migration_id.data(), mig);
  std::memcpy(p + kHelloFixedSize + mig, hello.target_device_id.data(), dev);
  return out;
}

absl::StatusOr<HelloIds> DecodeHelloFixed(absl::Span<const uint8_t> fixed,
                                          Hello* hello) {
  if (fixed.size() != kHelloFixedSize) {
    return Refuse(absl::StrCat("hello of ", fixed.size(), " bytes"));
  }
  const uint8_t* p = fixed.data();
  if (GetFixed<uint32_t>(p) != kHelloMagic) {
    return Refuse("bad hello magic: not a vfio-migd data connection");
  }
  if (p[4] != kVersion) {
    return Refuse(absl::StrCat("hello version ", p[4], " (this build speaks ",
                               kVersion, ")"));
  }
  if (p[5] != 0 || p[6] != 0 || p[7] != 0) {
    return Refuse("reserved hello bytes are not zero");
  }
  HelloIds ids{.migration_id = GetFixed<uint16_t>(p + 40),
               .target_device_id = GetFixed<uint16_t>(p + 42)};
  if (ids.migration_id == 0 || ids.migration_id > kMaxIdLength ||
      ids.target_device_id == 0 || ids.target_device_id > kMaxIdLength) {
    return Refuse(absl::StrCat("hello id lengths ", ids.migration_id, " and ",
                               ids.target_device_id, " (1..", kMaxIdLength,
                               " each)"));
  }
  std::memcpy(hello->token.data(), p + 8, kTokenSize);
  return ids;
}

Result Result::FromStatus(const absl::Status& status) {
  Result result;
  result.code = status.code();
  result.message = std::string(status.message());
  return result;
}

std::string EncodeResult(const Result& result) {
  const size_t len = std::min(result.message.size(), kMaxResultMessage);
  std::string out(kResultFixedSize + len, '\0');
  auto* p = reinterpret_cast<uint8_t*>(out.data());
  PutFixed<uint32_t>(p, kResultMagic);
  PutFixed<uint32_t>(p + 4, static_cast<uint32_t>(result.code));
  PutFixed<uint64_t>(p + 8, result.frames);
  PutFixed<uint64_t>(p + 16, result.pre_copy_bytes);
  PutFixed<uint64_t>(p + 24, result.stop_copy_bytes);
  PutFixed<uint32_t>(p + 32, static_cast<uint32_t>(len));
  std::memcpy(p + kResultFixedSize, result.message.data(), len);
  return out;
}

absl::StatusOr<size_t> DecodeResultFixed(absl::Span<const uint8_t> fixed,
                                         Result* result) {
  if (fixed.size() != kResultFixedSize) {
    return Refuse(absl::StrCat("result of ", fixed.size(), " bytes"));
  }
  const uint8_t* p = fixed.data();
  if (GetFixed<uint32_t>(p) != kResultMagic) {
    return Refuse("bad result magic");
  }
  const uint32_t code = GetFixed<uint32_t>(p + 4);
  if (code > kMaxStatusCode) {
    return Refuse(absl::StrCat("unknown status code ", code));
  }
  const uint32_t len = GetFixed<uint32_t>(p + 32);
  if (len > kMaxResultMessage) {
    return Refuse(absl::StrCat("result message of ", len, " bytes (at most ",
                               kMaxResultMessage, ")"));
  }
  result->code = static_cast<absl::StatusCode>(code);
  result->frames = GetFixed<uint64_t>(p + 8);
  result->pre_copy_bytes = GetFixed<uint64_t>(p + 16);
  result->stop_copy_bytes = GetFixed<uint64_t>(p + 24);
  return static_cast<size_t>(len);
}

bool TokensEqual(const Token& a, const Token& b) {
  uint8_t diff = 0;
  for (size_t i = 0; i < kTokenSize; ++i) diff |= a[i] ^ b[i];
  return diff == 0;
}

}  // namespace vfiomig::datachannel
