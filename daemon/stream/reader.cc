#include "daemon/stream/reader.h"

#include <limits>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace vfiomig::stream {
namespace {

absl::Span<const uint8_t> AsBytes(std::string_view s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()),
                             s.size());
}

bool IsKnownType(uint8_t type) {
  return type >= static_cast<uint8_t>(FrameType::kHeader) &&
         type <= static_cast<uint8_t>(FrameType::kEnd);
}

// Same code, message prefixed with `prefix`.
absl::Status Prefixed(const std::string& prefix, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(prefix, s.message()));
}

}  // namespace

StreamReader::StreamReader(uint64_t max_device_bytes)
    : max_device_bytes_(max_device_bytes) {}

absl::StatusOr<StreamEvent> StreamReader::Consume(std::string_view frame) {
  if (state_ == State::kFailed) return status_;
  absl::StatusOr<StreamEvent> event = ConsumeFrame(AsBytes(frame));
  if (!event.ok()) {
    state_ = State::kFailed;
    status_ = Prefixed(absl::StrCat("frame ", sequence_, ": "), event.status());
    return status_;
  }
  ++sequence_;
  return event;
}

absl::StatusOr<StreamEvent> StreamReader::ConsumeFrame(
    absl::Span<const uint8_t> frame) {
  if (frame.size() < kFrameHeaderSize) {
    return absl::DataLossError(absl::StrCat(
        "truncated: ", frame.size(), " bytes, shorter than a frame header (",
        kFrameHeaderSize, ")"));
  }
  if (uint32_t magic = DecodeMagic(frame.data()); magic != kFrameMagic) {
    return absl::DataLossError(absl::StrFormat(
        "bad magic 0x%08x (expected 0x%08x)", magic, kFrameMagic));
  }
  const FrameHeader h = DecodeFrameHeader(frame.data());
  if (h.version != kFrameVersion) {
    return absl::UnimplementedError(
        absl::StrCat("frame version ", h.version,
                     " not supported (this reader knows ", kFrameVersion, ")"));
  }
  const size_t payload_size = frame.size() - kFrameHeaderSize;
  if (h.length != payload_size) {
    return absl::DataLossError(
        absl::StrCat(h.length > payload_size ? "truncated" : "length mismatch",
                     ": header says ", h.length, " payload bytes, frame has ",
                     payload_size));
  }
  if (h.length > kMaxFramePayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("payload of ", h.length, " bytes exceeds the limit of ",
                     kMaxFramePayload));
  }
  if (uint64_t sum = FrameChecksum(frame); sum != h.checksum) {
    return absl::DataLossError(absl::StrFormat(
        "checksum mismatch (frame says 0x%016x, computed 0x%016x)", h.checksum,
        sum));
  }
  if (h.reserved != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("reserved field is 0x%x (must be 0)", h.reserved));
  }
  if ((h.flags & ~kKnownFrameFlags) != 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("unknown flags 0x%04x", h.flags));
  }
  if (!IsKnownType(h.type)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown frame type ", h.type));
  }
  if (h.sequence != sequence_) {
    return absl::DataLossError(
        absl::StrCat("sequence ", h.sequence,
                     h.sequence < sequence_ ? " replayed" : " skips ahead",
                     " (expected ", sequence_, ")"));
  }

  const auto type = static_cast<FrameType>(h.type);
  if (state_ == State::kEnded) {
    return absl::InvalidArgumentError(
        absl::StrCat(FrameTypeName(h.type), " frame after END"));
  }
  if (state_ == State::kNeedHeader && type != FrameType::kHeader) {
    return absl::InvalidArgumentError(
        absl::StrCat(FrameTypeName(h.type), " frame before the stream header"));
  }
  absl::Span<const uint8_t> payload = frame.subspan(kFrameHeaderSize);
  switch (type) {
    case FrameType::kHeader:
      return ConsumeHeader(payload);
    case FrameType::kPreCopyData:
      return ConsumeData(Section::kPreCopy, payload, h.checksum);
    case FrameType::kStopCopyData:
      return ConsumeData(Section::kStopCopy, payload, h.checksum);
    case FrameType::kPreCopyZeros:
      return ConsumeZeros(Section::kPreCopy, payload, h.checksum);
    case FrameType::kStopCopyZeros:
      return ConsumeZeros(Section::kStopCopy, payload, h.checksum);
    case FrameType::kEnd:
      return ConsumeEnd(payload);
  }
  return absl::InternalError("unreachable");  // IsKnownType() covers all
}

absl::StatusOr<StreamEvent> StreamReader::ConsumeHeader(
    absl::Span<const uint8_t> payload) {
  if (state_ != State::kNeedHeader) {
    return absl::InvalidArgumentError("second stream header");
  }
  absl::StatusOr<StreamHeader> header = DecodeHeaderPayload(payload);
  if (!header.ok()) return header.status();
  header_ = *header;
  state_ = State::kOpen;
  return HeaderEvent{*std::move(header)};
}

absl::Status StreamReader::CheckLimit(uint64_t bytes) const {
  uint64_t total = pre_copy_bytes_ + stop_copy_bytes_;  // <= the limit
  if (bytes > max_device_bytes_ - total) {
    return absl::ResourceExhaustedError(
        absl::StrCat("device data exceeds the limit of ", max_device_bytes_,
                     " bytes (", total, " received, frame adds ", bytes, ")"));
  }
  return absl::OkStatus();
}

void StreamReader::Account(Section section, uint64_t bytes) {
  section_ = section;
  (section == Section::kPreCopy ? pre_copy_bytes_ : stop_copy_bytes_) += bytes;
}

absl::StatusOr<StreamEvent> StreamReader::ConsumeData(
    Section section, absl::Span<const uint8_t> payload,
    uint64_t frame_checksum) {
  if (section < section_) {
    return absl::InvalidArgumentError(absl::StrCat(
        SectionName(section), " data after ", SectionName(section_), " data"));
  }
  if (payload.empty()) return absl::InvalidArgumentError("empty data frame");
  if (payload.size() > kMaxDataPayload) {  // kMaxFramePayload may grow
    return absl::InvalidArgumentError(
        absl::StrCat("data payload of ", payload.size(),
                     " bytes exceeds the limit of ", kMaxDataPayload));
  }
  if (absl::Status s = CheckLimit(payload.size()); !s.ok()) return s;
  checksum_.AddFrame(frame_checksum);
  Account(section, payload.size());
  return DataEvent{section, payload};
}

absl::StatusOr<StreamEvent> StreamReader::ConsumeZeros(
    Section section, absl::Span<const uint8_t> payload,
    uint64_t frame_checksum) {
  if (section < section_) {
    return absl::InvalidArgumentError(absl::StrCat(
        SectionName(section), " data after ", SectionName(section_), " data"));
  }
  if (payload.size() != kZerosPayloadSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("zero-run payload of ", payload.size(), " bytes (must be ",
                     kZerosPayloadSize, ")"));
  }
  uint64_t count = GetFixed<uint64_t>(payload.data());
  if (count == 0 || count > kMaxZeroRun) {
    return absl::InvalidArgumentError(absl::StrCat(
        "zero run of ", count, " bytes (must be 1..", kMaxZeroRun, ")"));
  }
  if (absl::Status s = CheckLimit(count); !s.ok()) return s;
  checksum_.AddFrame(frame_checksum);
  Account(section, count);
  return ZerosEvent{section, count};
}

absl::StatusOr<StreamEvent> StreamReader::ConsumeEnd(
    absl::Span<const uint8_t> payload) {
  if (payload.size() != kEndPayloadSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("END payload of ", payload.size(), " bytes (must be ",
                     kEndPayloadSize, ")"));
  }
  const StreamTotals claimed = DecodeEndPayload(payload.data());
  const StreamTotals received = totals();
  std::vector<std::string> diffs;
  if (claimed.pre_copy_bytes != received.pre_copy_bytes) {
    diffs.push_back(absl::StrCat("pre_copy_bytes ", claimed.pre_copy_bytes,
                                 " (received ", received.pre_copy_bytes, ")"));
  }
  if (claimed.stop_copy_bytes != received.stop_copy_bytes) {
    diffs.push_back(absl::StrCat("stop_copy_bytes ", claimed.stop_copy_bytes,
                                 " (received ", received.stop_copy_bytes, ")"));
  }
  if (claimed.data_checksum != received.data_checksum) {
    diffs.push_back(absl::StrFormat("data_checksum 0x%016x (computed 0x%016x)",
                                    claimed.data_checksum,
                                    received.data_checksum));
  }
  if (!diffs.empty()) {
    return absl::DataLossError(absl::StrCat(
        "END totals do not match the stream: ", absl::StrJoin(diffs, ", ")));
  }
  state_ = State::kEnded;
  return EndEvent{received};
}

absl::Status StreamReader::Finish() const {
  if (state_ == State::kFailed) return status_;
  if (state_ != State::kEnded) {
    return absl::DataLossError(absl::StrCat("stream ended without END (after ",
                                            sequence_, " frames)"));
  }
  return absl::OkStatus();
}

StreamTotals StreamReader::totals() const {
  return StreamTotals{.pre_copy_bytes = pre_copy_bytes_,
                      .stop_copy_bytes = stop_copy_bytes_,
                      .data_checksum = checksum_.Digest()};
}

absl::StatusOr<std::vector<std::string_view>> SplitFrames(
    std::string_view buffer, size_t max_frames) {
  std::vector<std::string_view> frames;
  size_t offset = 0;
  auto where = [&] {
    return absl::StrCat("packed frame ", frames.size(), " at offset ", offset,
                        ": ");
  };
  while (offset < buffer.size()) {
    const size_t rest = buffer.size() - offset;
    const auto* p = reinterpret_cast<const uint8_t*>(buffer.data() + offset);
    if (frames.size() == max_frames) {
      return absl::ResourceExhaustedError(
          absl::StrCat(where(), "more than ", max_frames, " frames"));
    }
    if (rest < kFrameHeaderSize) {
      return absl::DataLossError(absl::StrCat(
          where(), "truncated: ", rest, " bytes, shorter than a frame header"));
    }
    if (DecodeMagic(p) != kFrameMagic) {
      return absl::DataLossError(absl::StrCat(where(), "bad magic"));
    }
    const uint32_t length = DecodeFrameHeader(p).length;
    if (length > kMaxFramePayload) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "payload of ", length,
                       " bytes exceeds the limit of ", kMaxFramePayload));
    }
    if (rest - kFrameHeaderSize < length) {
      return absl::DataLossError(
          absl::StrCat(where(), "truncated: header says ", length,
                       " payload bytes, buffer has ", rest - kFrameHeaderSize));
    }
    frames.push_back(buffer.substr(offset, kFrameHeaderSize + length));
    offset += kFrameHeaderSize + length;
  }
  return frames;
}

}  // namespace vfiomig::stream
