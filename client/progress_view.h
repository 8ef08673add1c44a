// The live view of a running migration, fed with WatchMigration events.
//
// On a terminal it keeps a block of lines at the bottom of the screen and
// redraws it in place (ANSI cursor-up and clear): a phase line, then one
// progress bar per device. Event messages (waves, warnings) scroll above the
// block. Elsewhere (a pipe, a log file, CI) it prints one line per event
// that matters: phase changes, event messages, warnings, and byte progress
// at most once per interval, each stamped with the seconds since the start.
//
// Time is passed in by the caller (seconds on any monotonic clock), so the
// output is a pure function of the calls and tests need no sleeping.
// Not thread-safe: the caller serialises calls.
#ifndef VFIOMIG_CLIENT_PROGRESS_VIEW_H_
#define VFIOMIG_CLIENT_PROGRESS_VIEW_H_

#include <cstdint>
#include <deque>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vfiomig/v1/control.pb.h"

namespace vfiomig::cli {

// Bytes per second over a sliding window of samples. A window (rather than
// sent/elapsed) shows stalls and bursts as they happen.
class RateMeter {
 public:
  explicit RateMeter(double window_s = 2.0) : window_s_(window_s) {}
  void Add(double now_s, uint64_t bytes);
  // 0 until two samples span at least a tenth of a second.
  double BytesPerSecond() const;

 private:
  double window_s_;
  std::deque<std::pair<double, uint64_t>> samples_;
};

// True when `event` only moves byte counters on from `previous`: same
// phase, outcome, device states, errors and warnings, no wave, not a
// warning. Its message is then not printed.
bool IsByteProgressOnly(const v1::MigrationEvent& event,
                        const v1::Migration& previous);

struct ProgressViewOptions {
  bool tty = false;
  // Terminal width: block lines are cut to fit, since a wrapped line would
  // break the cursor arithmetic of the redraw.
  int columns = 100;
  int bar_width = 24;
  // Plain mode: least time between two byte-progress lines.
  double progress_interval_s = 1.0;
  // Terminal mode: least time between two redraws without news.
  double redraw_interval_s = 0.1;
};

class ProgressView {
 public:
  ProgressView(std::ostream& out, ProgressViewOptions options);

  void OnEvent(const v1::MigrationEvent& event, double now_s);
  // A line of the CLI's own ("cancelling ..."), printed like an event
  // message.
  void Note(std::string_view line, double now_s);
  // Draws the last state once more and leaves the cursor below it.
  void Finish(double now_s);

  // The terminal block as it would be drawn now (exposed for tests).
  std::vector<std::string> BlockLines() const;

 private:
  std::string Stamp(double now_s) const;
  void PrintLine(const std::string& line);  // above the block on a tty
  void Erase();
  void Draw();
  void MaybePlainProgress(double now_s, bool force);
  std::string Fit(std::string line) const;

  std::ostream& out_;
  ProgressViewOptions options_;
  v1::Migration last_;
  bool have_last_ = false;
  int wave_ = 0;
  std::string wave_phase_;
  RateMeter total_rate_;
  std::map<std::string, RateMeter> device_rates_;  // by source device id
  int lines_drawn_ = 0;
  double last_draw_s_ = -1e9;
  double last_progress_s_ = -1e9;
  uint64_t last_progress_bytes_ = 0;
  bool progress_printed_ = false;
};

}  // namespace vfiomig::cli

#endif  // VFIOMIG_CLIENT_PROGRESS_VIEW_H_
