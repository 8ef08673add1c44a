// libFuzzer target: HEADER frame payloads (a serialised StreamHeader from
// the peer) into the header decoder and the destination's compatibility
// check.
//
// Besides crashes and sanitizer reports, it traps when an invariant
// breaks:
//   - a payload larger than kMaxHeaderPayload is never accepted;
//   - an accepted header has the one known stream version;
//   - an accepted header encodes again and decodes to the same header;
//   - HeaderIncompatibilities is empty exactly when CheckHeaderCompatible
//     is OK.
#include <cstddef>
#include <cstdint>
#include <string>

#include "daemon/stream/format.h"
#include "daemon/stream/header.h"

namespace {

namespace st = vfiomig::stream;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<st::StreamHeader> header =
      st::DecodeHeaderPayload(absl::MakeConstSpan(data, size));
  if (!header.ok()) return 0;
  Check(size <= st::kMaxHeaderPayload);
  Check(header->stream_version == st::kStreamVersion);

  absl::StatusOr<std::string> encoded = st::EncodeHeaderPayload(*header);
  Check(encoded.ok());
  absl::StatusOr<st::StreamHeader> again =
      st::DecodeHeaderPayload(absl::MakeConstSpan(
          reinterpret_cast<const uint8_t*>(encoded->data()), encoded->size()));
  Check(again.ok() && *again == *header);

  // Against a target like the one it describes, and against a small one.
  st::DeviceIdentity target = header->device;
  for (uint64_t capacity : {UINT64_MAX, uint64_t{1} << 20}) {
    const bool compatible =
        st::HeaderIncompatibilities(*header, target, capacity).empty();
    Check(compatible ==
          st::CheckHeaderCompatible(*header, target, capacity).ok());
  }
  target.driver += "-other";
  Check(!st::HeaderIncompatibilities(*header, target, UINT64_MAX).empty());
  return 0;
}
