#include "daemon/core/fsm.h"

#include <cctype>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace vfiomig {
namespace {

using S = DeviceState;

constexpr int Idx(S s) { return static_cast<int>(s); }

// vfio_from_fsm_table: row = current state, column = target, cell = the next
// state on the way. Transcribed from drivers/vfio/vfio_main.c.
constexpr S kFromFsmTable[kNumDeviceStates][kNumDeviceStates] = {
    // [ERROR]: no path anywhere.
    {S::ERROR, S::ERROR, S::ERROR, S::ERROR, S::ERROR, S::ERROR, S::ERROR,
     S::ERROR},
    // [STOP] -> ERROR, STOP, RUNNING, STOP_COPY, RESUMING, RUNNING_P2P,
    //           PRE_COPY, PRE_COPY_P2P
    {S::ERROR, S::STOP, S::RUNNING_P2P, S::STOP_COPY, S::RESUMING,
     S::RUNNING_P2P, S::RUNNING_P2P, S::RUNNING_P2P},
    // [RUNNING]
    {S::ERROR, S::RUNNING_P2P, S::RUNNING, S::RUNNING_P2P, S::RUNNING_P2P,
     S::RUNNING_P2P, S::PRE_COPY, S::RUNNING_P2P},
    // [STOP_COPY]: the saving session cannot restart, so PRE_COPY[_P2P] is
    // ERROR (refused).
    {S::ERROR, S::STOP, S::STOP, S::STOP_COPY, S::STOP, S::STOP, S::ERROR,
     S::ERROR},
    // [RESUMING]
    {S::ERROR, S::STOP, S::STOP, S::STOP, S::RESUMING, S::STOP, S::STOP,
     S::STOP},
    // [RUNNING_P2P]
    {S::ERROR, S::STOP, S::RUNNING, S::STOP, S::STOP, S::RUNNING_P2P,
     S::RUNNING, S::PRE_COPY_P2P},
    // [PRE_COPY]
    {S::ERROR, S::RUNNING, S::RUNNING, S::PRE_COPY_P2P, S::RUNNING, S::RUNNING,
     S::PRE_COPY, S::PRE_COPY_P2P},
    // [PRE_COPY_P2P]
    {S::ERROR, S::RUNNING_P2P, S::RUNNING_P2P, S::STOP_COPY, S::RUNNING_P2P,
     S::RUNNING_P2P, S::PRE_COPY, S::PRE_COPY_P2P},
};

// state_flags_table: the flags a device needs to be in each state. ERROR
// needs every bit, so no device "supports" it as a destination.
constexpr uint32_t kStateFlags[kNumDeviceStates] = {
    /*ERROR=*/~0u,
    /*STOP=*/VFIO_MIGRATION_STOP_COPY,
    /*RUNNING=*/VFIO_MIGRATION_STOP_COPY,
    /*STOP_COPY=*/VFIO_MIGRATION_STOP_COPY,
    /*RESUMING=*/VFIO_MIGRATION_STOP_COPY,
    /*RUNNING_P2P=*/VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P,
    /*PRE_COPY=*/VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_PRE_COPY,
    /*PRE_COPY_P2P=*/VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P |
        VFIO_MIGRATION_PRE_COPY,
};

constexpr std::string_view kStateNames[kNumDeviceStates] = {
    "ERROR",    "STOP",        "RUNNING",  "STOP_COPY",
    "RESUMING", "RUNNING_P2P", "PRE_COPY", "PRE_COPY_P2P"};

// Debian's abseil is built with its own string_view type (not
// std::string_view), so views cross into absl through this.
absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }

bool InRange(S s) { return Idx(s) >= 0 && Idx(s) < kNumDeviceStates; }

struct FlagName {
  uint32_t flag;
  std::string_view name;
};
constexpr FlagName kFlagNames[] = {{VFIO_MIGRATION_STOP_COPY, "stop_copy"},
                                   {VFIO_MIGRATION_P2P, "p2p"},
                                   {VFIO_MIGRATION_PRE_COPY, "pre_copy"}};

}  // namespace

std::string_view DeviceStateName(DeviceState state) {
  return InRange(state) ? kStateNames[Idx(state)] : "INVALID";
}

std::optional<DeviceState> ParseDeviceState(std::string_view name) {
  std::string upper = absl::AsciiStrToUpper(AbslView(name));
  absl::string_view bare = upper;
  absl::ConsumePrefix(&bare, "VFIO_DEVICE_STATE_");
  for (DeviceState s : kAllDeviceStates) {
    if (bare == AbslView(DeviceStateName(s))) return s;
  }
  return std::nullopt;
}

std::optional<DeviceState> DeviceStateFromKernel(uint32_t value) {
  if (value >= kNumDeviceStates) return std::nullopt;
  return static_cast<DeviceState>(value);
}

std::vector<std::string> MigrationFeatures::Names() const {
  std::vector<std::string> names;
  for (const FlagName& f : kFlagNames) {
    if (flags_ & f.flag) names.emplace_back(f.name);
  }
  return names;
}

std::string MigrationFeatures::ToString() const {
  std::vector<std::string> names = Names();
  if (uint32_t unknown = flags_ & ~kKnownMigrationFlags) {
    names.push_back(absl::StrCat("0x", absl::Hex(unknown)));
  }
  return absl::StrJoin(names, ",");
}

absl::StatusOr<MigrationFeatures> MigrationFeatures::Parse(
    std::string_view text) {
  uint32_t flags = 0;
  for (absl::string_view part :
       absl::StrSplit(AbslView(text), ',', absl::SkipWhitespace())) {
    std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(part));
    absl::string_view bare = name;
    absl::ConsumePrefix(&bare, "vfio_migration_");
    bool found = false;
    for (const FlagName& f : kFlagNames) {
      if (bare == AbslView(f.name)) {
        flags |= f.flag;
        found = true;
      }
    }
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown migration feature '", part,
                       "' (expected stop_copy, p2p or pre_copy)"));
    }
  }
  return MigrationFeatures(flags);
}

bool StateSupported(MigrationFeatures features, DeviceState state) {
  if (!InRange(state)) return false;
  uint32_t need = kStateFlags[Idx(state)];
  return (features.flags() & need) == need;
}

absl::StatusOr<DeviceState> NextState(MigrationFeatures features,
                                      DeviceState cur, DeviceState target) {
  if (!InRange(cur) || !InRange(target)) {
    return absl::InvalidArgumentError("device state out of range");
  }
  if (cur == DeviceState::ERROR) {
    return absl::FailedPreconditionError(
        "device is in ERROR; only VFIO_DEVICE_RESET leaves it");
  }
  if (!StateSupported(features, cur)) {
    return absl::InvalidArgumentError(
        absl::StrCat("current state ", AbslView(DeviceStateName(cur)),
                     " needs migration features the device lacks (has '",
                     features.ToString(), "')"));
  }
  if (target == DeviceState::ERROR) {
    return absl::InvalidArgumentError("ERROR is never a valid target state");
  }
  if (!StateSupported(features, target)) {
    return absl::InvalidArgumentError(
        absl::StrCat("target state ", AbslView(DeviceStateName(target)),
                     " needs migration features the device lacks (has '",
                     features.ToString(), "')"));
  }
  DeviceState next = kFromFsmTable[Idx(cur)][Idx(target)];
  // Skip over states the device lacks. The kernel loops on the same table;
  // a blocked arc yields ERROR, which we refuse at once (older kernels spin
  // forever here, which is why STOP_COPY -> PRE_COPY must never be sent).
  while (next != DeviceState::ERROR && !StateSupported(features, next)) {
    next = kFromFsmTable[Idx(next)][Idx(target)];
  }
  if (next == DeviceState::ERROR) {
    return absl::InvalidArgumentError(
        absl::StrCat("the kernel blocks ", AbslView(DeviceStateName(cur)),
                     " -> ", AbslView(DeviceStateName(target)),
                     ": a saving session cannot restart pre-copy"));
  }
  return next;
}

absl::StatusOr<std::vector<DeviceState>> StatePath(MigrationFeatures features,
                                                   DeviceState from,
                                                   DeviceState to) {
  std::vector<DeviceState> path = {from};
  DeviceState cur = from;
  // The kernel's longest combination has five states; a bound keeps a table
  // error from ever looping.
  for (int i = 0; i < kNumDeviceStates && cur != to; ++i) {
    absl::StatusOr<DeviceState> next = NextState(features, cur, to);
    if (!next.ok()) return next.status();
    cur = *next;
    path.push_back(cur);
  }
  if (cur != to) {
    return absl::InternalError("FSM path did not converge");
  }
  if (path.size() == 1) {
    // Equal states still need a valid state for the features.
    absl::StatusOr<DeviceState> same = NextState(features, from, to);
    if (!same.ok()) return same.status();
  }
  return path;
}

bool IsSingleArc(MigrationFeatures features, DeviceState from, DeviceState to) {
  if (from == to) return false;
  absl::StatusOr<DeviceState> next = NextState(features, from, to);
  return next.ok() && *next == to;
}

bool IsDrainArc(DeviceState from, DeviceState to) {
  return from != to &&
         (to == DeviceState::RUNNING_P2P || to == DeviceState::PRE_COPY_P2P ||
          to == DeviceState::STOP);
}

DataSessionKind ArcOpensDataSession(DeviceState from, DeviceState to) {
  if ((from == S::RUNNING && to == S::PRE_COPY) ||
      (from == S::RUNNING_P2P && to == S::PRE_COPY_P2P) ||
      (from == S::STOP && to == S::STOP_COPY)) {
    return DataSessionKind::kSave;
  }
  if (from == S::STOP && to == S::RESUMING) return DataSessionKind::kResume;
  return DataSessionKind::kNone;
}

std::string ArcName(DeviceState from, DeviceState to) {
  return absl::StrCat(AbslView(DeviceStateName(from)), ">",
                      AbslView(DeviceStateName(to)));
}

std::string PathToString(const std::vector<DeviceState>& path) {
  return absl::StrJoin(path, " ", [](std::string* out, DeviceState s) {
    absl::StrAppend(out, AbslView(DeviceStateName(s)));
  });
}

}  // namespace vfiomig
