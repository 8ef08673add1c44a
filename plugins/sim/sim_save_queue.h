// SaveQueue: the order in which a save session sends blocks, and how many
// stream bytes are still due.
//
// Pre-copy first offers the initial blocks [0, initial_blocks) in order,
// then blocks the running device dirtied after they were sent. Stop-copy
// sends every block whose current version has not been sent. A block is in
// flight while its record is being emitted; a dirty during the flight queues
// it again once the record ends, because the version on the wire is already
// stale.
//
// Cost is O(1) per operation, so a session over a million blocks never
// scans them: blocks at or past the cursor are exactly the never-sent ones.
// Not thread-safe: owned by one save session under its device's lock.
#ifndef VFIOMIG_PLUGINS_SIM_SIM_SAVE_QUEUE_H_
#define VFIOMIG_PLUGINS_SIM_SIM_SAVE_QUEUE_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace vfiomig::sim {

class SaveQueue {
 public:
  // `size` is the device state size; `initial_blocks` is clamped to the
  // block count.
  SaveQueue(uint64_t size, uint64_t initial_blocks);

  // The next block to send in pre-copy (an initial block, else a dirty
  // one), now in flight; nullopt when nothing is due right now.
  std::optional<uint64_t> TakePrecopy();
  // The next block to send in stop-copy (dirty or never sent), now in
  // flight; nullopt when every block went out at its current version.
  std::optional<uint64_t> TakeStopCopy();

  // The record of `index` (in flight) has been emitted completely.
  void Sent(uint64_t index);
  // The device wrote to `index`.
  void Dirtied(uint64_t index);

  // Stream bytes (record headers included) of initial blocks not yet taken.
  uint64_t initial_bytes() const;
  // Stream bytes of dirty blocks waiting to be sent again.
  uint64_t dirty_bytes() const { return dirty_bytes_; }
  // Stream bytes of every block not yet taken: what stop-copy still owes.
  uint64_t pending_bytes() const;

 private:
  enum class Block : uint8_t {
    kUnsent,         // never sent; only at or past next_unsent_
    kInFlight,       // its record is being emitted
    kInFlightDirty,  // ... and the device wrote to it meanwhile
    kClean,          // sent at its current version
    kQueued,         // sent, then dirtied: waiting in dirty_
  };

  uint64_t TakeDirty();
  uint64_t TakeUnsent();
  void Queue(uint64_t index);

  uint64_t size_;
  uint64_t initial_blocks_;
  uint64_t next_unsent_ = 0;
  std::vector<Block> blocks_;
  std::deque<uint64_t> dirty_;
  uint64_t dirty_bytes_ = 0;
};

}  // namespace vfiomig::sim

#endif  // VFIOMIG_PLUGINS_SIM_SIM_SAVE_QUEUE_H_
