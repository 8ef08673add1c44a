#include "daemon/core/planner.h"

#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vfiomig {
namespace {

using S = DeviceState;
using Path = std::vector<DeviceState>;

// Debian's abseil has its own string_view type, distinct from std's.
absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }

// Each side's phases are a contiguous run of the enum, in wave order, so a
// phase doubles as the index of its wave.
struct PhaseRange {
  WavePhase first;
  WavePhase last;
};
constexpr PhaseRange kSourcePhases = {WavePhase::kPreCopy,
                                      WavePhase::kStopAfterCopy};
constexpr PhaseRange kDestinationPhases = {WavePhase::kPrepareQuiesce,
                                           WavePhase::kRunning};
constexpr PhaseRange kRollbackPhases = {WavePhase::kRollbackStop,
                                        WavePhase::kRollbackRunning};

// Indexed by WavePhase; the names are part of the JSON API.
struct PhaseText {
  std::string_view name;
  std::string_view description;
};
constexpr PhaseText kPhaseText[] = {
    {"pre-copy",
     "Devices with PRE_COPY start saving their state while the VM keeps "
     "running."},
    {"p2p-quiesce",
     "Devices with P2P stop issuing DMA but still accept it, so no device "
     "stops while a peer may still write to it."},
    {"stop", "Quiesced devices, and devices without P2P, stop."},
    {"stop-copy", "Stopped devices hand over their final state."},
    {"stop-after-copy",
     "Devices whose state was read return to STOP until the migration commits "
     "or rolls back."},
    {"prepare-quiesce",
     "Destination devices with P2P leave RUNNING through RUNNING_P2P on their "
     "way to RESUMING."},
    {"prepare-stop",
     "Destination devices stop so they can take the incoming state."},
    {"resuming",
     "Destination devices enter RESUMING and load the migrated state."},
    {"resume-stop",
     "Destination devices leave RESUMING and stop with the loaded state."},
    {"p2p-restore",
     "Devices with P2P enter RUNNING_P2P, accepting DMA before any device "
     "starts issuing it."},
    {"running", "Devices run once every P2P device of the group accepts DMA."},
    {"rollback-stop",
     "Devices that were saving or loading state abandon it and stop."},
    {"rollback-p2p",
     "Devices with P2P return to RUNNING_P2P, so every peer accepts DMA "
     "before any device runs."},
    {"rollback-running", "Devices return to RUNNING."},
};
static_assert(std::size(kPhaseText) ==
              static_cast<size_t>(WavePhase::kRollbackRunning) + 1);

using Classifier = std::optional<WavePhase> (*)(S from, S to);

std::optional<WavePhase> SourcePhase(S from, S to) {
  if (from == S::RUNNING && to == S::PRE_COPY) return WavePhase::kPreCopy;
  if (to == S::RUNNING_P2P || to == S::PRE_COPY_P2P) {
    return WavePhase::kP2pQuiesce;
  }
  if (to == S::STOP) {
    return from == S::STOP_COPY ? WavePhase::kStopAfterCopy : WavePhase::kStop;
  }
  if (to == S::STOP_COPY) return WavePhase::kStopCopy;
  return std::nullopt;
}

std::optional<WavePhase> DestinationPhase(S from, S to) {
  if (from == S::RUNNING && to == S::RUNNING_P2P) {
    return WavePhase::kPrepareQuiesce;
  }
  if (to == S::STOP) {
    return from == S::RESUMING ? WavePhase::kResumeStop
                               : WavePhase::kPrepareStop;
  }
  if (from == S::STOP && to == S::RESUMING) return WavePhase::kResuming;
  if (from == S::STOP && to == S::RUNNING_P2P) return WavePhase::kP2pRestore;
  if (to == S::RUNNING) return WavePhase::kRunning;
  return std::nullopt;
}

std::optional<WavePhase> RollbackPhase(S from, S to) {
  if (to == S::STOP) return WavePhase::kRollbackStop;
  if (to == S::RUNNING_P2P) return WavePhase::kRollbackP2p;
  if (to == S::RUNNING) return WavePhase::kRollbackRunning;
  return std::nullopt;
}

// Extends `path` (non-empty) along the kernel's own path to `to`, one
// NextState at a time (StatePath would allocate a vector per leg).
absl::Status ExtendPath(MigrationFeatures features, S to, Path& path) {
  // Bounded like StatePath, so that a table error can never loop.
  for (int i = 0; i < kNumDeviceStates && path.back() != to; ++i) {
    absl::StatusOr<S> next = NextState(features, path.back(), to);
    if (!next.ok()) return next.status();
    path.push_back(*next);
  }
  if (path.back() != to) {
    return absl::InternalError("FSM path did not converge");
  }
  return absl::OkStatus();
}

// Follows the kernel's paths from `start` through each of `legs`.
absl::StatusOr<Path> KernelRoute(MigrationFeatures features, Path start,
                                 std::initializer_list<S> legs) {
  start.reserve(8);
  for (S leg : legs) {
    if (absl::Status s = ExtendPath(features, leg, start); !s.ok()) return s;
  }
  return start;
}

// The kernel would take RUNNING -> RUNNING_P2P -> STOP -> STOP_COPY even for
// a PRE_COPY device, so the pre-copy detour is asked for explicitly.
absl::StatusOr<Path> SourcePath(MigrationFeatures features) {
  Path start = {S::RUNNING};
  if (features.pre_copy()) start.push_back(S::PRE_COPY);
  return KernelRoute(features, std::move(start), {S::STOP_COPY, S::STOP});
}

absl::StatusOr<Path> DestinationPath(MigrationFeatures features) {
  return KernelRoute(features, {S::RUNNING}, {S::RESUMING, S::RUNNING});
}

// Buckets every arc into the wave of its phase. Along any kernel path the
// phases strictly increase, which is what keeps a device to one arc per wave
// and its arcs in order; a path breaking that would be a table error.
template <typename PathOf>
absl::StatusOr<std::vector<Wave>> Schedule(
    const std::vector<PlanDevice>& devices, PathOf path_of, PhaseRange range,
    Classifier classify) {
  const int first = static_cast<int>(range.first);
  const int count = static_cast<int>(range.last) - first + 1;
  std::vector<Wave> waves(count);
  for (int i = 0; i < count; ++i) {
    waves[i].phase = static_cast<WavePhase>(first + i);
  }
  for (size_t d = 0; d < devices.size(); ++d) {
    const Path& path = path_of(d);
    int last = -1;
    for (size_t k = 1; k < path.size(); ++k) {
      std::optional<WavePhase> phase = classify(path[k - 1], path[k]);
      int slot = phase.has_value() ? static_cast<int>(*phase) - first : -1;
      if (slot <= last || slot >= count) {
        return absl::InternalError(absl::StrCat(
            "planner: arc ", ArcName(path[k - 1], path[k]), " of device '",
            devices[d].id, "' does not fit the phase order"));
      }
      std::vector<PlannedArc>& arcs = waves[slot].arcs;
      if (arcs.empty()) arcs.reserve(devices.size() - d);
      arcs.push_back(PlannedArc{devices[d].id, path[k - 1], path[k]});
      last = slot;
    }
  }
  std::erase_if(waves, [](const Wave& w) { return w.arcs.empty(); });
  return waves;
}

std::string HasFeatures(MigrationFeatures features) {
  std::string names = features.ToString();
  return absl::StrCat("(has ", names.empty() ? "none" : names, ")");
}

// Blockers and warnings of a group. A device can only ever be named by one
// blocker: all its problems (and those of other entries sharing its id) are
// folded into the blocker of the id's first occurrence.
struct Analysis {
  std::vector<Blocker> blockers;
  std::vector<std::string> warnings;
  // Per input device: whether it could take a path on its own.
  std::vector<bool> routable;
  // Per input device: its own problems, for its route.
  std::vector<std::vector<std::string>> problems;
};

Analysis Analyze(const std::vector<PlanDevice>& devices,
                 const PlanOptions& options) {
  Analysis a;
  const size_t n = devices.size();
  a.routable.assign(n, false);
  a.problems.resize(n);
  std::unordered_map<std::string_view, size_t> first_of;
  std::vector<size_t> first(n);
  std::vector<int> occurrences(n, 0);
  first_of.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    first[i] = first_of.try_emplace(devices[i].id, i).first->second;
    ++occurrences[first[i]];
  }
  const bool p2p_needed = n >= 2;
  for (size_t i = 0; i < n; ++i) {
    const PlanDevice& d = devices[i];
    std::vector<std::string>& p = a.problems[i];
    if (first[i] == i && occurrences[i] > 1) {
      p.push_back(absl::StrCat(d.id, " appears ", occurrences[i],
                               " times in the group; device ids must be "
                               "unique"));
    }
    if (!d.migratable) {
      p.push_back(absl::StrCat(d.id, " cannot migrate: ",
                               d.not_migratable_reason.empty()
                                   ? "its backend reports it as not migratable"
                                   : d.not_migratable_reason));
    }
    if (!d.features.stop_copy()) {
      p.push_back(absl::StrCat(d.id,
                               " lacks the mandatory STOP_COPY migration "
                               "feature ",
                               HasFeatures(d.features),
                               ": the kernel cannot save or load its state"));
    }
    if (d.state != S::RUNNING) {
      p.push_back(absl::StrCat(d.id, " is in ",
                               AbslView(DeviceStateName(d.state)),
                               "; a migration starts from RUNNING"));
    }
    if (p2p_needed && !d.features.p2p()) {
      if (options.allow_no_p2p) {
        a.warnings.push_back(absl::StrCat(
            d.id, " lacks the P2P migration feature: in a group of ", n,
            " devices it stops while a peer may still DMA into its MMIO; "
            "accepted because allow_no_p2p is set"));
      } else {
        p.push_back(absl::StrCat(
            d.id, " lacks the P2P migration feature ", HasFeatures(d.features),
            ": in a group of ", n,
            " devices it could be stopped while a peer still DMAs into its "
            "MMIO; set allow_no_p2p only if P2P DMA is impossible for this "
            "VM"));
      }
    }
    a.routable[i] =
        d.migratable && d.features.stop_copy() && d.state == S::RUNNING;
  }
  // Entries sharing an id report under the first one, in input order.
  std::vector<std::vector<absl::string_view>> merged(n);
  for (size_t i = 0; i < n; ++i) {
    for (const std::string& p : a.problems[i]) merged[first[i]].push_back(p);
  }
  for (size_t i = 0; i < n; ++i) {
    if (merged[i].empty()) continue;
    a.blockers.push_back(
        Blocker{devices[i].id, absl::StrJoin(merged[i], ". ")});
  }
  return a;
}

void AddSourceReasons(const PlanDevice& d, size_t group, bool allow_no_p2p,
                      std::vector<std::string>& reasons) {
  const MigrationFeatures f = d.features;
  if (f.pre_copy()) {
    reasons.emplace_back(
        "pre-copies its state while it runs (RUNNING -> PRE_COPY) because it "
        "supports PRE_COPY, which shortens the downtime");
  }
  std::string_view quiesce = f.pre_copy() ? "PRE_COPY_P2P" : "RUNNING_P2P";
  if (f.p2p() && group >= 2) {
    reasons.push_back(absl::StrCat(
        "quiesces into ", AbslView(quiesce),
        " before any device of the group stops because it has P2P: it issues "
        "no more DMA but still accepts its peers' DMA"));
  } else if (f.p2p()) {
    reasons.push_back(absl::StrCat(
        "passes ", AbslView(quiesce),
        " because it has P2P and the kernel's path goes through it; as the "
        "only device it waits for no peer"));
  } else if (group < 2) {
    reasons.emplace_back(
        "stops without a P2P quiesce because it lacks P2P; a single device "
        "needs none");
  } else if (allow_no_p2p) {
    reasons.emplace_back(
        "stops without a P2P quiesce because it lacks P2P; the risk that a "
        "peer DMAs into it after it stops was accepted with allow_no_p2p");
  } else {
    reasons.emplace_back(
        "would stop without a P2P quiesce because it lacks P2P, which is what "
        "blocks the group");
  }
  reasons.emplace_back(
      "returns to STOP after STOP_COPY and waits there until the migration "
      "commits or rolls back");
}

void AddDestinationReasons(const PlanDevice& d,
                           std::vector<std::string>& reasons) {
  if (d.features.p2p()) {
    reasons.emplace_back(
        "on the destination, waits in RUNNING_P2P after its state is loaded "
        "until every P2P device of the group accepts DMA, then runs");
  } else {
    reasons.emplace_back(
        "on the destination, goes from STOP straight to RUNNING because it "
        "lacks P2P, once every P2P device is in RUNNING_P2P");
  }
}

GroupPlan Plan(const std::vector<PlanDevice>& devices,
               const PlanOptions& options, bool with_source) {
  GroupPlan plan;
  if (devices.empty()) {
    plan.blockers.push_back(
        Blocker{"", "the group has no devices; name at least one device"});
    return plan;
  }
  Analysis a = Analyze(devices, options);
  plan.blockers = std::move(a.blockers);
  plan.warnings = std::move(a.warnings);

  const size_t n = devices.size();
  plan.devices.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const PlanDevice& d = devices[i];
    DeviceRoute& route = plan.devices[i];
    route.device = d.id;
    route.reasons = std::move(a.problems[i]);
    if (!a.routable[i]) continue;
    route.reasons.reserve(route.reasons.size() + 4);
    absl::StatusOr<Path> src = with_source ? SourcePath(d.features) : Path();
    absl::StatusOr<Path> dst = DestinationPath(d.features);
    if (!src.ok() || !dst.ok()) {  // Not for a device that has STOP_COPY.
      const absl::Status& bad = src.ok() ? dst.status() : src.status();
      plan.blockers.push_back(Blocker{d.id, std::string(bad.message())});
      continue;
    }
    route.source_path = *std::move(src);
    route.destination_path = *std::move(dst);
    if (with_source) {
      AddSourceReasons(d, n, options.allow_no_p2p, route.reasons);
    }
    AddDestinationReasons(d, route.reasons);
  }
  if (!plan.blockers.empty()) return plan;

  absl::StatusOr<std::vector<Wave>> src = std::vector<Wave>();
  if (with_source) {
    src = Schedule(
        devices,
        [&](size_t i) -> const Path& { return plan.devices[i].source_path; },
        kSourcePhases, SourcePhase);
  }
  absl::StatusOr<std::vector<Wave>> dst = Schedule(
      devices,
      [&](size_t i) -> const Path& { return plan.devices[i].destination_path; },
      kDestinationPhases, DestinationPhase);
  for (const absl::StatusOr<std::vector<Wave>>* w : {&src, &dst}) {
    if (!w->ok()) {
      plan.blockers.push_back(Blocker{"", std::string(w->status().message())});
    }
  }
  if (!plan.blockers.empty()) return plan;
  plan.source = *std::move(src);
  plan.destination = *std::move(dst);
  plan.migratable = true;
  return plan;
}

// Index of each device id; duplicates make a plan or a check ambiguous.
absl::StatusOr<std::unordered_map<std::string_view, size_t>> IndexById(
    const std::vector<PlanDevice>& devices) {
  std::unordered_map<std::string_view, size_t> index;
  index.reserve(devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    if (!index.try_emplace(devices[i].id, i).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("device id '", devices[i].id, "' appears twice"));
    }
  }
  return index;
}

bool IsRunningState(S s) { return s == S::RUNNING || s == S::PRE_COPY; }

}  // namespace

std::string_view WavePhaseName(WavePhase phase) {
  const auto i = static_cast<size_t>(phase);
  return i < std::size(kPhaseText) ? kPhaseText[i].name : "unknown";
}

std::string_view WavePhaseDescription(WavePhase phase) {
  const auto i = static_cast<size_t>(phase);
  return i < std::size(kPhaseText) ? kPhaseText[i].description
                                   : "Unknown phase.";
}

GroupPlan PlanMigration(const std::vector<PlanDevice>& devices,
                        const PlanOptions& options) {
  return Plan(devices, options, /*with_source=*/true);
}

GroupPlan PlanDestination(const std::vector<PlanDevice>& devices,
                          const PlanOptions& options) {
  return Plan(devices, options, /*with_source=*/false);
}

absl::StatusOr<std::vector<Wave>> PlanRollback(
    const std::vector<PlanDevice>& devices) {
  if (absl::Status s = IndexById(devices).status(); !s.ok()) return s;
  std::vector<Path> paths(devices.size());
  for (size_t i = 0; i < devices.size(); ++i) {
    const PlanDevice& d = devices[i];
    if (d.state == S::RUNNING) continue;
    if (d.state == S::ERROR) {
      return absl::FailedPreconditionError(absl::StrCat(
          "device '", d.id,
          "' is in ERROR and needs VFIO_DEVICE_RESET before it can return "
          "to RUNNING"));
    }
    absl::StatusOr<Path> path =
        KernelRoute(d.features, {d.state}, {S::RUNNING});
    if (!path.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "device '", d.id, "' cannot return to RUNNING from ",
          AbslView(DeviceStateName(d.state)), ": ", path.status().message()));
    }
    paths[i] = *std::move(path);
  }
  return Schedule(
      devices, [&](size_t i) -> const Path& { return paths[i]; },
      kRollbackPhases, RollbackPhase);
}

absl::Status CheckWaves(const std::vector<PlanDevice>& devices,
                        const std::vector<Wave>& waves, PlanSide side) {
  absl::StatusOr<std::unordered_map<std::string_view, size_t>> index =
      IndexById(devices);
  if (!index.ok()) return index.status();
  const size_t n = devices.size();
  std::vector<S> state(n);
  for (size_t i = 0; i < n; ++i) state[i] = devices[i].state;

  auto where = [&](size_t w) {
    return absl::StrCat("wave ", w, " (",
                        AbslView(WavePhaseName(waves[w].phase)), ")");
  };
  // Resolve ids up front: the destination barrier needs to know which
  // devices still have data to load.
  std::vector<std::vector<size_t>> who(waves.size());
  std::vector<bool> will_resume(n, false), resumed(n, false);
  for (size_t w = 0; w < waves.size(); ++w) {
    for (const PlannedArc& arc : waves[w].arcs) {
      auto it = index->find(arc.device);
      if (it == index->end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where(w), ": unknown device '", arc.device, "'"));
      }
      who[w].push_back(it->second);
      if (arc.to == S::RESUMING) will_resume[it->second] = true;
    }
  }

  std::vector<size_t> last_wave(n, waves.size());
  for (size_t w = 0; w < waves.size(); ++w) {
    // The P2P device, if any, that keeps this wave's barrier closed, judged
    // on the states reached at the end of the previous waves.
    std::optional<size_t> holdout;
    for (size_t i = 0; i < n && !holdout; ++i) {
      if (!devices[i].features.p2p()) continue;
      bool ready =
          side == PlanSide::kSource
              ? !IsRunningState(state[i])
              : (state[i] == S::RUNNING_P2P || state[i] == S::RUNNING) &&
                    (resumed[i] || !will_resume[i]);
      if (!ready) holdout = i;
    }
    const Wave& wave = waves[w];
    for (size_t k = 0; k < wave.arcs.size(); ++k) {
      const PlannedArc& arc = wave.arcs[k];
      const size_t i = who[w][k];
      if (last_wave[i] == w) {
        return absl::InvalidArgumentError(
            absl::StrCat(where(w), ": device '", arc.device,
                         "' has more than one arc in the wave"));
      }
      last_wave[i] = w;
      if (arc.from != state[i]) {
        return absl::InvalidArgumentError(absl::StrCat(
            where(w), ": arc ", ArcName(arc.from, arc.to), " of device '",
            arc.device, "' does not chain: the device is in ",
            AbslView(DeviceStateName(state[i]))));
      }
      if (!IsSingleArc(devices[i].features, arc.from, arc.to)) {
        return absl::InvalidArgumentError(
            absl::StrCat(where(w), ": ", ArcName(arc.from, arc.to),
                         " is not a single kernel arc for device '", arc.device,
                         "' ", HasFeatures(devices[i].features)));
      }
      const bool gated = side == PlanSide::kSource
                             ? arc.to == S::STOP || arc.to == S::STOP_COPY
                             : arc.to == S::RUNNING;
      if (gated && holdout) {
        const size_t h = *holdout;
        return absl::FailedPreconditionError(absl::StrCat(
            where(w), ": device '", arc.device, "' enters ",
            AbslView(DeviceStateName(arc.to)), " while P2P device '",
            devices[h].id, "' is in ", AbslView(DeviceStateName(state[h])),
            side == PlanSide::kSource
                ? "; every P2P device must reach RUNNING_P2P or PRE_COPY_P2P "
                  "before any device stops"
                : "; every P2P device must load its state and reach "
                  "RUNNING_P2P before any device runs"));
      }
    }
    for (size_t k = 0; k < wave.arcs.size(); ++k) {
      const size_t i = who[w][k];
      state[i] = wave.arcs[k].to;
      if (state[i] == S::RESUMING) resumed[i] = true;
    }
  }
  return absl::OkStatus();
}

}  // namespace vfiomig
