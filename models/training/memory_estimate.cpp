#include "models/training/memory_estimate.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "autograd/available_memory.h"
#include "autograd/checked_size.h"
#include "autograd/error.h"
#include "models/training/parameter_count.h"
#include "ops/flex_spec.h"

namespace tg::models {
namespace {

// Every product below is taken in double: an estimate cannot overflow (it may reach infinity,
// which is refused like any other figure above the memory available).
double as_double(int64_t v) { return static_cast<double>(v); }

std::string memory_breakdown(const TrainingMemory& m) {
  return fmt::format("{} for parameters, gradients and optimizer state, {} for one step's activations",
                     format_gb(m.parameters), format_gb(m.activations));
}

}  // namespace

double parameter_state_bytes(int64_t num_parameters, int64_t element_size, const std::string& optimizer) {
  const double copies = 2 + (optimizer == "sgd" ? 1 : 2);  // the values, their gradients, the moments
  return copies * as_double(num_parameters) * as_double(element_size);
}

// Activations saved by one training step, in elements (B batch, T block, C width, H heads,
// V vocabulary, L layers):
//   embeddings            2·B·T·C        (token + position sum, after dropout)
//   per layer            16·B·T·C        (LayerNorm outputs, q/k/v, attention output, residuals,
//                                         the MLP's B·T·4C hidden layer twice: before and after GELU)
//   per layer, dense      B·H·T·T        (the attention weights softmax saves; other variants keep
//                                         O(T) and are not counted)
//   logits                2·B·T·V        (the logits and their softmax in the loss)
// With activation checkpointing only each block's input is kept (L·B·T·C), and one block's
// activations at a time. Transient buffers of backward are not counted: the estimate is a floor.
TrainingMemory gpt_training_memory(const GPTConfig& c, int64_t B, int64_t T, const std::string& optimizer,
                                   bool activation_checkpointing) {
  const double elem = as_double(int64_t(element_size(c.dtype)));
  const double BTC = as_double(B) * as_double(T) * as_double(c.n_embd);
  const double attention_weights =
      c.attention.variant == AttentionVariant::dense && c.attention.flex.empty() ? as_double(B) * as_double(c.n_head) * as_double(T) * as_double(T) : 0.0;
  const double per_layer = 16 * BTC + attention_weights;
  const double layers = activation_checkpointing ? as_double(c.n_layer) * BTC + per_layer : as_double(c.n_layer) * per_layer;
  TrainingMemory m;
  m.parameters = parameter_state_bytes(gpt_parameter_count(c), int64_t(element_size(c.dtype)), optimizer);
  m.activations = elem * (2 * BTC + layers + 2 * as_double(B) * as_double(T) * as_double(c.vocab_size));
  return m;
}

// The encoder as the GPT above, with the FFN F wide instead of 4C: per layer 8·B·T·C + 2·B·T·F
// (+ B·H·T·T for dense attention); the classifier's logits are negligible.
TrainingMemory encoder_training_memory(const EncoderConfig& c, int64_t B, int64_t T, const std::string& optimizer,
                                       bool activation_checkpointing) {
  const double elem = 4;  // train_encoder builds the model in f32
  const double BTC = as_double(B) * as_double(T) * as_double(c.n_embd);
  const double attention_weights =
      c.attention_spec().variant == AttentionVariant::dense && !is_flex_pattern(c.attention) ? as_double(B) * as_double(c.n_head) * as_double(T) * as_double(T) : 0.0;
  const double per_layer = 8 * BTC + 2 * as_double(B) * as_double(T) * as_double(c.ffn_width()) + attention_weights;
  const double layers = activation_checkpointing ? as_double(c.n_layer) * BTC + per_layer : as_double(c.n_layer) * per_layer;
  TrainingMemory m;
  m.parameters = parameter_state_bytes(encoder_parameter_count(c), 4, optimizer);
  m.activations = elem * (2 * BTC + layers);
  return m;
}

GPTConfig gpt_of_sizes(const LlamaConfig& l) {
  GPTConfig c;
  c.vocab_size = l.vocab_size;
  c.n_positions = l.max_position_embeddings;
  c.n_embd = l.hidden_size;
  c.n_layer = l.num_hidden_layers;
  c.n_head = l.num_attention_heads;
  c.dtype = l.dtype;
  c.attention = l.attention;
  return c;
}

void check_gpt_training_fits(const GPTTrainOptions& o, int64_t vocab_size, const GPTConfig* checkpoint_config) {
  const int64_t B = o.optim.batch_size, T = o.block_size;
  product_or_fail({B, T}, "`batch_size` × `block_size` (tokens per step)");
  GPTConfig c;
  std::string sizes;
  if (checkpoint_config) {
    c = *checkpoint_config;
    sizes = fmt::format("the model of {} (n_embd {}, n_layer {}, vocab_size {})",
                        o.resume.empty() ? "`init_from` " + o.init_from : "`resume` " + o.resume, c.n_embd,
                        c.n_layer, c.vocab_size);
  } else {
    c.vocab_size = vocab_size, c.n_positions = o.block_size;
    c.n_layer = o.n_layer, c.n_head = o.n_head, c.n_embd = o.n_embd, c.bias = o.bias;
    c.attention = GPTAttention::parse(o.attention);
    sizes = fmt::format("`n_embd` {} `n_layer` {} `n_head` {} (vocabulary {})", o.n_embd, o.n_layer, o.n_head,
                        vocab_size);
    try {
      gpt_parameter_count(c);
    } catch (const Error& e) {
      fail("`n_embd` {}, `n_layer` {}: {}", o.n_embd, o.n_layer, e.what());
    }
  }
  TrainingMemory m = gpt_training_memory(c, B, T, o.optim.optimizer, o.optim.activation_checkpointing);
  check_memory_fits(m.total(),
                    fmt::format("gpt train with {}, `batch_size` {} `block_size` {}, `optimizer` {} ({})", sizes, B,
                                T, o.optim.optimizer, memory_breakdown(m)));
}

void check_encoder_training_fits(const EncoderTrainOptions& o, const EncoderConfig& c, int64_t longest_example,
                                 int64_t num_examples) {
  const int64_t B = std::min(o.optim.batch_size, std::max<int64_t>(num_examples, 1));
  const int64_t T = std::min(longest_example, c.max_len) + (c.pooling == "cls" ? 1 : 0);
  product_or_fail({o.optim.batch_size, c.max_len}, "`batch_size` × `max_len` (tokens per step)");
  try {
    encoder_parameter_count(c);
  } catch (const Error& e) {
    fail("`n_embd` {}, `n_layer` {}, `max_len` {}, `n_classes` {}: {}", c.n_embd, c.n_layer, c.max_len, c.n_classes,
         e.what());
  }
  TrainingMemory m = encoder_training_memory(c, B, T, o.optim.optimizer, o.optim.activation_checkpointing);
  check_memory_fits(m.total(), fmt::format("encoder train with `n_embd` {} `n_layer` {} `n_head` {} `max_len` {} "
                                           "`n_classes` {}, `batch_size` {} (batches of {} × {} tokens), `optimizer` "
                                           "{} ({})",
                                           c.n_embd, c.n_layer, c.n_head, c.max_len, c.n_classes, o.optim.batch_size,
                                           B, T, o.optim.optimizer, memory_breakdown(m)));
}

void check_checkpoint_fits(int64_t num_parameters, int64_t element_size, const std::string& config_path,
                           const std::string& weights_path, uint64_t weights_bytes) {
  std::error_code ec;
  const uintmax_t file_bytes = weights_bytes ? weights_bytes : std::filesystem::file_size(weights_path, ec);
  // The loader names a missing or unreadable file, and one too short for its 8-byte header length.
  if (ec || file_bytes < 8) return;
  // F16 and BF16 are the narrowest dtypes read: every parameter takes at least 2 bytes of the file.
  TG_CHECK(as_double(num_parameters) * 2 <= double(file_bytes),
           "{} claims a model of {} parameters, but {} has only {} bytes (at least 2 per parameter): the config "
           "does not belong to these weights",
           config_path, num_parameters, weights_path, file_bytes);
  // While loading, the model and the file's tensors (at least the file's size) are both held.
  check_memory_fits(as_double(num_parameters) * as_double(element_size) + double(file_bytes),
                    fmt::format("loading the {} parameters of {} with the weights of {}", num_parameters,
                                config_path, weights_path));
}

}  // namespace tg::models
