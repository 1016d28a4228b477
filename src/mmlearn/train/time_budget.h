// --minutes: a run's length in steps, from the budget left after loading and the measured step time;
// re-planned when the step time drifts. A step's typical time is the median over the last 500 steps, so that
// one slow step (an evaluation, a checkpoint, a generator encoding its training images) does not swing the
// plan, nor does a minute or two of a busier machine (50 steps swung a 45-minute plan by ±13 %). What every
// step so far took beyond that median is spread over all steps, since evaluations recur; it is measured
// against the latest median, so that a machine that slows down is counted once, in the median, and not also
// as slow steps.
//
//   TimeBudget budget(45, run_start);
//   budget.start_at(step);                               // the step the run starts from (a resumed run's)
//   total = budget.plan(++step, total, Clock::now());    // after each step: 0 while still timing
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

namespace mmlearn {

class TimeBudget {
 public:
  using Clock = std::chrono::steady_clock;
  TimeBudget(double minutes, Clock::time_point run_start) : seconds_(minutes * 60), run_start_(run_start) {}

  void start_at(int64_t step) { first_ = step; }
  // Called after each step, at `now`: the planned total steps (`total` until there is a plan or a new one;
  // 0 before the first). An Error when the budget has no room for 10 more steps.
  int64_t plan(int64_t steps_done, int64_t total, Clock::time_point now);

 private:
  double seconds_;
  Clock::time_point run_start_;
  std::optional<Clock::time_point> last_;  // when the previous step ended
  static constexpr size_t kWindow = 500;   // the steps the median is taken over
  std::vector<double> durations_;          // every timed step's, in seconds
  int64_t unplanned_ = 0;                  // of them, those since the last plan
  int64_t first_ = 0;
};

}  // namespace mmlearn
