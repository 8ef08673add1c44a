#include "plugins/sim/sim_stream_format.h"

#include <cstring>

namespace vfiomig::sim {
namespace {

void Put32(uint8_t* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}
void Put64(uint8_t* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t Get32(const uint8_t* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{in[i]} << (8 * i);
  return v;
}
uint64_t Get64(const uint8_t* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{in[i]} << (8 * i);
  return v;
}

}  // namespace

void EncodeStreamHeader(const StreamHeader& header, uint8_t* out) {
  std::memcpy(out, kStreamMagic.data(), kStreamMagic.size());
  Put32(out + 8, header.format_version);
  Put32(out + 12, header.block_size);
  Put64(out + 16, header.total_size);
  Put64(out + 24, header.origin_seed);
}

StreamHeader DecodeStreamHeader(const uint8_t* in) {
  return StreamHeader{.format_version = Get32(in + 8),
                      .block_size = Get32(in + 12),
                      .total_size = Get64(in + 16),
                      .origin_seed = Get64(in + 24)};
}

void EncodeRecordHeader(const RecordHeader& record, uint8_t* out) {
  Put32(out, record.type);
  Put32(out + 4, record.length);
  Put64(out + 8, record.index);
  Put64(out + 16, record.version);
}

RecordHeader DecodeRecordHeader(const uint8_t* in) {
  return RecordHeader{.type = Get32(in),
                      .length = Get32(in + 4),
                      .index = Get64(in + 8),
                      .version = Get64(in + 16)};
}

void EncodeStreamEnd(const StreamEnd& end, uint8_t* out) {
  Put64(out, end.block_records);
  Put64(out + 8, end.content_digest);
}

StreamEnd DecodeStreamEnd(const uint8_t* in) {
  return StreamEnd{.block_records = Get64(in), .content_digest = Get64(in + 8)};
}

}  // namespace vfiomig::sim
