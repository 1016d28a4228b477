// A progress bar for long work, on stderr: done/total, rate, elapsed, ETA and live fields such as the loss.
// On a terminal it redraws one line; otherwise (logs, CI) it prints a line every few seconds.
//
//   mmlearn::Progress bar("train", total_steps, "step");
//   for (...) { ...; bar.update(step, {{"loss", loss}}); }
//   bar.finish();
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace mmlearn {

class Progress {
 public:
  // `start`: the count the work begins at (a resumed run starts mid-way); the rate counts from there.
  Progress(std::string label, int64_t total, std::string unit = "it", int64_t start = 0);
  ~Progress();
  void update(int64_t done, const std::vector<std::pair<std::string, double>>& fields = {});
  void finish();
  void set_total(int64_t total) { total_ = total; }  // a re-planned run
  // Globally silence bars (e.g. under --quiet, or in tests).
  static void set_enabled(bool enabled);

 private:
  void draw(bool final);
  std::string label_, unit_;
  int64_t total_, done_, start_done_, drawn_done_ = -1;
  std::vector<std::pair<std::string, double>> fields_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool tty_, drawn_ = false, finished_ = false;
};

std::string format_duration(double seconds);

}  // namespace mmlearn
