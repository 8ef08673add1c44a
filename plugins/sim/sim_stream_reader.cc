#include "plugins/sim/sim_stream_reader.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "plugins/sim/sim_generator.h"

namespace vfiomig::sim {
namespace {

absl::Status Refuse(absl::string_view what) {
  return absl::InvalidArgumentError(what);
}

}  // namespace

absl::Status StreamReader::Consume(absl::Span<const uint8_t> data) {
  while (status_.ok() && !data.empty()) {
    absl::Status s;
    size_t before = data.size();
    switch (phase_) {
      case Phase::kHeader:
      case Phase::kRecordHeader:
      case Phase::kEndPayload:
        if (Fill(data, FixedPartSize())) {
          s = OnFixedPart();
          if (s.ok() &&
              (phase_ == Phase::kRecordHeader || phase_ == Phase::kDone)) {
            part_start_ = consumed_ + (before - data.size());
          }
        }
        break;
      case Phase::kBlockPayload: {
        size_t n =
            std::min<uint64_t>(data.size(), record_.length - payload_pos_);
        s = sink_->OnBlockData(payload_pos_, data.first(n));
        data.remove_prefix(n);
        payload_pos_ += n;
        if (s.ok() && payload_pos_ == record_.length) {
          s = sink_->OnBlockEnd();
          ++block_records_;
          phase_ = Phase::kRecordHeader;
          part_start_ = consumed_ + (before - data.size());
        }
        break;
      }
      case Phase::kDone:
        s = Refuse(
            absl::StrCat(data.size(), " bytes of data after the end record"));
        break;
    }
    consumed_ += before - data.size();
    if (!s.ok()) {
      status_ = absl::Status(
          s.code(),
          absl::StrCat("sim stream byte ", part_start_, ": ", s.message()));
    }
  }
  return status_;
}

size_t StreamReader::FixedPartSize() const {
  switch (phase_) {
    case Phase::kHeader:
      return kStreamHeaderSize;
    case Phase::kRecordHeader:
      return kRecordHeaderSize;
    default:
      return kEndPayloadSize;
  }
}

bool StreamReader::Fill(absl::Span<const uint8_t>& data, size_t want) {
  size_t n = std::min(data.size(), want - fixed_len_);
  std::memcpy(fixed_.data() + fixed_len_, data.data(), n);
  fixed_len_ += n;
  data.remove_prefix(n);
  if (fixed_len_ < want) return false;
  fixed_len_ = 0;
  return true;
}

// Called with a complete fixed-size part in fixed_.
absl::Status StreamReader::OnFixedPart() {
  switch (phase_) {
    case Phase::kHeader: {
      if (std::memcmp(fixed_.data(), kStreamMagic.data(),
                      kStreamMagic.size()) != 0) {
        return Refuse("bad magic: not a sim device stream");
      }
      header_ = DecodeStreamHeader(fixed_.data());
      if (absl::Status s = CheckHeader(header_); !s.ok()) return s;
      block_count_ = BlockCount(header_.total_size);
      phase_ = Phase::kRecordHeader;
      return sink_->OnHeader(header_);
    }
    case Phase::kRecordHeader: {
      record_ = DecodeRecordHeader(fixed_.data());
      if (absl::Status s = CheckRecord(record_); !s.ok()) return s;
      if (record_.type == kEndRecord) {
        phase_ = Phase::kEndPayload;
        return absl::OkStatus();
      }
      phase_ = Phase::kBlockPayload;
      payload_pos_ = 0;
      return sink_->OnBlockStart(record_);
    }
    case Phase::kEndPayload: {
      StreamEnd end = DecodeStreamEnd(fixed_.data());
      if (end.block_records != block_records_) {
        return Refuse(absl::StrCat("end record counts ", end.block_records,
                                   " block records, the stream had ",
                                   block_records_));
      }
      phase_ = Phase::kDone;
      return sink_->OnEnd(end);
    }
    case Phase::kBlockPayload:
    case Phase::kDone:
      break;
  }
  return absl::InternalError("sim stream reader: no fixed part expected");
}

absl::Status StreamReader::CheckHeader(const StreamHeader& h) const {
  if (h.format_version != kStreamFormatVersion) {
    return Refuse(absl::StrCat("unsupported sim stream format version ",
                               h.format_version, " (this build reads ",
                               kStreamFormatVersion, ")"));
  }
  if (h.block_size != kBlockSize) {
    return Refuse(absl::StrCat("unsupported block size ", h.block_size,
                               " (this build uses ", kBlockSize, ")"));
  }
  if (h.total_size == 0 || h.total_size > kMaxStateBytes) {
    return Refuse(absl::StrCat("state size ", h.total_size, " is outside 1..",
                               kMaxStateBytes));
  }
  return absl::OkStatus();
}

absl::Status StreamReader::CheckRecord(const RecordHeader& r) const {
  if (r.type == kEndRecord) {
    if (r.length != kEndPayloadSize || r.index != 0 || r.version != 0) {
      return Refuse("malformed end record");
    }
    return absl::OkStatus();
  }
  if (r.type != kBlockRecord) {
    return Refuse(absl::StrFormat("unknown record type %#x", r.type));
  }
  if (r.index >= block_count_) {
    return Refuse(absl::StrCat("block index ", r.index, " out of range (",
                               block_count_, " blocks)"));
  }
  if (r.length != BlockLength(header_.total_size, r.index)) {
    return Refuse(absl::StrCat("block ", r.index, " has length ", r.length,
                               ", expected ",
                               BlockLength(header_.total_size, r.index)));
  }
  if (r.version > kMaxBlockVersion) {
    return Refuse(absl::StrCat("block ", r.index, " version ", r.version,
                               " is out of range"));
  }
  return absl::OkStatus();
}

std::string StreamReader::Progress() const {
  switch (phase_) {
    case Phase::kHeader:
      return absl::StrCat("no complete header (", consumed_, " bytes)");
    case Phase::kRecordHeader:
      return absl::StrCat(block_records_, " block records, no end record (",
                          consumed_, " bytes)");
    case Phase::kBlockPayload:
      return absl::StrCat(block_records_, " block records, cut inside block ",
                          record_.index, " at byte ", payload_pos_, " of ",
                          record_.length);
    case Phase::kEndPayload:
      return absl::StrCat(block_records_,
                          " block records, cut inside the end "
                          "record");
    case Phase::kDone:
      return absl::StrCat("complete (", consumed_, " bytes)");
  }
  return "";
}

}  // namespace vfiomig::sim
