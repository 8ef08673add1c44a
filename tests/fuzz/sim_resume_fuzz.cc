// libFuzzer target: device data from the peer into a sim device's resume
// session (plugins/sim/sim_resume.h), the parser behind every sim
// destination's data_fd writes.
//
// The input drives a structure-aware attack on a genuine stream: its first
// bytes pick the state size (1 B .. 2.5 blocks), the origin seed, block
// versions and how the stream is cut into writes; the rest is an edit
// script (flip a byte, cut the stream, repeat or drop a range, insert
// bytes) applied to the genuine stream that the real StreamWriter renders
// (in at most about 4096 writes).
// Random bytes would rarely get past the magic; edits of a real stream
// reach the record, version and digest checks behind it.
//
// Traps when an invariant breaks:
//   - the unedited stream is accepted, whatever the write sizes, and the
//     content it yields has the source's digest;
//   - a failure is final: later writes and Complete() keep reporting it;
//   - Complete() is OK only for a stream whose digest matches its end.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "plugins/sim/sim_content.h"
#include "plugins/sim/sim_generator.h"
#include "plugins/sim/sim_resume.h"
#include "plugins/sim/sim_stream_format.h"
#include "plugins/sim/sim_stream_writer.h"

namespace {

namespace sim = vfiomig::sim;

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

// Reads the input front to back; zeros once it runs out.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint32_t U32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t{Byte()} << (8 * i);
    return v;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Renders the whole genuine stream of `content`, every block once.
std::string Render(sim::SimContent& content, uint64_t* digest) {
  sim::StreamWriter writer;
  std::string out;
  auto drain = [&] {
    uint8_t buffer[4096];
    while (!writer.idle()) {
      const size_t n = writer.Emit(absl::MakeSpan(buffer));
      out.append(reinterpret_cast<const char*>(buffer), n);
    }
  };
  sim::StreamHeader header;
  header.total_size = content.size();
  header.origin_seed = content.origin_seed();
  writer.StartHeader(header);
  drain();
  std::vector<uint64_t> hashes;
  for (uint64_t i = 0; i < content.block_count(); ++i) {
    writer.StartBlock(i, content.version(i), content.key(i),
                      static_cast<uint32_t>(content.block_length(i)));
    drain();
    hashes.push_back(writer.payload_hash());
  }
  *digest = sim::ContentDigest64(content.size(), hashes);
  writer.StartEnd(
      {.block_records = content.block_count(), .content_digest = *digest});
  drain();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  const uint64_t state_bytes = 1 + in.U32() % (sim::kBlockSize * 5 / 2);
  sim::SimContent content(in.Byte(), state_bytes);
  for (uint64_t i = 0; i < content.block_count(); ++i) {
    for (uint8_t b = in.Byte() % 3; b > 0; --b) content.Bump(i);
  }
  uint64_t digest = 0;
  std::string stream = Render(content, &digest);
  // At most about 4096 writes: 1-byte writes of a 2.5 MiB stream took
  // seconds per input (a libFuzzer timeout, regressions/sim_resume/);
  // small streams still get cut into single bytes.
  const size_t chunk =
      std::max(stream.size() / 4096 + 1, 1 + in.U32() % (stream.size() + 1));

  bool edited = false;
  for (int ops = 0; !in.empty() && ops < 8; ++ops) {
    const uint8_t op = in.Byte() % 5;
    const size_t at = in.U32() % (stream.size() + 1);
    const size_t len = 1 + in.Byte();
    switch (op) {
      case 0:  // flip a byte
        if (at < stream.size()) {
          const uint8_t x = in.Byte() | 1;
          stream[at] = static_cast<char>(stream[at] ^ x);
          edited = true;
        }
        break;
      case 1:  // cut the stream
        if (at < stream.size()) {
          stream.resize(at);
          edited = true;
        }
        break;
      case 2:  // repeat a range (a replayed record)
        if (at < stream.size()) {
          const std::string range = stream.substr(at, len * 97);
          stream.insert(at, range);
          edited = true;
        }
        break;
      case 3:  // drop a range
        if (at < stream.size()) {
          stream.erase(at, len * 97);
          edited = true;
        }
        break;
      case 4:  // insert bytes
        for (size_t i = 0; i < len % 16 + 1; ++i) {
          stream.insert(stream.begin() + static_cast<ptrdiff_t>(at),
                        static_cast<char>(in.Byte()));
        }
        edited = true;
        break;
    }
  }

  sim::ResumeStaging staging(content.size() + (uint64_t{64} << 10));
  absl::Status first_failure;
  for (size_t pos = 0; pos < stream.size(); pos += chunk) {
    const size_t n = std::min(chunk, stream.size() - pos);
    absl::Status s = staging.Write(absl::MakeConstSpan(
        reinterpret_cast<const uint8_t*>(stream.data()) + pos, n));
    if (!first_failure.ok()) {
      Check(!s.ok() && s == first_failure);
    } else if (!s.ok()) {
      first_failure = s;
    }
  }
  const absl::Status complete = staging.Complete();
  if (!first_failure.ok()) {
    Check(complete.code() == first_failure.code());
    Check(staging.status() == first_failure);
  }
  if (!edited) {
    Check(complete.ok());
    sim::SimContent received = staging.TakeContent();
    Check(sim::ComputeDigest64(received) == digest);
  }
  return 0;
}
