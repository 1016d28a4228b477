#include "mmlearn/core/progress.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>

namespace mmlearn {
namespace {
std::atomic<bool> g_enabled{true};
}

void Progress::set_enabled(bool enabled) { g_enabled = enabled; }

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  auto s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
                  (long long)(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", (long long)(s / 60), (long long)(s % 60));
  return buf;
}

Progress::Progress(std::string label, int64_t total, std::string unit, int64_t start)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      total_(total),
      done_(start),
      start_done_(start),
      tty_(::isatty(STDERR_FILENO) != 0) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

void Progress::update(int64_t done, const std::vector<std::pair<std::string, double>>& fields) {
  done_ = done;
  if (!fields.empty()) fields_ = fields;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_draw_).count();
  if (since >= (tty_ ? 0.1 : 5.0) || done_ == total_) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  // Off a terminal every line stays: do not repeat the one that already showed the end.
  if (!tty_ && drawn_ && drawn_done_ == done_) return;
  if (drawn_ || done_ > start_done_) draw(true);
}

void Progress::draw(bool final) {
  if (!g_enabled) return;
  drawn_ = true;
  drawn_done_ = done_;
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = elapsed > 0 ? (done_ - start_done_) / elapsed : 0;
  double eta = rate > 0 && total_ > 0 ? (total_ - done_) / rate : NAN;
  std::string bar;
  if (total_ > 0) {
    int width = 24, filled = static_cast<int>(width * std::min<double>(1.0, double(done_) / total_));
    bar = "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
  }
  std::string extra;
  for (const auto& [name, value] : fields_) {
    char buf[64];
    std::snprintf(buf, sizeof buf, " %s %.4g", name.c_str(), value);
    extra += buf;
  }
  char rate_text[48];
  std::snprintf(rate_text, sizeof rate_text, "%.1f %s/s", rate, unit_.c_str());
  std::fprintf(stderr, "%s%s %s%lld/%lld %s %s<%s%s%s", tty_ ? "\r\033[K" : "", label_.c_str(), bar.c_str(),
               (long long)done_, (long long)total_, rate_text, format_duration(elapsed).c_str(),
               format_duration(eta).c_str(), extra.c_str(), (tty_ && !final) ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace mmlearn
