#pragma once
// The optimisation options every training command shares (`optimizer`, `lr`, ...): what
// they mean, their checks, and the optimizer and LR schedule they make.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "nn/module.h"
#include "nn/optim/lr_schedule.h"
#include "nn/optim/optimizer.h"

namespace tg::models {

struct OptimOptions {
  int64_t batch_size = 12;
  std::string optimizer = "adamw";  ///< "adamw" or "sgd" (torch.optim.SGD: momentum 0 unless set)
  double lr = 1e-3, min_lr = 1e-4;
  int64_t warmup_iters = 100;
  std::string lr_schedule = "cosine";  ///< "cosine", "linear" or "constant"
  double beta1 = 0.9, beta2 = 0.99;
  std::optional<double> weight_decay;  ///< unset: 0.1 for AdamW (nanoGPT), 0 for SGD (PyTorch)
  double momentum = 0;                 ///< SGD only, as torch.optim.SGD
  bool nesterov = false;               ///< SGD only; needs momentum > 0
  double grad_clip = 1.0;       ///< 0 = off
  int64_t max_iters = 2000;
  int64_t lr_decay_iters = 0;   ///< where the cosine reaches min_lr (0 = max_iters), as nanoGPT
  int64_t eval_interval = 250;  ///< 0 = never during training (still at the end)
  int64_t eval_iters = 20;      ///< validation batches per evaluation
  uint64_t seed = 1337;
  int threads = 0;              ///< 0 = all cores
  std::string log;              ///< CSV file: step,loss,lr,tokens_per_s,val_loss
  bool progress = true;         ///< progress bar on stderr
  bool detect_anomaly = false;  ///< check every op's output and gradient for NaN/Inf (slow)
  bool activation_checkpointing = false;  ///< recompute each block's activations in backward
  // Data-parallel training under mpirun (nn/parallel/): ignored in a single process.
  double bucket_cap_mb = 25.0;  ///< gradient bucket size of DistributedDataParallel
  double dist_timeout = 300.0;  ///< seconds to wait for the other ranks before tg::Error

  /// The weight decay in effect: the one given, else the optimizer's default.
  double effective_weight_decay() const { return weight_decay.value_or(optimizer == "sgd" ? 0.0 : 0.1); }
  /// tg::Error naming the first bad option by its field (`lr`).
  void validate() const;
  /// AdamW or SGD over nanoGPT's groups of `model` (decay on rank >= 2 parameters only).
  std::unique_ptr<optim::Optimizer> make_optimizer(const nn::Module& model) const;
  optim::LRSchedule schedule() const;
};

}  // namespace tg::models
