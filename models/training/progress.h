#pragma once
// Progress of a long run: on a terminal, one line redrawn in place (a bar, step/total, the
// numbers given, ETA); otherwise a plain line every few seconds, so logs stay readable.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace tg {

class ProgressBar {
 public:
  /// `total` steps; output to `out` (stderr by default). `plain_every_s`: seconds between plain
  /// lines when `out` is not a terminal.
  explicit ProgressBar(int64_t total, std::FILE* out = stderr, double plain_every_s = 5.0);
  /// Reports that `step` steps are done (1..total) with a status such as "loss 2.31 | 10.2k tok/s".
  void update(int64_t step, const std::string& status);
  /// Ends the bar's line (prints the last state on a terminal).
  void finish();
  /// Prints a whole line above the bar (e.g. an evaluation), keeping the bar intact.
  void note(const std::string& line);
  bool is_terminal() const { return tty_; }

 private:
  std::string render(int64_t step, const std::string& status) const;
  int64_t total_;
  std::FILE* out_;
  bool tty_;
  double plain_every_s_;
  std::chrono::steady_clock::time_point start_, last_plain_;
  std::string last_line_;
};

/// "2m03s", "1h05m", "12s".
std::string format_duration(double seconds);

}  // namespace tg
