#include "nn/optim/lr_schedule.h"

#include <cmath>
#include <numbers>

#include "autograd/error.h"

namespace tg::optim {

double LRSchedule::at(int64_t it) const {
  if (kind == "constant") return lr;
  if (it < warmup_iters) return lr * double(it + 1) / double(warmup_iters + 1);
  if (it >= decay_iters) return min_lr;
  double ratio = double(it - warmup_iters) / double(decay_iters - warmup_iters);
  if (kind == "linear") return min_lr + (1.0 - ratio) * (lr - min_lr);
  return min_lr + 0.5 * (1.0 + std::cos(std::numbers::pi * ratio)) * (lr - min_lr);
}

void LRSchedule::validate() const {
  TG_CHECK(kind == "constant" || kind == "cosine" || kind == "linear",
           "lr schedule: unknown kind '{}' (constant, cosine or linear)", kind);
  TG_CHECK(lr >= 0, "lr schedule: lr must be >= 0, got {}", lr);
  TG_CHECK(min_lr >= 0 && min_lr <= lr, "lr schedule: min_lr must be in [0, lr={}], got {}", lr, min_lr);
  TG_CHECK(warmup_iters >= 0, "lr schedule: warmup_iters must be >= 0, got {}", warmup_iters);
  TG_CHECK(decay_iters >= 0, "lr schedule: decay_iters must be >= 0, got {}", decay_iters);
}

}  // namespace tg::optim
