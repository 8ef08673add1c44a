#include "plugins/sim/sim_save_queue.h"

#include <algorithm>

#include "plugins/sim/sim_generator.h"
#include "plugins/sim/sim_stream_format.h"

namespace vfiomig::sim {

SaveQueue::SaveQueue(uint64_t size, uint64_t initial_blocks)
    : size_(size),
      initial_blocks_(std::min(initial_blocks, BlockCount(size))),
      blocks_(BlockCount(size), Block::kUnsent) {}

std::optional<uint64_t> SaveQueue::TakePrecopy() {
  if (next_unsent_ < initial_blocks_) return TakeUnsent();
  if (!dirty_.empty()) return TakeDirty();
  return std::nullopt;
}

std::optional<uint64_t> SaveQueue::TakeStopCopy() {
  if (!dirty_.empty()) return TakeDirty();
  if (next_unsent_ < blocks_.size()) return TakeUnsent();
  return std::nullopt;
}

uint64_t SaveQueue::TakeDirty() {
  uint64_t index = dirty_.front();
  dirty_.pop_front();
  dirty_bytes_ -= BlockRecordSize(BlockLength(size_, index));
  blocks_[index] = Block::kInFlight;
  return index;
}

uint64_t SaveQueue::TakeUnsent() {
  uint64_t index = next_unsent_++;
  blocks_[index] = Block::kInFlight;
  return index;
}

void SaveQueue::Queue(uint64_t index) {
  blocks_[index] = Block::kQueued;
  dirty_.push_back(index);
  dirty_bytes_ += BlockRecordSize(BlockLength(size_, index));
}

void SaveQueue::Sent(uint64_t index) {
  if (blocks_[index] == Block::kInFlightDirty) {
    Queue(index);
  } else {
    blocks_[index] = Block::kClean;
  }
}

void SaveQueue::Dirtied(uint64_t index) {
  switch (blocks_[index]) {
    case Block::kClean:
      Queue(index);
      break;
    case Block::kInFlight:
      blocks_[index] = Block::kInFlightDirty;
      break;
    case Block::kUnsent:  // will go out at whatever version it has then
    case Block::kInFlightDirty:
    case Block::kQueued:
      break;
  }
}

uint64_t SaveQueue::initial_bytes() const {
  return BlockRecordsSize(size_, next_unsent_, initial_blocks_);
}

uint64_t SaveQueue::pending_bytes() const {
  return dirty_bytes_ + BlockRecordsSize(size_, next_unsent_, blocks_.size());
}

}  // namespace vfiomig::sim
