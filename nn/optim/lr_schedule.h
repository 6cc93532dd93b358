#pragma once
// Learning-rate schedules as functions of the step, as nanoGPT computes them.
#include <cstdint>
#include <string>

namespace tg::optim {

struct LRSchedule {
  std::string kind = "cosine";  ///< "constant", "cosine" or "linear" (linear warmup, then that decay)
  double lr = 1e-3;
  double min_lr = 1e-4;
  int64_t warmup_iters = 0;
  int64_t decay_iters = 0;  ///< the step at which min_lr is reached (usually max_iters)

  /// The learning rate at step `it` (0-based): constant, or lr·(it+1)/(warmup+1) during warmup,
  /// then min_lr + ½(1 + cos(π·r))(lr − min_lr) (cosine) or min_lr + (1 − r)(lr − min_lr)
  /// (linear, as transformers' get_linear_schedule_with_warmup with min_lr 0) with r going
  /// 0 → 1 up to decay_iters, then min_lr (also right after warmup when decay_iters <= warmup_iters).
  double at(int64_t it) const;
  /// Throws tg::Error naming the bad field.
  void validate() const;
};

}  // namespace tg::optim
