// Exhaustive tests of the kernel FSM: every (from, to, features) triple.
//
// The expectations come from the kernel's own documentation of
// vfio_mig_get_next_state() (the comment above vfio_from_fsm_table), not from
// the table the implementation uses: the arcs each feature set obliges a
// driver to implement, and the combination paths the kernel lists. A
// transcription error in fsm.cc shows up as a path that uses an arc the
// kernel never asks a driver for, or as a combination path that differs.
#include "daemon/core/fsm.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace vfiomig {
namespace {

using S = DeviceState;
using ArcSet = std::set<std::pair<S, S>>;

constexpr uint32_t kSC = VFIO_MIGRATION_STOP_COPY;
constexpr uint32_t kP2P = VFIO_MIGRATION_P2P;
constexpr uint32_t kPRE = VFIO_MIGRATION_PRE_COPY;

// "The coding in this table requires the driver to implement the following
// FSM arcs" (and the P2P / precopy / neither additions), per feature set.
ArcSet DriverArcs(uint32_t flags) {
  ArcSet arcs = {{S::RESUMING, S::STOP},
                 {S::STOP, S::RESUMING},
                 {S::STOP, S::STOP_COPY},
                 {S::STOP_COPY, S::STOP}};
  bool p2p = flags & kP2P;
  bool pre = flags & kPRE;
  if (p2p) {
    arcs.insert({{S::RUNNING, S::RUNNING_P2P},
                 {S::RUNNING_P2P, S::RUNNING},
                 {S::RUNNING_P2P, S::STOP},
                 {S::STOP, S::RUNNING_P2P}});
  }
  if (pre) {
    arcs.insert({{S::RUNNING, S::PRE_COPY},
                 {S::PRE_COPY, S::RUNNING},
                 {S::PRE_COPY, S::STOP_COPY}});
  }
  if (pre && p2p) {
    // With both, PRE_COPY -> STOP_COPY goes through PRE_COPY_P2P.
    arcs.erase({S::PRE_COPY, S::STOP_COPY});
    arcs.insert({{S::PRE_COPY, S::PRE_COPY_P2P},
                 {S::PRE_COPY_P2P, S::PRE_COPY},
                 {S::PRE_COPY_P2P, S::RUNNING_P2P},
                 {S::PRE_COPY_P2P, S::STOP_COPY},
                 {S::RUNNING_P2P, S::PRE_COPY_P2P}});
  }
  if (!p2p) {
    // "Without P2P and precopy the driver must implement RUNNING <-> STOP";
    // a PRE_COPY-only driver reaches STOP through RUNNING, so it needs them
    // as well.
    arcs.insert({{S::RUNNING, S::STOP}, {S::STOP, S::RUNNING}});
  }
  return arcs;
}

bool Needs(S s, uint32_t flags) {
  switch (s) {
    case S::ERROR:
      return false;
    case S::RUNNING_P2P:
      return (flags & kSC) && (flags & kP2P);
    case S::PRE_COPY:
      return (flags & kSC) && (flags & kPRE);
    case S::PRE_COPY_P2P:
      return (flags & kSC) && (flags & kP2P) && (flags & kPRE);
    default:
      return flags & kSC;
  }
}

// The kernel refuses exactly these requests.
bool KernelRefuses(uint32_t flags, S from, S to) {
  if (!Needs(from, flags) || !Needs(to, flags)) return true;
  return from == S::STOP_COPY && (to == S::PRE_COPY || to == S::PRE_COPY_P2P);
}

std::string Describe(uint32_t flags, S from, S to) {
  return MigrationFeatures(flags).ToString() + ": " +
         std::string(DeviceStateName(from)) + " -> " +
         std::string(DeviceStateName(to));
}

TEST(FsmTest, EveryTripleIsRefusedExactlyWhenTheKernelRefuses) {
  int checked = 0;
  for (uint32_t flags = 0; flags <= kKnownMigrationFlags; ++flags) {
    for (S from : kAllDeviceStates) {
      for (S to : kAllDeviceStates) {
        absl::StatusOr<std::vector<S>> path =
            StatePath(MigrationFeatures(flags), from, to);
        EXPECT_EQ(path.ok(), !KernelRefuses(flags, from, to))
            << Describe(flags, from, to) << " "
            << (path.ok() ? PathToString(*path) : path.status().ToString());
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 8 * 8 * 8);
}

TEST(FsmTest, EveryStepIsAnArcTheKernelAsksTheDriverFor) {
  for (uint32_t flags : {kSC, kSC | kP2P, kSC | kPRE, kSC | kP2P | kPRE}) {
    ArcSet allowed = DriverArcs(flags);
    for (S from : kAllDeviceStates) {
      for (S to : kAllDeviceStates) {
        absl::StatusOr<std::vector<S>> path =
            StatePath(MigrationFeatures(flags), from, to);
        if (!path.ok()) continue;
        ASSERT_FALSE(path->empty());
        EXPECT_EQ(path->front(), from);
        EXPECT_EQ(path->back(), to);
        std::set<S> seen;
        for (size_t i = 0; i < path->size(); ++i) {
          EXPECT_TRUE(seen.insert((*path)[i]).second)
              << "state repeats in " << Describe(flags, from, to);
          EXPECT_TRUE(StateSupported(MigrationFeatures(flags), (*path)[i]));
          if (i == 0) continue;
          std::pair<S, S> arc = {(*path)[i - 1], (*path)[i]};
          EXPECT_TRUE(allowed.count(arc))
              << Describe(flags, from, to) << " uses arc "
              << ArcName(arc.first, arc.second) << " in "
              << PathToString(*path);
          EXPECT_TRUE(
              IsSingleArc(MigrationFeatures(flags), arc.first, arc.second));
        }
      }
    }
  }
}

// Every driver arc is reachable as a one-step path: the FSM never detours
// around an arc the driver implements.
TEST(FsmTest, DriverArcsAreSingleSteps) {
  for (uint32_t flags : {kSC, kSC | kP2P, kSC | kPRE, kSC | kP2P | kPRE}) {
    for (const auto& [from, to] : DriverArcs(flags)) {
      EXPECT_TRUE(IsSingleArc(MigrationFeatures(flags), from, to))
          << Describe(flags, from, to);
    }
  }
}

// The combination transitions the kernel comment lists for a device with
// every optional feature.
TEST(FsmTest, FullFeatureCombinationsMatchTheKernelComment) {
  const std::vector<std::vector<S>> kCombinations = {
      {S::PRE_COPY, S::PRE_COPY_P2P, S::STOP_COPY},
      {S::PRE_COPY, S::RUNNING, S::RUNNING_P2P},
      {S::PRE_COPY, S::RUNNING, S::RUNNING_P2P, S::STOP},
      {S::PRE_COPY, S::RUNNING, S::RUNNING_P2P, S::STOP, S::RESUMING},
      {S::PRE_COPY_P2P, S::RUNNING_P2P, S::RUNNING},
      {S::PRE_COPY_P2P, S::RUNNING_P2P, S::STOP},
      {S::PRE_COPY_P2P, S::RUNNING_P2P, S::STOP, S::RESUMING},
      {S::RESUMING, S::STOP, S::RUNNING_P2P},
      {S::RESUMING, S::STOP, S::RUNNING_P2P, S::PRE_COPY_P2P},
      {S::RESUMING, S::STOP, S::RUNNING_P2P, S::RUNNING},
      {S::RESUMING, S::STOP, S::RUNNING_P2P, S::RUNNING, S::PRE_COPY},
      {S::RESUMING, S::STOP, S::STOP_COPY},
      {S::RUNNING, S::RUNNING_P2P, S::PRE_COPY_P2P},
      {S::RUNNING, S::RUNNING_P2P, S::STOP},
      {S::RUNNING, S::RUNNING_P2P, S::STOP, S::RESUMING},
      {S::RUNNING, S::RUNNING_P2P, S::STOP, S::STOP_COPY},
      {S::RUNNING_P2P, S::RUNNING, S::PRE_COPY},
      {S::RUNNING_P2P, S::STOP, S::RESUMING},
      {S::RUNNING_P2P, S::STOP, S::STOP_COPY},
      {S::STOP, S::RUNNING_P2P, S::PRE_COPY_P2P},
      {S::STOP, S::RUNNING_P2P, S::RUNNING},
      {S::STOP, S::RUNNING_P2P, S::RUNNING, S::PRE_COPY},
      {S::STOP_COPY, S::STOP, S::RESUMING},
      {S::STOP_COPY, S::STOP, S::RUNNING_P2P},
      {S::STOP_COPY, S::STOP, S::RUNNING_P2P, S::RUNNING},
  };
  const MigrationFeatures all(kSC | kP2P | kPRE);
  for (const std::vector<S>& want : kCombinations) {
    absl::StatusOr<std::vector<S>> got =
        StatePath(all, want.front(), want.back());
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(PathToString(*got), PathToString(want));
  }
}

// The save and resume paths the design brief names, for each feature set.
TEST(FsmTest, SaveAndResumePathsPerFeatureSet) {
  struct Case {
    uint32_t flags;
    S from, to;
    const char* want;
  };
  const Case kCases[] = {
      {kSC, S::RUNNING, S::STOP_COPY, "RUNNING STOP STOP_COPY"},
      {kSC | kP2P, S::RUNNING, S::STOP_COPY,
       "RUNNING RUNNING_P2P STOP STOP_COPY"},
      {kSC | kPRE, S::PRE_COPY, S::STOP_COPY, "PRE_COPY STOP_COPY"},
      {kSC | kPRE, S::PRE_COPY, S::STOP, "PRE_COPY RUNNING STOP"},
      {kSC | kPRE, S::RUNNING, S::STOP_COPY, "RUNNING STOP STOP_COPY"},
      {kSC | kP2P | kPRE, S::PRE_COPY, S::STOP_COPY,
       "PRE_COPY PRE_COPY_P2P STOP_COPY"},
      {kSC, S::STOP, S::RUNNING, "STOP RUNNING"},
      {kSC | kP2P, S::RESUMING, S::RUNNING,
       "RESUMING STOP RUNNING_P2P RUNNING"},
      {kSC, S::RESUMING, S::RUNNING, "RESUMING STOP RUNNING"},
      {kSC | kP2P, S::RUNNING, S::RESUMING,
       "RUNNING RUNNING_P2P STOP RESUMING"},
      {kSC | kP2P | kPRE, S::RUNNING, S::RUNNING, "RUNNING"},
  };
  for (const Case& c : kCases) {
    absl::StatusOr<std::vector<S>> got =
        StatePath(MigrationFeatures(c.flags), c.from, c.to);
    ASSERT_TRUE(got.ok()) << Describe(c.flags, c.from, c.to);
    EXPECT_EQ(PathToString(*got), c.want) << Describe(c.flags, c.from, c.to);
  }
}

TEST(FsmTest, RefusalsSayWhy) {
  const MigrationFeatures all(kSC | kP2P | kPRE);
  EXPECT_NE(StatePath(all, S::RUNNING, S::ERROR)
                .status()
                .message()
                .find("ERROR is never a valid target"),
            absl::string_view::npos);
  EXPECT_NE(StatePath(all, S::ERROR, S::RUNNING)
                .status()
                .message()
                .find("VFIO_DEVICE_RESET"),
            absl::string_view::npos);
  EXPECT_NE(StatePath(all, S::STOP_COPY, S::PRE_COPY)
                .status()
                .message()
                .find("cannot restart pre-copy"),
            absl::string_view::npos);
  EXPECT_NE(StatePath(MigrationFeatures(kSC), S::RUNNING, S::RUNNING_P2P)
                .status()
                .message()
                .find("lacks"),
            absl::string_view::npos);
}

TEST(FsmTest, DrainArcsAndDataSessions) {
  EXPECT_TRUE(IsDrainArc(S::RUNNING, S::RUNNING_P2P));
  EXPECT_TRUE(IsDrainArc(S::PRE_COPY, S::PRE_COPY_P2P));
  EXPECT_TRUE(IsDrainArc(S::RUNNING_P2P, S::STOP));
  EXPECT_FALSE(IsDrainArc(S::STOP, S::STOP_COPY));
  EXPECT_FALSE(IsDrainArc(S::RUNNING_P2P, S::RUNNING));

  EXPECT_EQ(ArcOpensDataSession(S::RUNNING, S::PRE_COPY),
            DataSessionKind::kSave);
  EXPECT_EQ(ArcOpensDataSession(S::RUNNING_P2P, S::PRE_COPY_P2P),
            DataSessionKind::kSave);
  EXPECT_EQ(ArcOpensDataSession(S::STOP, S::STOP_COPY), DataSessionKind::kSave);
  EXPECT_EQ(ArcOpensDataSession(S::STOP, S::RESUMING),
            DataSessionKind::kResume);
  // The pre-copy session carries on into STOP_COPY: no new fd.
  EXPECT_EQ(ArcOpensDataSession(S::PRE_COPY_P2P, S::STOP_COPY),
            DataSessionKind::kNone);
  EXPECT_EQ(ArcOpensDataSession(S::PRE_COPY, S::STOP_COPY),
            DataSessionKind::kNone);
}

TEST(FsmTest, NamesRoundTrip) {
  for (S s : kAllDeviceStates) {
    EXPECT_EQ(ParseDeviceState(DeviceStateName(s)), s);
    EXPECT_EQ(ParseDeviceState("vfio_device_state_" +
                               std::string(DeviceStateName(s))),
              s);
    EXPECT_EQ(DeviceStateFromKernel(static_cast<uint32_t>(s)), s);
  }
  EXPECT_EQ(ParseDeviceState("running_p2p"), S::RUNNING_P2P);
  EXPECT_FALSE(ParseDeviceState("RUNNING_P3P").has_value());
  EXPECT_FALSE(DeviceStateFromKernel(8).has_value());
}

TEST(FsmTest, FeatureParsing) {
  absl::StatusOr<MigrationFeatures> f =
      MigrationFeatures::Parse("stop_copy, P2P,VFIO_MIGRATION_PRE_COPY");
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->flags(), kSC | kP2P | kPRE);
  EXPECT_EQ(f->ToString(), "stop_copy,p2p,pre_copy");
  EXPECT_FALSE(MigrationFeatures::Parse("stop_copy,dirty").ok());
  EXPECT_EQ(MigrationFeatures(kSC | 0x10).ToString(), "stop_copy,0x10");
  EXPECT_EQ(MigrationFeatures::Parse("")->flags(), 0u);
}

}  // namespace
}  // namespace vfiomig
