#pragma once
// Training the encoder classifier on ListOps-style TSV files (`Source\tTarget`), what
// `tapegrad encoder train` runs: shuffled epochs of padded batches, AdamW or SGD, warmup +
// cosine LR, clipping, validation accuracy, checkpoints at every evaluation and at the end.
#include <cstdint>
#include <optional>
#include <functional>
#include <string>

#include "models/encoder/encoder_config.h"
#include "models/training/train_options.h"

namespace tg::models {

struct EncoderTrainOptions {
  std::string data;      ///< train.tsv
  std::string val_data;  ///< val.tsv; empty: the last 10% of data is held out
  std::string out;       ///< checkpoint directory

  /// The model (its vocab_size is the data's: set by train_encoder).
  EncoderConfig config;

  /// Batches of similar lengths (length_buckets.h) instead of uniformly random ones.
  bool bucket_by_length = false;

  /// Optimisation, as the GPT's; here eval_iters 0 means the whole validation set.
  OptimOptions optim = encoder_defaults();

  /// tg::Error naming the first bad option by its field (`n_classes`).
  void validate() const;

  static OptimOptions encoder_defaults() {
    OptimOptions o;
    o.batch_size = 32;
    o.eval_iters = 0;
    return o;
  }
};

struct EncoderTrainResult {
  int64_t steps = 0;
  double train_loss = 0;
  std::optional<double> val_loss, val_accuracy;
  double examples_per_s = 0;
  double majority_accuracy = 0;  ///< of the validation set: the baseline to beat
  double padding_share = 0;      ///< padding tokens / all tokens of the training batches run
  int64_t num_parameters = 0;
  bool interrupted = false;
};

EncoderTrainResult train_encoder(const EncoderTrainOptions& options);

/// Accuracy of a checkpoint on a TSV file (what `tapegrad encoder eval` prints). A label beyond the
/// checkpoint's classes is an error naming its line; weights holding NaN or Inf are evaluated
/// anyway, `warn` told which tensor first.
double evaluate_encoder(const std::string& checkpoint, const std::string& data, int64_t batch_size = 64,
                        const std::function<void(const std::string&)>& warn = {});

}  // namespace tg::models
