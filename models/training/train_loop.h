#pragma once
// The training loop shared by the GPT and the encoder: LR schedule, gradient clipping,
// periodic evaluation, checkpoints at every evaluation and at the end, a CSV log, a progress bar,
// and Ctrl-C, which saves a checkpoint before returning. Under mpirun (`distributed`), every rank
// runs it in step with the others.
#include <cstdint>
#include <optional>
#include <string>

#include "autograd/tensor.h"
#include "models/training/train_options.h"
#include "nn/module.h"
#include "nn/optim/optimizer.h"

namespace tg {

/// What the loop trains: its batches, its validation and its checkpoints. The decoder's and the
/// encoder's trainings implement it (gpt_train.cpp, encoder_train.cpp).
class TrainingTask {
 public:
  virtual ~TrainingTask() = default;
  /// Draws the next training batch and returns its loss (recorded for backward).
  virtual Tensor loss_on_next_batch() = 0;
  /// Tokens in the batch loss_on_next_batch last drew, for the log's tokens_per_s column.
  virtual int64_t tokens_in_last_batch() const = 0;
  /// Mean validation loss; the loop runs it under NoGradGuard with the model in eval mode.
  virtual double evaluate() = 0;
  /// Extra words for the evaluation line (e.g. "val accuracy 0.41"); empty for none.
  virtual std::string eval_summary() const { return ""; }
  /// Writes a checkpoint for `step` steps done (the training state included); rank 0 only.
  virtual void save_checkpoint(int64_t step) = 0;
  /// Tokens or examples per step, for the progress bar and items_per_s, and their name there.
  virtual int64_t items_per_step() const = 0;
  virtual const char* items_name() const { return "tok"; }
};

struct TrainLoopResult {
  int64_t steps_done = 0;
  double last_loss = 0;
  std::optional<double> last_val_loss;
  double items_per_s = 0;  ///< median over the run's steps
  bool interrupted = false;
};

/// Runs steps start_step .. options.max_iters - 1 of `task` with the schedule, clipping,
/// evaluation interval, log and progress bar of `options`. `distributed`: data-parallel under the
/// process group (nn/parallel/; the model is wrapped in DistributedDataParallel by the caller): the
/// loss logged and checked is the mean over ranks, and only rank 0 writes the log, the progress
/// bar and checkpoints. Throws tg::Error when the loss becomes non-finite (after keeping the last
/// checkpoint).
TrainLoopResult run_train_loop(nn::Module& model, optim::Optimizer& optimizer, const models::OptimOptions& options,
                               TrainingTask& task, int64_t start_step = 0, bool distributed = false);

}  // namespace tg
