#include "models/training/parameter_count.h"

#include <optional>

#include "autograd/checked_size.h"
#include "autograd/error.h"

namespace tg::models {
namespace {

// A sum of products of sizes that remembers whether any step overflowed.
class CheckedCount {
 public:
  CheckedCount& add(std::initializer_list<int64_t> factors) {
    std::optional<int64_t> term = checked_product(std::span<const int64_t>(factors.begin(), factors.size()));
    std::optional<int64_t> sum = term && total_ ? checked_add(*total_, *term) : std::nullopt;
    total_ = sum;
    return *this;
  }
  std::optional<int64_t> total() const { return total_; }

 private:
  std::optional<int64_t> total_ = 0;
};

}  // namespace

int64_t gpt_parameter_count(const GPTConfig& c) {
  const int64_t C = c.n_embd, bias = c.bias ? 1 : 0;
  CheckedCount layer;
  layer.add({12, C, C}).add({2 + 11 * bias, C});  // weights; LayerNorm gains (+ biases)
  CheckedCount all;
  all.add({c.vocab_size, C}).add({c.n_positions, C}).add({1 + bias, C});
  if (layer.total()) all.add({c.n_layer, *layer.total()});
  TG_CHECK(layer.total() && all.total(),
           "GPTConfig: the parameter count of vocab_size {}, n_positions {}, n_embd {}, n_layer {} overflows int64",
           c.vocab_size, c.n_positions, c.n_embd, c.n_layer);
  return *all.total();
}

int64_t llama_parameter_count(const LlamaConfig& c) {
  const int64_t C = c.hidden_size, I = c.intermediate_size, H = c.num_attention_heads, Hkv = c.num_key_value_heads;
  const int64_t D = c.head_dim(), qkv_bias = c.attention_bias ? 1 : 0, o_bias = c.o_proj_bias() ? 1 : 0;
  const int64_t mlp_bias = c.mlp_bias ? 1 : 0;
  CheckedCount layer;
  layer.add({C, H, D}).add({2, C, Hkv, D}).add({C, C});           // q, k, v, o
  layer.add({qkv_bias, H, D}).add({qkv_bias, 2, Hkv, D}).add({o_bias, C});  // their biases
  layer.add({3, C, I}).add({2 * mlp_bias, I}).add({mlp_bias, C});  // gate, up, down (+ biases)
  layer.add({2, C});                                               // two RMSNorms
  CheckedCount all;
  all.add({c.tie_word_embeddings ? 1 : 2, c.vocab_size, C}).add({C});
  if (layer.total()) all.add({c.num_hidden_layers, *layer.total()});
  TG_CHECK(layer.total() && all.total(),
           "LlamaConfig: the parameter count of vocab_size {}, hidden_size {}, intermediate_size {}, "
           "num_hidden_layers {} overflows int64",
           c.vocab_size, C, I, c.num_hidden_layers);
  return *all.total();
}

int64_t encoder_parameter_count(const EncoderConfig& c) {
  const int64_t C = c.n_embd, F = c.ffn_width(), K = c.n_classes, bias = c.bias ? 1 : 0;
  CheckedCount layer;
  layer.add({4, C, C}).add({4 * bias, C});             // in_proj 3C·C, out_proj C·C (+ biases)
  layer.add({2, C, F}).add({bias, F}).add({bias, C});  // linear1, linear2 (+ biases)
  layer.add({2 + 2 * bias, C});                        // norm1, norm2
  CheckedCount all;
  all.add({c.vocab_size, C});
  if (c.pos == "learned") all.add({c.n_positions(), C});
  if (c.pooling == "cls") all.add({C});
  if (c.norm == "pre") all.add({1 + bias, C});
  all.add({C, K}).add({bias, K});
  if (layer.total()) all.add({c.n_layer, *layer.total()});
  TG_CHECK(layer.total() && all.total(),
           "EncoderConfig: the parameter count of vocab_size {}, max_len {}, n_embd {}, ffn_dim {}, n_layer {}, "
           "n_classes {} overflows int64",
           c.vocab_size, c.max_len, c.n_embd, F, c.n_layer, K);
  return *all.total();
}

}  // namespace tg::models
