#include "client/progress_view.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/migration_format.h"
#include "client/output.h"

namespace vfiomig::cli {

void RateMeter::Add(double now_s, uint64_t bytes) {
  // A counter that went backwards (a re-attached watch, a new total) makes
  // old samples meaningless.
  if (!samples_.empty() && bytes < samples_.back().second) samples_.clear();
  samples_.emplace_back(now_s, bytes);
  while (samples_.size() > 2 && now_s - samples_.front().first > window_s_) {
    samples_.pop_front();
  }
}

double RateMeter::BytesPerSecond() const {
  if (samples_.size() < 2) return 0;
  const double dt = samples_.back().first - samples_.front().first;
  if (dt < 0.1) return 0;
  return static_cast<double>(samples_.back().second - samples_.front().second) /
         dt;
}

ProgressView::ProgressView(std::ostream& out, ProgressViewOptions options)
    : out_(out), options_(options) {}

std::string ProgressView::Stamp(double now_s) const {
  return absl::StrFormat("[%6.1fs]", std::max(now_s, 0.0));
}

std::string ProgressView::Fit(std::string line) const {
  const size_t limit = static_cast<size_t>(std::max(options_.columns - 1, 20));
  if (line.size() > limit) line.resize(limit);
  return line;
}

void ProgressView::Erase() {
  if (lines_drawn_ == 0) return;
  // Back to the first line of the block, then clear to the end of screen.
  out_ << "\r\033[" << lines_drawn_ << "A\033[J";
  lines_drawn_ = 0;
}

void ProgressView::PrintLine(const std::string& line) {
  if (options_.tty) {
    Erase();
    out_ << Fit(line) << '\n';
    return;
  }
  out_ << line << '\n';
}

std::vector<std::string> ProgressView::BlockLines() const {
  std::vector<std::string> lines;
  if (!have_last_) return lines;
  std::string phase = PhaseName(last_.phase());
  if (IsFinal(last_)) phase = OutcomeName(last_.outcome());
  std::string head = absl::StrCat(phase, "  ");
  if (wave_ > 0 && !IsFinal(last_)) {
    absl::StrAppend(&head, "wave ", wave_);
    if (!wave_phase_.empty()) absl::StrAppend(&head, " ", wave_phase_);
    absl::StrAppend(&head, "  ");
  }
  absl::StrAppend(&head, ByteRatio(last_.bytes_sent(), last_.bytes_total()));
  if (IsFinal(last_) && last_.throughput_mib_s() > 0) {
    absl::StrAppend(&head, absl::StrFormat("  %.1f MiB/s average",
                                           last_.throughput_mib_s()));
  } else {
    absl::StrAppend(&head, "  ", HumanRate(total_rate_.BytesPerSecond()));
  }
  lines.push_back(std::move(head));

  size_t id_width = 0;
  size_t ratio_width = 0;
  size_t state_width = 0;
  for (const v1::MigrationDevice& device : last_.devices()) {
    id_width = std::max(id_width, device.source_device_id().size());
    ratio_width =
        std::max(ratio_width,
                 ByteRatio(device.bytes_sent(), device.bytes_total()).size());
    state_width = std::max(state_width, MigrationDeviceState(device).size());
  }
  for (const v1::MigrationDevice& device : last_.devices()) {
    std::string id = device.source_device_id();
    id.resize(id_width, ' ');
    std::string ratio = ByteRatio(device.bytes_sent(), device.bytes_total());
    ratio.insert(0, ratio_width - ratio.size(), ' ');
    std::string state = MigrationDeviceState(device);
    state.resize(state_width, ' ');
    double rate = 0;
    if (auto it = device_rates_.find(device.source_device_id());
        it != device_rates_.end()) {
      rate = it->second.BytesPerSecond();
    }
    std::string line =
        absl::StrCat("  ", id, "  ",
                     ProgressBar(device.bytes_sent(), device.bytes_total(),
                                 options_.bar_width),
                     "  ", ratio, "  ", state);
    if (!IsFinal(last_)) absl::StrAppend(&line, "  ", HumanRate(rate));
    if (!device.error().empty()) absl::StrAppend(&line, "  ", device.error());
    while (!line.empty() && line.back() == ' ') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

void ProgressView::Draw() {
  Erase();
  for (const std::string& line : BlockLines()) out_ << Fit(line) << '\n';
  lines_drawn_ = static_cast<int>(BlockLines().size());
  out_.flush();
}

void ProgressView::MaybePlainProgress(double now_s, bool force) {
  if (!have_last_) return;
  const uint64_t bytes = last_.bytes_sent();
  const bool moved = bytes != last_progress_bytes_ || !progress_printed_;
  if (!moved) return;
  if (!force && now_s - last_progress_s_ < options_.progress_interval_s) return;
  if (bytes == 0 && !IsFinal(last_)) return;  // nothing to report yet
  std::string line = absl::StrCat(Stamp(now_s), " progress ",
                                  ByteRatio(bytes, last_.bytes_total()));
  if (last_.bytes_total() > 0) {
    absl::StrAppend(
        &line, absl::StrFormat(" (%.0f%%)",
                               100.0 * std::min(bytes, last_.bytes_total()) /
                                   last_.bytes_total()));
  }
  if (!IsFinal(last_)) {
    absl::StrAppend(&line, " ", HumanRate(total_rate_.BytesPerSecond()));
  }
  std::vector<std::string> parts;
  for (const v1::MigrationDevice& device : last_.devices()) {
    parts.push_back(
        absl::StrCat(device.source_device_id(), " ",
                     ByteRatio(device.bytes_sent(), device.bytes_total()), " ",
                     MigrationDeviceState(device)));
  }
  if (!parts.empty()) absl::StrAppend(&line, ": ", absl::StrJoin(parts, ", "));
  out_ << line << '\n';
  last_progress_s_ = now_s;
  last_progress_bytes_ = bytes;
  progress_printed_ = true;
}

namespace {

bool SameDeviceStates(const v1::Migration& a, const v1::Migration& b) {
  if (a.devices_size() != b.devices_size()) return false;
  for (int i = 0; i < a.devices_size(); ++i) {
    if (a.devices(i).state() != b.devices(i).state() ||
        a.devices(i).error() != b.devices(i).error()) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool IsByteProgressOnly(const v1::MigrationEvent& event,
                        const v1::Migration& previous) {
  const v1::Migration& now = event.migration();
  return !event.warning() && event.wave() == 0 &&
         now.phase() == previous.phase() &&
         now.outcome() == previous.outcome() &&
         now.warnings_size() == previous.warnings_size() &&
         now.error() == previous.error() && SameDeviceStates(now, previous) &&
         (now.bytes_sent() != previous.bytes_sent() ||
          now.bytes_total() != previous.bytes_total());
}

void ProgressView::OnEvent(const v1::MigrationEvent& event, double now_s) {
  const v1::Migration& migration = event.migration();
  const bool phase_changed = !have_last_ ||
                             migration.phase() != last_.phase() ||
                             migration.outcome() != last_.outcome();
  // The daemon words its byte ticks ("gpu0: 48.0 MiB sent"); the bars and
  // the periodic progress line already say that, and a line per tick would
  // flood a terminal or a log.
  const bool quiet = have_last_ && IsByteProgressOnly(event, last_);
  if (event.wave() > 0) {
    wave_ = event.wave();
    wave_phase_ = event.wave_phase();
  }
  last_ = migration;
  have_last_ = true;
  total_rate_.Add(now_s, migration.bytes_sent());
  for (const v1::MigrationDevice& device : migration.devices()) {
    device_rates_[device.source_device_id()].Add(now_s, device.bytes_sent());
  }

  std::vector<std::string> lines;
  if (phase_changed && !IsFinal(migration)) {
    lines.push_back(
        absl::StrCat(Stamp(now_s), " phase ", PhaseName(migration.phase())));
  }
  if (!event.message().empty() && !quiet) {
    lines.push_back(absl::StrCat(
        Stamp(now_s), event.warning() ? " WARNING: " : " ", event.message()));
  }

  if (!options_.tty) {
    // Progress first on the final event, so that the last line about bytes
    // comes before the outcome.
    if (IsFinal(migration)) MaybePlainProgress(now_s, /*force=*/true);
    for (const std::string& line : lines) out_ << line << '\n';
    if (IsFinal(migration)) {
      out_ << Stamp(now_s) << ' ' << OutcomeName(migration.outcome()) << '\n';
    } else {
      MaybePlainProgress(now_s, /*force=*/false);
    }
    out_.flush();
    return;
  }

  for (const std::string& line : lines) PrintLine(line);
  if (lines.empty() && !IsFinal(migration) &&
      now_s - last_draw_s_ < options_.redraw_interval_s) {
    return;  // the next event or Finish draws it
  }
  Draw();
  last_draw_s_ = now_s;
}

void ProgressView::Note(std::string_view line, double now_s) {
  PrintLine(absl::StrCat(Stamp(now_s), " ", std::string(line)));
  if (options_.tty) Draw();
  out_.flush();
}

void ProgressView::Finish(double now_s) {
  if (options_.tty) {
    if (have_last_) Draw();
    lines_drawn_ = 0;  // the block stays on screen as the final picture
  } else {
    MaybePlainProgress(now_s, /*force=*/true);
  }
  out_.flush();
}

}  // namespace vfiomig::cli
