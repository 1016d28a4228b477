// --minutes' planner on simulated clocks: a run ends when its budget does, whether the steps keep their pace,
// the machine slows down halfway or evaluations stall it at intervals.
#include <gtest/gtest.h>

#include <functional>

#include "mmlearn/core/error.h"
#include "mmlearn/train/time_budget.h"

namespace mmlearn {
namespace {

struct Ended {
  double seconds;  // since the run started, when its last step ended
  int64_t steps;
};

// A run that loads for `loading` seconds, then takes step_seconds(k) for step k, as the trainer asks the
// budget after each step.
Ended simulate(double minutes, double loading, const std::function<double(int64_t)>& step_seconds) {
  using Clock = TimeBudget::Clock;
  const Clock::time_point start{};
  TimeBudget budget(minutes, start);
  budget.start_at(0);
  double t = loading;
  int64_t total = 0, step = 0;
  while ((total == 0 || step < total) && step < 10'000'000) {
    t += step_seconds(++step);
    total = budget.plan(
        step, total, start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(t)));
  }
  return {t, step};
}

TEST(TimeBudget, AtASteadyPaceTheRunEndsWithItsBudget) {
  // The first step (warm-up) is not timed: its 30 s do not shrink the plan.
  const Ended run = simulate(10, 20, [](int64_t k) { return k == 1 ? 30.0 : 1.0; });
  EXPECT_NEAR(run.seconds, 600, 2);
  EXPECT_EQ(run.steps, 551);
}

TEST(TimeBudget, AMachineThatSlowsDownHalfwayIsReplannedFor) {
  // Unplanned for, the slower second half would end the run at 4,600 s.
  const Ended run = simulate(60, 10, [](int64_t k) { return k < 1800 ? 1.0 : 1.5; });
  EXPECT_NEAR(run.seconds, 3600, 0.01 * 3600);
}

TEST(TimeBudget, EvaluationsAreSpreadOverTheSteps) {
  // 0.5 s a step and 20 s more every 200th (an evaluation): 18 of them would cost 6 minutes unplanned for.
  const Ended run = simulate(30, 10, [](int64_t k) { return k % 200 == 0 ? 20.5 : 0.5; });
  EXPECT_NEAR(run.seconds, 1800, 0.01 * 1800);
}

TEST(TimeBudget, ABudgetWithNoRoomLeftIsAnError) {
  EXPECT_THROW(simulate(1, 55, [](int64_t) { return 1.0; }), Error);
}

}  // namespace
}  // namespace mmlearn
