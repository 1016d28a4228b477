// Learning-rate schedule: linear warm-up, then cosine decay to min_ratio * base (Loshchilov & Hutter, 2017),
// the schedule CLIP and open_clip train with.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace mmlearn {

inline double cosine_lr(int64_t step, int64_t total_steps, int64_t warmup_steps, double base_lr,
                        double min_ratio = 0.0) {
  if (warmup_steps > 0 && step < warmup_steps) return base_lr * static_cast<double>(step + 1) / warmup_steps;
  const double span = std::max<int64_t>(1, total_steps - warmup_steps);
  const double progress = std::clamp((step - warmup_steps) / span, 0.0, 1.0);
  return base_lr * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + std::cos(M_PI * progress)));
}

}  // namespace mmlearn
