// Rendering helpers shared by the commands: aligned text tables, byte sizes,
// and the mapping from wire enums to the kernel's names.
#ifndef VFIOMIG_CLIENT_OUTPUT_H_
#define VFIOMIG_CLIENT_OUTPUT_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "vfiomig/v1/control.pb.h"

namespace vfiomig::cli {

// Keys keep insertion order so JSON reads in the order we document.
using Json = nlohmann::ordered_json;

// A left-aligned text table. Columns are separated by two spaces and lines
// carry no trailing blanks, so output diffs and greps cleanly.
class Table {
 public:
  explicit Table(std::vector<std::string> headers);
  // Rows shorter than the header are padded with empty cells.
  void AddRow(std::vector<std::string> cells);
  void Render(std::ostream& out) const;

 private:
  std::vector<std::vector<std::string>> rows_;  // rows_[0] is the header
};

// 1048576 -> "1.0 MiB"; below 1 KiB, "512 B".
std::string HumanBytes(uint64_t bytes);

// Kernel name of a wire state: DEVICE_STATE_RUNNING_P2P -> "RUNNING_P2P",
// DEVICE_STATE_ERROR (8) -> "ERROR". Values this build does not know become
// "UNKNOWN(<n>)" rather than being dropped.
std::string StateName(v1::DeviceState state);

// Prefers the typed enum; falls back to the daemon's `state_name` only when
// the enum is unset.
std::string DeviceStateLabel(const v1::Device& device);

// Lower-case feature names ("stop_copy", "p2p", "pre_copy") from the
// `features` list and the raw `migration_flags`, in kernel bit order.
std::vector<std::string> FeatureNames(const v1::Device& device);

// Pretty-prints with two-space indentation and a trailing newline. Invalid
// UTF-8 is replaced instead of throwing.
void PrintJson(std::ostream& out, const Json& json);

}  // namespace vfiomig::cli

#endif  // VFIOMIG_CLIENT_OUTPUT_H_
