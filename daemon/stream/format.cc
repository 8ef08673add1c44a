#include "daemon/stream/format.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"

#define XXH_STATIC_LINKING_ONLY  // XXH3_state_t by value
#include <xxhash.h>
#if defined(__x86_64__)
// XXH3 with AVX2 or AVX-512 when the CPU has them: libxxhash's default
// entry points use SSE2 only, about 3.5x slower on bulk data.
#include <xxh_x86dispatch.h>
#endif

namespace vfiomig::stream {

const char* SectionName(Section section) {
  return section == Section::kPreCopy ? "PRE_COPY" : "STOP_COPY";
}

std::string FrameTypeName(uint8_t type) {
  switch (static_cast<FrameType>(type)) {
    case FrameType::kHeader:
      return "HEADER";
    case FrameType::kPreCopyData:
      return "PRE_COPY_DATA";
    case FrameType::kPreCopyZeros:
      return "PRE_COPY_ZEROS";
    case FrameType::kStopCopyData:
      return "STOP_COPY_DATA";
    case FrameType::kStopCopyZeros:
      return "STOP_COPY_ZEROS";
    case FrameType::kEnd:
      return "END";
  }
  return absl::StrCat("TYPE_", type);
}

void EncodeFrameHeader(const FrameHeader& header, uint8_t* out) {
  PutFixed<uint32_t>(out + 0, kFrameMagic);
  PutFixed<uint64_t>(out + 4, header.checksum);
  out[12] = header.version;
  out[13] = header.type;
  PutFixed<uint16_t>(out + 14, header.flags);
  PutFixed<uint32_t>(out + 16, header.length);
  PutFixed<uint32_t>(out + 20, header.reserved);
  PutFixed<uint64_t>(out + 24, header.sequence);
}

FrameHeader DecodeFrameHeader(const uint8_t* in) {
  FrameHeader header;
  header.checksum = GetFixed<uint64_t>(in + 4);
  header.version = in[12];
  header.type = in[13];
  header.flags = GetFixed<uint16_t>(in + 14);
  header.length = GetFixed<uint32_t>(in + 16);
  header.reserved = GetFixed<uint32_t>(in + 20);
  header.sequence = GetFixed<uint64_t>(in + 24);
  return header;
}

uint32_t DecodeMagic(const uint8_t* in) { return GetFixed<uint32_t>(in); }

uint64_t FrameChecksum(absl::Span<const uint8_t> frame) {
  return XXH3_64bits(frame.data() + kChecksumStart,
                     frame.size() - kChecksumStart);
}

uint64_t SealFrame(absl::Span<uint8_t> frame, FrameType type,
                   uint64_t sequence) {
  FrameHeader header;
  header.type = static_cast<uint8_t>(type);
  header.length = static_cast<uint32_t>(frame.size() - kFrameHeaderSize);
  header.sequence = sequence;
  EncodeFrameHeader(header, frame.data());
  const uint64_t checksum = FrameChecksum(frame);
  PutFixed<uint64_t>(frame.data() + 4, checksum);
  return checksum;
}

void EncodeEndPayload(const StreamTotals& totals, uint8_t* out) {
  PutFixed<uint64_t>(out + 0, totals.pre_copy_bytes);
  PutFixed<uint64_t>(out + 8, totals.stop_copy_bytes);
  PutFixed<uint64_t>(out + 16, totals.data_checksum);
}

StreamTotals DecodeEndPayload(const uint8_t* in) {
  StreamTotals totals;
  totals.pre_copy_bytes = GetFixed<uint64_t>(in + 0);
  totals.stop_copy_bytes = GetFixed<uint64_t>(in + 8);
  totals.data_checksum = GetFixed<uint64_t>(in + 16);
  return totals;
}

// XXH3_state_t must be 64-byte aligned; operator new honours alignas.
struct DataChecksum::State {
  XXH3_state_t xxh;
};

DataChecksum::DataChecksum() : state_(std::make_unique<State>()) {
  XXH3_INITSTATE(&state_->xxh);
  XXH3_64bits_reset(&state_->xxh);
}
DataChecksum::~DataChecksum() = default;
DataChecksum::DataChecksum(DataChecksum&&) noexcept = default;
DataChecksum& DataChecksum::operator=(DataChecksum&&) noexcept = default;

void DataChecksum::AddFrame(uint64_t frame_checksum) {
  uint8_t bytes[8];
  PutFixed<uint64_t>(bytes, frame_checksum);
  XXH3_64bits_update(&state_->xxh, bytes, sizeof(bytes));
}

uint64_t DataChecksum::Digest() const {
  return XXH3_64bits_digest(&state_->xxh);
}

}  // namespace vfiomig::stream
