#pragma once
// Training-memory estimates, made before a model is built and checked against the memory the
// process can take (autograd/available_memory.h): a run that cannot fit is refused up front with
// the estimate and the options that set it, instead of dying in the OOM killer hours later.
// Estimates err on the low side, so a run that fits is never refused.
#include <cstdint>
#include <string>

#include "models/encoder/encoder_config.h"
#include "models/gpt/gpt_config.h"
#include "models/training/encoder_train.h"
#include "models/training/gpt_train.h"

namespace tg::models {

/// Bytes one training step needs at least, split as the message reports them.
struct TrainingMemory {
  double parameters = 0;   ///< parameters + gradients + optimizer state
  double activations = 0;  ///< what one step's forward saves for backward
  double total() const { return parameters + activations; }
};

/// Bytes of parameters, gradients and optimizer state (AdamW two moments, SGD one momentum) for
/// `num_parameters` parameters of `element_size` bytes.
double parameter_state_bytes(int64_t num_parameters, int64_t element_size, const std::string& optimizer);

/// A GPT's training step at batch B, block T (see the formula in memory_estimate.cpp).
TrainingMemory gpt_training_memory(const GPTConfig& config, int64_t batch_size, int64_t block_size,
                                   const std::string& optimizer, bool activation_checkpointing);
/// The encoder's training step at batch B of sequences of `seq_len` tokens.
TrainingMemory encoder_training_memory(const EncoderConfig& config, int64_t batch_size, int64_t seq_len,
                                       const std::string& optimizer, bool activation_checkpointing);

/// The GPT-2 of a Llama's sizes (C, L, H, V, context, dtype, attention), whose estimate stands for
/// the Llama's: its SwiGLU of width ~8C/3 holds what GPT-2's 4C MLP holds, its attention no more.
GPTConfig gpt_of_sizes(const LlamaConfig& config);

/// For train_gpt, once the data's vocabulary is known and before the model is built: throws
/// tg::Error naming `batch_size` and `block_size` when B·T overflows, and when the estimate is
/// above the memory available, with the estimate and the options that set it (`n_embd`, `n_layer`,
/// `n_head`, `batch_size`, `block_size`, or the checkpoint of `init_from` / `resume`).
/// `checkpoint_config` is the loaded model's config (nullptr for a new model).
void check_gpt_training_fits(const GPTTrainOptions& options, int64_t vocab_size, const GPTConfig* checkpoint_config);

/// For train_encoder, before the model is built: as check_gpt_training_fits, with T the longest
/// training sequence (`longest_example` tokens, at most `max_len`) and B at most the examples.
void check_encoder_training_fits(const EncoderTrainOptions& options, const EncoderConfig& config,
                                 int64_t longest_example, int64_t num_examples);

/// Before loading a checkpoint's weights: a model of `num_parameters` (counted from
/// `config_path`) must be backed by `weights_path` (at least 2 bytes per parameter, F16's) and
/// fit in memory together with the file's tensors. tg::Error naming both files otherwise.
/// `weights_bytes`: the weights' size when they span several files (shards; `weights_path` names
/// their index), else 0 to take `weights_path`'s size.
void check_checkpoint_fits(int64_t num_parameters, int64_t element_size, const std::string& config_path,
                           const std::string& weights_path, uint64_t weights_bytes = 0);

}  // namespace tg::models
