#include "models/training/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>

namespace tg {

std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

ProgressBar::ProgressBar(int64_t total, std::FILE* out, double plain_every_s)
    : total_(std::max<int64_t>(total, 1)),
      out_(out),
      tty_(isatty(fileno(out)) != 0),
      plain_every_s_(plain_every_s),
      start_(std::chrono::steady_clock::now()),
      last_plain_(start_) {}

std::string ProgressBar::render(int64_t step, const std::string& status) const {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double eta = step > 0 ? elapsed * double(total_ - step) / double(step) : -1;
  constexpr int kWidth = 24;
  int filled = static_cast<int>(kWidth * std::min<int64_t>(step, total_) / total_);
  std::string bar = std::string(filled, '=') + (filled < kWidth ? ">" : "") + std::string(std::max(0, kWidth - filled - 1), ' ');
  return fmt::format("{:>{}}/{} [{}] {} | ETA {}", step, std::to_string(total_).size(), total_, bar, status,
                     format_duration(eta));
}

void ProgressBar::update(int64_t step, const std::string& status) {
  last_line_ = render(step, status);
  if (tty_) {
    fmt::print(out_, "\r\033[K{}", last_line_);
    std::fflush(out_);
    return;
  }
  auto now = std::chrono::steady_clock::now();
  if (step == total_ || std::chrono::duration<double>(now - last_plain_).count() >= plain_every_s_ || step == 1) {
    last_plain_ = now;
    fmt::print(out_, "{}\n", last_line_);
    std::fflush(out_);
  }
}

void ProgressBar::note(const std::string& line) {
  if (tty_)
    fmt::print(out_, "\r\033[K{}\n{}", line, last_line_);
  else
    fmt::print(out_, "{}\n", line);
  std::fflush(out_);
}

void ProgressBar::finish() {
  if (tty_) fmt::print(out_, "\r\033[K{}\n", last_line_);
  std::fflush(out_);
}

}  // namespace tg
