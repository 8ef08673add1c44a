// ResumeStaging: receives a sim stream for a device in RESUMING and builds
// the content the device will have once RESUMING -> STOP commits it.
//
// The bytes themselves are not kept: each block's payload is checked in
// place against the content its (origin seed, index, version) must have,
// and the device keeps the version and the XXH3 of the bytes received. A
// byte that does not match refuses the stream with DataLoss; so do a stream
// for a larger state than `capacity`, a version that goes backwards, and an
// end record that arrives before every block or disagrees with the
// received content's digest. Nothing is visible to the device until
// Complete() says the stream was whole, so a failed or abandoned resume
// leaves the device's previous content untouched.
//
// Not thread-safe: owned by one resume session under its device's lock.
#ifndef VFIOMIG_PLUGINS_SIM_SIM_RESUME_H_
#define VFIOMIG_PLUGINS_SIM_SIM_RESUME_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "plugins/sim/sim_content.h"
#include "plugins/sim/sim_stream_reader.h"
#include "xxhash.h"

namespace vfiomig::sim {

class ResumeStaging : private StreamSink {
 public:
  explicit ResumeStaging(uint64_t capacity);

  // The next bytes of the stream, in any chunking.
  absl::Status Write(absl::Span<const uint8_t> data) {
    return reader_.Consume(data);
  }

  // OK once a complete stream was received and accepted; otherwise why
  // not (refused earlier, or cut short and where).
  absl::Status Complete() const;

  // The received content. Requires Complete().ok(); call once.
  SimContent TakeContent();

  // The first refusal, latched; OK while the stream is acceptable so far.
  const absl::Status& status() const { return reader_.status(); }
  uint64_t bytes_received() const { return reader_.bytes_consumed(); }

 private:
  struct FreeState {
    void operator()(XXH3_state_t* s) const { XXH3_freeState(s); }
  };

  absl::Status OnHeader(const StreamHeader& header) override;
  absl::Status OnBlockStart(const RecordHeader& record) override;
  absl::Status OnBlockData(uint64_t offset,
                           absl::Span<const uint8_t> data) override;
  absl::Status OnBlockEnd() override;
  absl::Status OnEnd(const StreamEnd& end) override;

  uint64_t capacity_;
  std::optional<SimContent> content_;
  std::vector<bool> received_;
  uint64_t blocks_received_ = 0;
  // The block record being received.
  RecordHeader record_;
  uint64_t key_ = 0;
  std::unique_ptr<XXH3_state_t, FreeState> hash_state_;
  bool ended_ = false;
  StreamReader reader_{this};
};

}  // namespace vfiomig::sim

#endif  // VFIOMIG_PLUGINS_SIM_SIM_RESUME_H_
