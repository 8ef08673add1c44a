// libFuzzer target: arbitrary frames into a StreamReader.
//
// The input is a script of frames: per frame a control byte, a 16-bit
// little-endian length and that many bytes. Random bytes almost never carry
// a valid checksum, so the control byte's bits may repair the frame first
// (magic, version, length, sequence, checksum) to let the fuzzer reach the
// grammar and payload checks behind them. Besides crashes and sanitizer
// reports, the target traps when a reader invariant breaks:
//   - a failure is final: every later Consume() and Finish() return it;
//   - the device bytes never exceed the limit;
//   - a DataEvent's bytes lie inside the frame it came from;
//   - Finish() is OK only after an accepted END.
// With the first control byte's top bit set, the input is instead one
// buffer for SplitFrames(), whose frames then go to the reader.
//
// Built and run by tests/fuzz/README.md's commands; its corpus is
// tests/fuzz/corpus/stream_reader.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "daemon/stream/format.h"
#include "daemon/stream/reader.h"

namespace {

using vfiomig::stream::DataEvent;
using vfiomig::stream::EndEvent;
using vfiomig::stream::StreamEvent;
using vfiomig::stream::StreamReader;
namespace fmt = vfiomig::stream;

constexpr uint64_t kLimit = uint64_t{1} << 32;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

enum RepairBits : uint8_t {
  kFixMagic = 1 << 0,
  kFixVersion = 1 << 1,
  kFixLength = 1 << 2,
  kFixSequence = 1 << 3,
  kFixChecksum = 1 << 4,
  kClearFlagsAndReserved = 1 << 5,
};

void Repair(uint8_t control, uint64_t sequence, std::string& frame) {
  if (frame.size() < fmt::kFrameHeaderSize) return;
  auto* p = reinterpret_cast<uint8_t*>(frame.data());
  if (control & kFixMagic) fmt::PutFixed<uint32_t>(p, fmt::kFrameMagic);
  if (control & kFixVersion) p[12] = fmt::kFrameVersion;
  if (control & kClearFlagsAndReserved) {
    fmt::PutFixed<uint16_t>(p + 14, 0);
    fmt::PutFixed<uint32_t>(p + 20, 0);
  }
  if (control & kFixLength) {
    fmt::PutFixed<uint32_t>(
        p + 16, static_cast<uint32_t>(frame.size() - fmt::kFrameHeaderSize));
  }
  if (control & kFixSequence) fmt::PutFixed<uint64_t>(p + 24, sequence);
  if (control & kFixChecksum) {
    fmt::PutFixed<uint64_t>(
        p + 4, fmt::FrameChecksum(absl::MakeConstSpan(p, frame.size())));
  }
}

// Feeds one frame and checks the reader's invariants.
void Feed(StreamReader& reader, std::string_view frame, bool& ended) {
  const absl::Status before = reader.status();
  absl::StatusOr<StreamEvent> event = reader.Consume(frame);
  if (!before.ok()) {
    Check(event.status() == before);
    return;
  }
  if (!event.ok()) {
    Check(reader.status() == event.status());
    Check(reader.Finish() == event.status());
    return;
  }
  const fmt::StreamTotals t = reader.totals();
  Check(t.pre_copy_bytes + t.stop_copy_bytes <= kLimit);
  if (const auto* d = std::get_if<DataEvent>(&*event)) {
    const auto* begin = reinterpret_cast<const uint8_t*>(frame.data());
    Check(d->bytes.data() >= begin &&
          d->bytes.data() + d->bytes.size() <= begin + frame.size());
    Check(!d->bytes.empty());
  }
  if (std::holds_alternative<EndEvent>(*event)) ended = true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  StreamReader reader(kLimit);
  bool ended = false;
  if (size > 0 && (data[0] & 0x80)) {
    std::string_view buffer(reinterpret_cast<const char*>(data + 1), size - 1);
    absl::StatusOr<std::vector<std::string_view>> frames =
        fmt::SplitFrames(buffer, 64);
    if (frames.ok()) {
      for (std::string_view f : *frames) Feed(reader, f, ended);
    }
  } else {
    size_t pos = 0;
    while (pos + 3 <= size) {
      const uint8_t control = data[pos];
      size_t len = data[pos + 1] | (size_t{data[pos + 2]} << 8);
      pos += 3;
      if (len > size - pos) len = size - pos;
      std::string frame(reinterpret_cast<const char*>(data + pos), len);
      pos += len;
      Repair(control, reader.next_sequence(), frame);
      Feed(reader, frame, ended);
    }
  }
  Check(reader.Finish().ok() == (ended && reader.status().ok()));
  return 0;
}
