#include "plugins/sim/sim_resume.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "plugins/sim/sim_generator.h"

#if defined(__x86_64__)
// XXH3 with AVX2 or AVX-512 when the CPU has them: libxxhash's default
// entry points use SSE2 only, about 3.5x slower on bulk data.
#include <xxh_x86dispatch.h>
#endif

namespace vfiomig::sim {

ResumeStaging::ResumeStaging(uint64_t capacity)
    : capacity_(capacity), hash_state_(XXH3_createState()) {}

absl::Status ResumeStaging::OnHeader(const StreamHeader& header) {
  if (header.total_size > capacity_) {
    return absl::InvalidArgumentError(
        absl::StrCat("the stream holds ", header.total_size,
                     " bytes of state, more than this device's capacity of ",
                     capacity_, " (state_bytes)"));
  }
  content_.emplace(header.origin_seed, header.total_size);
  received_.assign(content_->block_count(), false);
  return absl::OkStatus();
}

absl::Status ResumeStaging::OnBlockStart(const RecordHeader& record) {
  if (received_[record.index] &&
      record.version <= content_->version(record.index)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "block ", record.index, " version ", record.version, " after version ",
        content_->version(record.index), " (versions only grow)"));
  }
  record_ = record;
  key_ = BlockKey(content_->origin_seed(), record.index, record.version);
  XXH3_64bits_reset(hash_state_.get());
  return absl::OkStatus();
}

absl::Status ResumeStaging::OnBlockData(uint64_t offset,
                                        absl::Span<const uint8_t> data) {
  size_t same = MatchContent(key_, offset, data);
  if (same != data.size()) {
    return absl::DataLossError(absl::StrFormat(
        "block %d version %d: byte %d differs from the content of origin "
        "seed %#x (corrupted stream)",
        record_.index, record_.version, offset + same,
        content_->origin_seed()));
  }
  XXH3_64bits_update(hash_state_.get(), data.data(), data.size());
  return absl::OkStatus();
}

absl::Status ResumeStaging::OnBlockEnd() {
  content_->Set(record_.index, record_.version,
                XXH3_64bits_digest(hash_state_.get()));
  if (!received_[record_.index]) {
    received_[record_.index] = true;
    ++blocks_received_;
  }
  return absl::OkStatus();
}

absl::Status ResumeStaging::OnEnd(const StreamEnd& end) {
  if (blocks_received_ != content_->block_count()) {
    return absl::DataLossError(
        absl::StrCat("end record after ", blocks_received_, " of ",
                     content_->block_count(), " blocks"));
  }
  // Every hash is known now, so this costs no generation.
  uint64_t digest = ComputeDigest64(*content_);
  if (digest != end.content_digest) {
    return absl::DataLossError(absl::StrFormat(
        "received content has digest %016x, the source sent %016x", digest,
        end.content_digest));
  }
  ended_ = true;
  return absl::OkStatus();
}

absl::Status ResumeStaging::Complete() const {
  if (!reader_.status().ok()) {
    return absl::Status(
        reader_.status().code(),
        absl::StrCat("the stream was refused: ", reader_.status().message()));
  }
  if (!ended_) {
    return absl::DataLossError(
        absl::StrCat("incomplete stream: ", reader_.Progress()));
  }
  return absl::OkStatus();
}

SimContent ResumeStaging::TakeContent() {
  SimContent content = *std::move(content_);
  content_.reset();
  return content;
}

}  // namespace vfiomig::sim
