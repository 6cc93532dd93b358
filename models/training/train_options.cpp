#include "models/training/train_options.h"

#include <cmath>
#include <utility>

#include "autograd/error.h"
#include "nn/optim/adamw.h"
#include "nn/optim/sgd.h"

namespace tg::models {

void OptimOptions::validate() const {
  // inf and nan pass the range checks below (nan fails every comparison): named here.
  for (auto [flag, value] : {std::pair{"`lr`", lr}, {"`min_lr`", min_lr}, {"`beta1`", beta1}, {"`beta2`", beta2},
                             {"`weight_decay`", effective_weight_decay()}, {"`momentum`", momentum},
                             {"`grad_clip`", grad_clip}, {"`bucket_cap_mb`", bucket_cap_mb},
                             {"`dist_timeout`", dist_timeout}})
    TG_CHECK(std::isfinite(value), "{} must be a finite number, got {}", flag, value);
  TG_CHECK(batch_size > 0, "`batch_size` must be positive, got {}", batch_size);
  TG_CHECK(optimizer == "adamw" || optimizer == "sgd", "`optimizer` must be adamw or sgd, got '{}'", optimizer);
  TG_CHECK(lr > 0, "`lr` must be positive, got {}", lr);
  TG_CHECK(min_lr >= 0 && min_lr <= lr, "`min_lr` must be in [0, `lr`], got {}", min_lr);
  TG_CHECK(warmup_iters >= 0, "`warmup_iters` must be >= 0, got {}", warmup_iters);
  TG_CHECK(lr_schedule == "cosine" || lr_schedule == "constant" || lr_schedule == "linear",
           "`lr_schedule` must be cosine, linear or constant, got '{}'", lr_schedule);
  TG_CHECK(beta1 >= 0 && beta1 < 1, "`beta1` must be in [0, 1), got {}", beta1);
  TG_CHECK(beta2 >= 0 && beta2 < 1, "`beta2` must be in [0, 1), got {}", beta2);
  TG_CHECK(effective_weight_decay() >= 0, "`weight_decay` must be >= 0, got {}", effective_weight_decay());
  TG_CHECK(momentum >= 0, "`momentum` must be >= 0, got {}", momentum);
  TG_CHECK(optimizer == "sgd" || (momentum == 0 && !nesterov),
           "`momentum` and `nesterov` are SGD's; AdamW's momentum is `beta1` (give `optimizer` sgd)");
  TG_CHECK(!nesterov || momentum > 0, "`nesterov` needs `momentum` > 0, as torch.optim.SGD");
  TG_CHECK(grad_clip >= 0, "`grad_clip` must be >= 0 (0 = off), got {}", grad_clip);
  TG_CHECK(max_iters >= 0, "`max_iters` must be >= 0, got {}", max_iters);
  TG_CHECK(lr_decay_iters >= 0, "`lr_decay_iters` must be >= 0 (0 = `max_iters`), got {}", lr_decay_iters);
  TG_CHECK(eval_interval >= 0, "`eval_interval` must be >= 0 (0 = never), got {}", eval_interval);
  TG_CHECK(eval_iters >= 0, "`eval_iters` must be >= 0, got {}", eval_iters);
  TG_CHECK(threads >= 0, "`threads` must be >= 0, got {}", threads);
  TG_CHECK(bucket_cap_mb > 0, "`bucket_cap_mb` must be positive, got {}", bucket_cap_mb);
  TG_CHECK(dist_timeout > 0, "`dist_timeout` must be positive (seconds), got {}", dist_timeout);
}

std::unique_ptr<optim::Optimizer> OptimOptions::make_optimizer(const nn::Module& model) const {
  const double decay = effective_weight_decay();
  std::vector<optim::ParamGroup> groups = optim::decay_groups(model, decay);
  if (optimizer == "sgd")
    return std::make_unique<optim::SGD>(
        groups, optim::SGDOptions(lr).momentum(momentum).nesterov(nesterov).weight_decay(decay));
  return std::make_unique<optim::AdamW>(groups, optim::AdamWOptions(lr).beta1(beta1).beta2(beta2).weight_decay(decay));
}

optim::LRSchedule OptimOptions::schedule() const {
  return {lr_schedule, lr, min_lr, warmup_iters, lr_decay_iters > 0 ? lr_decay_iters : max_iters};
}

}  // namespace tg::models
