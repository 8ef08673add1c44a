// The data channel handshake: round trips, and every malformed field
// refused by name before it is used.
#include "daemon/datachannel/handshake.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vfiomig::datachannel {
namespace {

using ::testing::HasSubstr;

absl::Span<const uint8_t> Bytes(const std::string& s, size_t n) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()), n);
}

Hello SampleHello() {
  Hello hello;
  for (size_t i = 0; i < kTokenSize; ++i) {
    hello.token[i] = static_cast<uint8_t>(i * 7 + 1);
  }
  hello.migration_id = "m-20261207-1";
  hello.target_device_id = "0000:3b:00.1";
  return hello;
}

TEST(HandshakeTest, HelloRoundTrips) {
  const Hello hello = SampleHello();
  const std::string bytes = EncodeHello(hello);
  ASSERT_EQ(bytes.size(), kHelloFixedSize + 12 + 12);
  Hello got;
  absl::StatusOr<HelloIds> ids =
      DecodeHelloFixed(Bytes(bytes, kHelloFixedSize), &got);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(ids->migration_id, 12u);
  EXPECT_EQ(ids->target_device_id, 12u);
  EXPECT_TRUE(TokensEqual(got.token, hello.token));
  EXPECT_EQ(bytes.substr(kHelloFixedSize), "m-20261207-10000:3b:00.1");
}

TEST(HandshakeTest, MalformedHellosAreRefusedByName) {
  const std::string good = EncodeHello(SampleHello());
  struct Case {
    size_t offset;
    uint8_t value;
    const char* message;
  };
  const Case cases[] = {
      {0, 'X', "bad hello magic"},
      {4, 2, "hello version 2"},
      {6, 1, "reserved hello bytes"},
      {40, 0, "hello id lengths"},  // migration id length 12 -> 0
      {43, 9, "hello id lengths"},  // device id length -> 2316
  };
  for (const Case& c : cases) {
    std::string bad = good;
    bad[c.offset] = static_cast<char>(c.value);
    Hello got;
    absl::StatusOr<HelloIds> ids =
        DecodeHelloFixed(Bytes(bad, kHelloFixedSize), &got);
    ASSERT_FALSE(ids.ok()) << c.message;
    EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(ids.status().message()), HasSubstr(c.message));
  }
  Hello got;
  EXPECT_FALSE(DecodeHelloFixed(Bytes(good, kHelloFixedSize - 1), &got).ok());
}

TEST(HandshakeTest, OverlongIdsAreCutNotOverflowed) {
  Hello hello = SampleHello();
  hello.migration_id.assign(70000, 'm');  // more than a u16 length
  const std::string bytes = EncodeHello(hello);
  Hello got;
  absl::StatusOr<HelloIds> ids =
      DecodeHelloFixed(Bytes(bytes, kHelloFixedSize), &got);
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(ids->migration_id, kMaxIdLength);
  EXPECT_EQ(bytes.size(), kHelloFixedSize + kMaxIdLength + 12);
}

TEST(HandshakeTest, ResultRoundTripsWithStatusAndSummary) {
  Result result;
  result.code = absl::StatusCode::kDataLoss;
  result.message = "device dgpu0: frame 7: checksum mismatch";
  result.frames = 9;
  result.pre_copy_bytes = 1 << 20;
  result.stop_copy_bytes = 3;
  const std::string bytes = EncodeResult(result);
  Result got;
  absl::StatusOr<size_t> length =
      DecodeResultFixed(Bytes(bytes, kResultFixedSize), &got);
  ASSERT_TRUE(length.ok()) << length.status();
  ASSERT_EQ(*length, result.message.size());
  got.message = bytes.substr(kResultFixedSize);
  EXPECT_EQ(got.status(), result.status());
  EXPECT_EQ(got.frames, 9u);
  EXPECT_EQ(got.pre_copy_bytes, uint64_t{1} << 20);
  EXPECT_EQ(got.stop_copy_bytes, 3u);
  EXPECT_TRUE(Result::FromStatus(absl::OkStatus()).status().ok());
}

TEST(HandshakeTest, MalformedResultsAreRefused) {
  Result ok;
  const std::string good = EncodeResult(ok);
  std::string bad_magic = good;
  bad_magic[1] = 'X';
  std::string bad_code = good;
  bad_code[4] = 17;
  std::string long_message = good;
  long_message[33] = 0x10;  // 4096 bytes
  for (const auto& [bytes, message] :
       {std::pair{bad_magic, "bad result magic"},
        std::pair{bad_code, "unknown status code 17"},
        std::pair{long_message, "result message of 4096 bytes"}}) {
    Result got;
    absl::StatusOr<size_t> length =
        DecodeResultFixed(Bytes(bytes, kResultFixedSize), &got);
    ASSERT_FALSE(length.ok()) << message;
    EXPECT_THAT(std::string(length.status().message()), HasSubstr(message));
  }
  Result big;
  big.code = absl::StatusCode::kInternal;
  big.message.assign(5000, 'x');
  EXPECT_EQ(EncodeResult(big).size(), kResultFixedSize + kMaxResultMessage);
}

TEST(HandshakeTest, TokensCompareWhole) {
  Token a = SampleHello().token;
  Token b = a;
  EXPECT_TRUE(TokensEqual(a, b));
  b[kTokenSize - 1] ^= 1;
  EXPECT_FALSE(TokensEqual(a, b));
  b = a;
  b[0] ^= 0x80;
  EXPECT_FALSE(TokensEqual(a, b));
}

}  // namespace
}  // namespace vfiomig::datachannel
