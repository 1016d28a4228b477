#include "mmlearn/train/time_budget.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "mmlearn/core/error.h"
#include "mmlearn/core/log.h"

namespace mmlearn {

int64_t TimeBudget::plan(int64_t steps_done, int64_t total, Clock::time_point now) {
  const bool warming_up = steps_done == first_ + 1;  // the first step is not timed
  if (!warming_up && last_.has_value()) {
    durations_.push_back(std::chrono::duration<double>(now - *last_).count());
    ++unplanned_;
  }
  last_ = now;
  if (unplanned_ < (total == 0 ? 5 : 50)) return total;
  unplanned_ = 0;
  std::vector<double> recent(
      durations_.end() - static_cast<std::ptrdiff_t>(std::min(kWindow, durations_.size())), durations_.end());
  std::nth_element(recent.begin(), recent.begin() + static_cast<std::ptrdiff_t>(recent.size() / 2),
                   recent.end());
  const double typical = recent[recent.size() / 2];
  double beyond = 0;
  for (const double d : durations_) beyond += std::max(0.0, d - typical);
  const double per_step = typical + beyond / static_cast<double>(durations_.size());
  const double left = seconds_ - std::chrono::duration<double>(now - run_start_).count();
  const auto fits = static_cast<int64_t>(std::max(0.0, left) / per_step);
  if (total == 0) {
    check(fits >= 10, "--minutes ", seconds_ / 60, ": after loading and ", steps_done, " steps, ",
          std::max(0.0, left), " s are left, room for ", fits, " more steps at ", per_step,
          " s each; raise --minutes or give --steps");
    log_info("--minutes ", seconds_ / 60, ": ", steps_done + fits, " steps at ", per_step, " s/step");
    return steps_done + fits;
  }
  const int64_t replanned = std::max(steps_done + 1, steps_done + fits);
  if (std::abs(static_cast<double>(replanned - total)) > 0.03 * static_cast<double>(total)) {
    log_info("--minutes: steps now take ", per_step, " s; re-planned from ", total, " to ", replanned,
             " steps");
    return replanned;
  }
  return total;
}

}  // namespace mmlearn
