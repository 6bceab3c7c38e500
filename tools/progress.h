// The progress line shown within an epoch on a terminal: one line, rewritten in place
// ("\r"), at most four times a second, and erased before anything else is printed, so a
// log or a pipe never sees it (`detdl train --progress auto`, the default, shows it only
// when stdout is a terminal).
#pragma once
#include <chrono>
#include <cstdio>
#include <string>

#include "engine/train.h"

namespace detdl::tools {

class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled) {}

  void update(const StepProgress& p) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    if (shown_ && now - last_shown_ < std::chrono::milliseconds(250)) return;
    last_shown_ = now;
    const std::int64_t done = p.step - p.first_step;  // steps this process ran
    const double rate = p.seconds > 0 ? static_cast<double>(done) / p.seconds : 0.0;
    const std::int64_t epoch = (p.step - 1) / p.steps_per_epoch,
                       in_epoch = (p.step - 1) % p.steps_per_epoch + 1;
    const double eta = rate > 0 ? static_cast<double>(p.total_steps - p.step) / rate : 0.0;
    char line[160];
    std::snprintf(line, sizeof line, "  epoch %lld  step %lld/%lld  %.0f samples/s  ETA %s",
                  static_cast<long long>(epoch + 1), static_cast<long long>(in_epoch),
                  static_cast<long long>(p.steps_per_epoch),
                  rate * static_cast<double>(p.rows_per_step), clock(eta).c_str());
    std::string text(line);
    const std::size_t width = text.size();
    if (width < width_) text.append(width_ - width, ' ');  // cover a longer previous line
    width_ = width;
    std::printf("\r%s", text.c_str());
    std::fflush(stdout);
    shown_ = true;
  }

  // Erases the line (before an epoch's summary, a message, or the end).
  void clear() {
    if (!enabled_ || !shown_) return;
    std::printf("\r%s\r", std::string(width_, ' ').c_str());
    std::fflush(stdout);
    shown_ = false;
    width_ = 0;
  }

  ~ProgressLine() { clear(); }

 private:
  static std::string clock(double seconds) {
    const long long s = static_cast<long long>(seconds + 0.5);
    char buf[32];
    if (s >= 3600)
      std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    else
      std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
    return buf;
  }

  bool enabled_;
  bool shown_ = false;
  std::size_t width_ = 0;
  std::chrono::steady_clock::time_point last_shown_{};
};

}  // namespace detdl::tools
