#pragma once
// The training loop shared by the GPT and the encoder: LR schedule, gradient clipping,
// periodic evaluation, checkpoints at every evaluation and at the end, a CSV log, a progress bar,
// and Ctrl-C, which saves a checkpoint before returning. Under mpirun (options.distributed), every
// rank runs it in step with the others.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "autograd/tensor.h"
#include "nn/module.h"
#include "nn/optim/lr_schedule.h"
#include "nn/optim/optimizer.h"

namespace tg {

struct TrainLoopOptions {
  int64_t max_iters = 2000;
  int64_t eval_interval = 0;  ///< 0 = never evaluate during training (still at the end if eval given)
  double grad_clip = 0.0;     ///< 0 = off
  optim::LRSchedule schedule;
  std::string log_path;       ///< CSV: step,loss,lr,tokens_per_s,val_loss (appended on resume)
  bool progress = true;       ///< progress bar on stderr
  /// Data-parallel under the process group (nn/parallel/): the model is wrapped in
  /// DistributedDataParallel by the caller; the loss logged and checked is the mean over ranks,
  /// and only rank 0 writes the log, the progress bar and checkpoints.
  bool distributed = false;
  double dist_timeout_s = 300;  ///< bound on the wait for the other ranks' losses
};

/// What the loop asks of the model being trained.
struct TrainLoopHooks {
  /// Draws the next training batch and returns its loss (recorded for backward).
  std::function<Tensor()> loss_on_next_batch;
  /// Mean validation loss (run under NoGradGuard with the model in eval mode by the loop); may be
  /// empty.
  std::function<double()> evaluate;
  /// Extra words for the evaluation line (e.g. "val accuracy 0.41"); may be empty.
  std::function<std::string()> eval_summary;
  /// Writes a checkpoint for `step` steps done (the model's training state included).
  std::function<void(int64_t step)> save_checkpoint;
  /// Tokens (or examples) per step, for the progress bar and items_per_s.
  int64_t items_per_step = 1;
  std::string items_name = "tok";
  /// Tokens in the batch loss_on_next_batch last drew, for the log's tokens_per_s column, where
  /// batches differ in tokens (the encoder's); empty: items_per_step are the tokens.
  std::function<int64_t()> tokens_in_last_batch;
};

struct TrainLoopResult {
  int64_t steps_done = 0;
  double last_loss = 0;
  std::optional<double> last_val_loss;
  double items_per_s = 0;  ///< median over the run's steps
  bool interrupted = false;
};

/// Runs steps start_step .. options.max_iters - 1. Throws tg::Error when the loss becomes
/// non-finite (after keeping the last checkpoint).
TrainLoopResult run_train_loop(nn::Module& model, optim::Optimizer& optimizer, const TrainLoopOptions& options,
                               const TrainLoopHooks& hooks, int64_t start_step = 0);

}  // namespace tg
