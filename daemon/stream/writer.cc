#include "daemon/stream/writer.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"

namespace vfiomig::stream {
namespace {

// Appends kFrameHeaderSize + `payload_size` bytes to *dest and returns the
// new frame's span; the caller fills the payload, then seals the frame.
absl::Span<uint8_t> AppendFrame(size_t payload_size, std::string* dest) {
  size_t offset = dest->size();
  dest->resize(offset + kFrameHeaderSize + payload_size);
  return absl::MakeSpan(reinterpret_cast<uint8_t*>(dest->data()) + offset,
                        kFrameHeaderSize + payload_size);
}

}  // namespace

bool IsAllZero(absl::Span<const uint8_t> data) {
  constexpr size_t kPrefix = 16;
  const uint8_t* p = data.data();
  size_t n = data.size();
  if (n <= kPrefix) {
    for (size_t i = 0; i < n; ++i) {
      if (p[i] != 0) return false;
    }
    return true;
  }
  uint64_t w[2];
  std::memcpy(w, p, sizeof(w));
  if ((w[0] | w[1]) != 0) return false;
  // The first 16 bytes are zero, and byte i equals byte i + 16 for every i:
  // by induction every byte is zero.
  return std::memcmp(p, p + kPrefix, n - kPrefix) == 0;
}

absl::Span<uint8_t> PayloadArea(absl::Span<uint8_t> buffer) {
  if (buffer.size() <= kFrameHeaderSize) return {};
  return buffer.subspan(kFrameHeaderSize, kMaxDataPayload);
}

absl::Status StreamWriter::AddHeader(const StreamHeader& header,
                                     std::string* dest) {
  if (state_ != State::kNeedHeader) {
    return absl::FailedPreconditionError("stream header already written");
  }
  absl::StatusOr<std::string> payload = EncodeHeaderPayload(header);
  if (!payload.ok()) return payload.status();
  absl::Span<uint8_t> frame = AppendFrame(payload->size(), dest);
  std::memcpy(frame.data() + kFrameHeaderSize, payload->data(),
              payload->size());
  SealFrame(frame, FrameType::kHeader, sequence_++);
  state_ = State::kOpen;
  return absl::OkStatus();
}

absl::Status StreamWriter::CheckData(Section section, uint64_t bytes) const {
  if (state_ == State::kNeedHeader) {
    return absl::FailedPreconditionError(
        "device data before the stream header");
  }
  if (state_ == State::kEnded) {
    return absl::FailedPreconditionError("device data after END");
  }
  if (section < section_) {
    return absl::FailedPreconditionError(absl::StrCat(
        SectionName(section), " data after ", SectionName(section_), " data"));
  }
  uint64_t total = pre_copy_bytes_ + stop_copy_bytes_;
  if (bytes > std::numeric_limits<uint64_t>::max() - total) {
    return absl::FailedPreconditionError("stream byte count overflows");
  }
  return absl::OkStatus();
}

void StreamWriter::Account(Section section, uint64_t bytes) {
  section_ = section;
  (section == Section::kPreCopy ? pre_copy_bytes_ : stop_copy_bytes_) += bytes;
}

void StreamWriter::AppendData(Section section, absl::Span<const uint8_t> data,
                              std::string* dest) {
  absl::Span<uint8_t> frame = AppendFrame(data.size(), dest);
  std::memcpy(frame.data() + kFrameHeaderSize, data.data(), data.size());
  checksum_.AddFrame(SealFrame(frame, DataFrameType(section), sequence_++));
  Account(section, data.size());
}

void StreamWriter::AppendZeros(Section section, uint64_t count,
                               std::string* dest) {
  absl::Span<uint8_t> frame = AppendFrame(kZerosPayloadSize, dest);
  PutFixed<uint64_t>(frame.data() + kFrameHeaderSize, count);
  checksum_.AddFrame(SealFrame(frame, ZerosFrameType(section), sequence_++));
  Account(section, count);
}

absl::Status StreamWriter::AddData(Section section,
                                   absl::Span<const uint8_t> data,
                                   ZeroCheck zero_check, std::string* dest) {
  if (absl::Status s = CheckData(section, data.size()); !s.ok()) return s;
  size_t pos = 0;
  while (pos < data.size()) {
    size_t rest = data.size() - pos;
    if (zero_check == ZeroCheck::kOff) {
      size_t n = std::min(rest, kMaxDataPayload);
      AppendData(section, data.subspan(pos, n), dest);
      pos += n;
      continue;
    }
    // One run of blocks that are all zero or all not, up to a frame's limit.
    // Both limits are multiples of kZeroBlockSize.
    bool zero = IsAllZero(data.subspan(pos, std::min(rest, kZeroBlockSize)));
    size_t limit = static_cast<size_t>(
        std::min<uint64_t>(rest, zero ? kMaxZeroRun : kMaxDataPayload));
    size_t end = pos + std::min(rest, kZeroBlockSize);
    while (end - pos < limit) {
      size_t n = std::min(limit - (end - pos), kZeroBlockSize);
      if (IsAllZero(data.subspan(end, n)) != zero) break;
      end += n;
    }
    if (zero) {
      AppendZeros(section, end - pos, dest);
    } else {
      AppendData(section, data.subspan(pos, end - pos), dest);
    }
    pos = end;
  }
  return absl::OkStatus();
}

absl::Status StreamWriter::AddZeros(Section section, uint64_t count,
                                    std::string* dest) {
  if (absl::Status s = CheckData(section, count); !s.ok()) return s;
  while (count > 0) {
    uint64_t n = std::min(count, kMaxZeroRun);
    AppendZeros(section, n, dest);
    count -= n;
  }
  return absl::OkStatus();
}

absl::StatusOr<size_t> StreamWriter::SealData(Section section,
                                              absl::Span<uint8_t> buffer,
                                              size_t payload_size,
                                              ZeroCheck zero_check) {
  if (payload_size == 0 || payload_size > kMaxDataPayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("data frame payload of ", payload_size,
                     " bytes (must be 1..", kMaxDataPayload, ")"));
  }
  if (buffer.size() < kFrameHeaderSize + payload_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("frame buffer of ", buffer.size(), " bytes cannot hold ",
                     payload_size, " payload bytes"));
  }
  if (absl::Status s = CheckData(section, payload_size); !s.ok()) return s;
  absl::Span<uint8_t> payload = buffer.subspan(kFrameHeaderSize, payload_size);
  // A payload no longer than a zero-run count goes as it is (the buffer may
  // have no room for the count, and it would save nothing).
  if (zero_check == ZeroCheck::kDetect && payload_size > kZerosPayloadSize &&
      IsAllZero(payload)) {
    // The count overwrites the start of the (zero) payload.
    absl::Span<uint8_t> frame =
        buffer.first(kFrameHeaderSize + kZerosPayloadSize);
    PutFixed<uint64_t>(frame.data() + kFrameHeaderSize, payload_size);
    checksum_.AddFrame(SealFrame(frame, ZerosFrameType(section), sequence_++));
    Account(section, payload_size);
    return frame.size();
  }
  absl::Span<uint8_t> frame = buffer.first(kFrameHeaderSize + payload_size);
  checksum_.AddFrame(SealFrame(frame, DataFrameType(section), sequence_++));
  Account(section, payload_size);
  return frame.size();
}

absl::Status StreamWriter::AddEnd(std::string* dest) {
  if (state_ == State::kNeedHeader) {
    return absl::FailedPreconditionError("END before the stream header");
  }
  if (state_ == State::kEnded) {
    return absl::FailedPreconditionError("END written twice");
  }
  absl::Span<uint8_t> frame = AppendFrame(kEndPayloadSize, dest);
  EncodeEndPayload(totals(), frame.data() + kFrameHeaderSize);
  SealFrame(frame, FrameType::kEnd, sequence_++);
  state_ = State::kEnded;
  return absl::OkStatus();
}

StreamTotals StreamWriter::totals() const {
  return StreamTotals{.pre_copy_bytes = pre_copy_bytes_,
                      .stop_copy_bytes = stop_copy_bytes_,
                      .data_checksum = checksum_.Digest()};
}

}  // namespace vfiomig::stream
