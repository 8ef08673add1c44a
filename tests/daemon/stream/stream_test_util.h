// Helpers for the stream tests: a sample header, hand-made frames (with any
// field value, correctly checksummed so that the check under test is the
// one that fires), and a reader loop that reassembles device data.
#ifndef VFIOMIG_TESTS_DAEMON_STREAM_STREAM_TEST_UTIL_H_
#define VFIOMIG_TESTS_DAEMON_STREAM_STREAM_TEST_UTIL_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "daemon/core/fsm.h"
#include "daemon/stream/format.h"
#include "daemon/stream/header.h"
#include "daemon/stream/reader.h"
#include "daemon/stream/writer.h"
#include "gtest/gtest.h"

namespace vfiomig::stream::testing {

inline DeviceIdentity TestIdentity() {
  DeviceIdentity d;
  d.device_id = "0000:3b:00.1";
  d.pci_vendor_id = 0x15b3;
  d.pci_device_id = 0x101e;
  d.driver = "mlx5_vfio_pci";
  d.migration_flags =
      VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY;
  d.compatibility = "fw=22.36.1010";
  return d;
}

inline StreamHeader TestHeader() {
  StreamHeader h;
  h.source_host = "src-host-1";
  h.migration_id = "mig-0001";
  h.device = TestIdentity();
  h.stop_copy_bytes = 1 << 20;
  return h;
}

struct RawFields {
  uint8_t version = kFrameVersion;
  uint16_t flags = 0;
  uint32_t reserved = 0;
  std::optional<uint32_t> length = std::nullopt;  // default: the payload's size
};

// A frame with the given fields and a checksum that matches them.
inline std::string RawFrame(uint8_t type, uint64_t sequence,
                            std::string_view payload, RawFields f = {}) {
  std::string frame(kFrameHeaderSize, '\0');
  frame.append(payload);
  FrameHeader h;
  h.version = f.version;
  h.type = type;
  h.flags = f.flags;
  h.length = f.length.value_or(static_cast<uint32_t>(payload.size()));
  h.reserved = f.reserved;
  h.sequence = sequence;
  auto* p = reinterpret_cast<uint8_t*>(frame.data());
  EncodeFrameHeader(h, p);
  PutFixed<uint64_t>(p + 4,
                     FrameChecksum(absl::MakeConstSpan(p, frame.size())));
  return frame;
}
inline std::string RawFrame(FrameType type, uint64_t sequence,
                            std::string_view payload, RawFields f = {}) {
  return RawFrame(static_cast<uint8_t>(type), sequence, payload, f);
}

inline std::string HeaderFrame(const StreamHeader& header = TestHeader()) {
  return RawFrame(FrameType::kHeader, 0, *EncodeHeaderPayload(header));
}

inline std::string U64(uint64_t v) {
  std::string s(8, '\0');
  PutFixed<uint64_t>(reinterpret_cast<uint8_t*>(s.data()), v);
  return s;
}

inline std::string EndPayload(const StreamTotals& t) {
  std::string s(kEndPayloadSize, '\0');
  EncodeEndPayload(t, reinterpret_cast<uint8_t*>(s.data()));
  return s;
}

inline std::string RandomBytes(size_t n, std::mt19937_64& rng) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    for (size_t j = 0; j < 8 && i + j < n; ++j) {
      s[i + j] = static_cast<char>(v >> (8 * j));
    }
  }
  return s;
}

// What a reader made of a sequence of frames.
struct ReadResult {
  absl::Status status;  // the first failure, else Finish()
  std::optional<StreamHeader> header;
  std::string pre_copy;  // device data, zero runs expanded
  std::string stop_copy;
  std::vector<FrameType> types;  // of each accepted frame
  std::optional<StreamTotals> end;
};

inline ReadResult ReadAll(const std::vector<std::string_view>& frames,
                          uint64_t limit = UINT64_MAX) {
  StreamReader reader(limit);
  ReadResult r;
  for (std::string_view frame : frames) {
    absl::StatusOr<StreamEvent> event = reader.Consume(frame);
    if (!event.ok()) {
      r.status = event.status();
      return r;
    }
    if (auto* h = std::get_if<HeaderEvent>(&*event)) {
      r.header = h->header;
      r.types.push_back(FrameType::kHeader);
    } else if (auto* d = std::get_if<DataEvent>(&*event)) {
      (d->section == Section::kPreCopy ? r.pre_copy : r.stop_copy)
          .append(reinterpret_cast<const char*>(d->bytes.data()),
                  d->bytes.size());
      r.types.push_back(DataFrameType(d->section));
    } else if (auto* z = std::get_if<ZerosEvent>(&*event)) {
      (z->section == Section::kPreCopy ? r.pre_copy : r.stop_copy)
          .append(z->count, '\0');
      r.types.push_back(ZerosFrameType(z->section));
    } else if (auto* e = std::get_if<EndEvent>(&*event)) {
      r.end = e->totals;
      r.types.push_back(FrameType::kEnd);
    }
  }
  r.status = reader.Finish();
  return r;
}

inline std::vector<std::string_view> Views(
    const std::vector<std::string>& frames) {
  return {frames.begin(), frames.end()};
}

inline absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()),
                             s.size());
}

// The END digest of `frames`: the checksums in the headers of their data
// and zero-run frames, in order (other frames are skipped).
inline uint64_t Digest(const std::vector<std::string>& frames) {
  DataChecksum sum;
  for (const std::string& f : frames) {
    if (f.size() < kFrameHeaderSize) continue;
    const FrameHeader h =
        DecodeFrameHeader(reinterpret_cast<const uint8_t*>(f.data()));
    switch (static_cast<FrameType>(h.type)) {
      case FrameType::kPreCopyData:
      case FrameType::kPreCopyZeros:
      case FrameType::kStopCopyData:
      case FrameType::kStopCopyZeros:
        sum.AddFrame(h.checksum);
        break;
      default:
        break;
    }
  }
  return sum.Digest();
}

inline std::string End(uint64_t seq, uint64_t pre, uint64_t stop,
                       uint64_t sum) {
  return RawFrame(FrameType::kEnd, seq, EndPayload({pre, stop, sum}));
}

// HEADER, PRE_COPY "pre", STOP_COPY "stop", END: a valid stream to break.
inline std::vector<std::string> ValidStream() {
  std::vector<std::string> frames = {
      HeaderFrame(), RawFrame(FrameType::kPreCopyData, 1, "pre"),
      RawFrame(FrameType::kStopCopyData, 2, "stop")};
  frames.push_back(End(3, 3, 4, Digest(frames)));
  return frames;
}

inline absl::Status Read(const std::vector<std::string>& frames,
                         uint64_t limit = UINT64_MAX) {
  return ReadAll(Views(frames), limit).status;
}

// Writes a stream with the writer: pre and stop data in chunks of `chunk`.
inline std::vector<std::string> Write(const std::string& pre,
                                      const std::string& stop, size_t chunk,
                                      ZeroCheck zc) {
  StreamWriter w;
  std::string out;
  EXPECT_TRUE(w.AddHeader(TestHeader(), &out).ok());
  for (auto [section, data] :
       {std::pair{Section::kPreCopy, &pre}, {Section::kStopCopy, &stop}}) {
    for (size_t pos = 0; pos < data->size(); pos += chunk) {
      size_t n = std::min(chunk, data->size() - pos);
      EXPECT_TRUE(
          w.AddData(section, Bytes(*data).subspan(pos, n), zc, &out).ok());
    }
  }
  EXPECT_TRUE(w.AddEnd(&out).ok());
  absl::StatusOr<std::vector<std::string_view>> frames =
      SplitFrames(out, size_t{1} << 20);
  EXPECT_TRUE(frames.ok()) << frames.status();
  if (!frames.ok()) return {};
  return {frames->begin(), frames->end()};
}

// Device-like content: random pages, with every third page zero.
inline std::string DeviceData(size_t n, std::mt19937_64& rng) {
  std::string s = RandomBytes(n, rng);
  for (size_t page = 0; page * kZeroBlockSize < n; page += 3) {
    size_t begin = page * kZeroBlockSize;
    std::fill_n(s.begin() + begin, std::min(kZeroBlockSize, n - begin), 0);
  }
  return s;
}

}  // namespace vfiomig::stream::testing

#endif  // VFIOMIG_TESTS_DAEMON_STREAM_STREAM_TEST_UTIL_H_
