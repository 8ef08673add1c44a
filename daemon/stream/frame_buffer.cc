#include "daemon/stream/frame_buffer.h"

#include "daemon/stream/format.h"

namespace vfiomig::stream {
namespace {

// The frame starts this far into the storage, so that frame +
// kChecksumStart is the storage's second 64-byte boundary.
constexpr size_t kLead = kChecksumAlignment - kChecksumStart;
static_assert(kChecksumStart < kChecksumAlignment);

}  // namespace

absl::Span<uint8_t> FrameBuffer::Frame(size_t size) {
  if (capacity_ < size) {
    storage_.reset(static_cast<uint8_t*>(
        ::operator new[](kLead + size, std::align_val_t{kChecksumAlignment})));
    capacity_ = size;
  }
  return absl::MakeSpan(storage_.get() + kLead, size);
}

}  // namespace vfiomig::stream
