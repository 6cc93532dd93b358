#pragma once
// MultiheadAttention as torch.nn.MultiheadAttention(batch_first=True): inputs are [B, T, C],
// parameters carry PyTorch's names so state dicts interchange (in_proj_weight [3C, C] and
// in_proj_bias [3C] when kdim == vdim == embed_dim, else q_proj_weight, k_proj_weight,
// v_proj_weight; out_proj.weight, out_proj.bias), and the attention itself is any variant of
// tg::attention (dense by default). Differences from PyTorch: a query whose keys are all masked
// gets zeros (PyTorch gives NaN); the returned weights are taken before dropout and carry no
// gradient (they are for inspection); a floating attn_mask gets no gradient.
#include <memory>
#include <string>

#include "nn/linear.h"
#include "nn/module.h"
#include "nn/options.h"
#include "ops/attention.h"

namespace tg::nn {

struct MultiheadAttentionOptions {
  MultiheadAttentionOptions(int64_t embed_dim, int64_t num_heads)
      : embed_dim_(embed_dim), num_heads_(num_heads) {}
  TG_ARG(int64_t, embed_dim, 0);  ///< C
  TG_ARG(int64_t, num_heads, 1);  ///< H; the head width is D = C / H
  /// Dropout on the attention weights, in training mode only.
  TG_ARG(double, dropout, 0.0);
  TG_ARG(bool, bias, true);
  TG_ARG(int64_t, kdim, 0);  ///< width of key inputs; 0 = embed_dim
  TG_ARG(int64_t, vdim, 0);  ///< width of value inputs; 0 = embed_dim
  /// The attention kernel, with its own settings: window (sliding_window), sparse (its block
  /// layout), feature_map (linear). See ops/attention.h.
  TG_ARG(AttentionVariant, variant, AttentionVariant::dense);
  TG_ARG(int64_t, window, 256);
  TG_ARG(SparseLayout, sparse, SparseLayout{});
  TG_ARG(std::string, feature_map, "elu");
  /// Whether the one-input forward(x) (self-attention, as in nn::Sequential) is causal.
  TG_ARG(bool, causal, false);
  TG_ARG(DType, dtype, DType::f32);
};

/// What MultiheadAttention::forward returns (as PyTorch's (attn_output, attn_output_weights)).
struct MultiheadAttentionOutput {
  Tensor output;   ///< [B, T, C]
  Tensor weights;  ///< [B, T, S] averaged over heads, or [B, H, T, S]; undefined unless asked
};

class MultiheadAttention : public Module {
 public:
  explicit MultiheadAttention(const MultiheadAttentionOptions& options);

  /// query [B, T, C], key [B, S, kdim], value [B, S, vdim] -> output [B, T, C], as PyTorch:
  ///   key_padding_mask  [B, S]: b8 (true = ignore this key) or floating (added to the scores)
  ///   need_weights      return the attention weights (dense variant only)
  ///   attn_mask         [T, S] or [B * H, T, S]: b8 (true = NOT allowed, as PyTorch) or
  ///                     floating (added to the scores)
  ///   average_attn_weights  weights averaged over heads [B, T, S], else [B, H, T, S]
  ///   is_causal         query t sees keys s <= t (combined with any attn_mask)
  /// When query, key and value are the same tensor (self-attention) the fused projection is one
  /// linear to [B, T, 3C]; when key is value, keys and values share one linear to [B, S, 2C].
  MultiheadAttentionOutput forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                   const Tensor& key_padding_mask = Tensor(),
                                   bool need_weights = true, const Tensor& attn_mask = Tensor(),
                                   bool average_attn_weights = true, bool is_causal = false);
  /// Self-attention x [B, T, C] -> [B, T, C] (causal when options.causal()), no weights.
  Tensor forward(const Tensor& x) override;
  /// Re-draws the parameters as PyTorch does: xavier_uniform_ on the input projections, zeros
  /// for in_proj_bias and out_proj.bias, out_proj.weight as nn::Linear.
  void reset_parameters();

  MultiheadAttentionOptions options;
  int64_t head_dim = 0;   ///< D = C / H
  Tensor in_proj_weight;  ///< [3C, C] when kdim == vdim == C, else undefined
  Tensor q_proj_weight;   ///< [C, C] when kdim or vdim differ from C, else undefined
  Tensor k_proj_weight;   ///< [C, kdim], likewise
  Tensor v_proj_weight;   ///< [C, vdim], likewise
  Tensor in_proj_bias;    ///< [3C] (q, k, v biases), undefined without bias
  std::shared_ptr<Linear> out_proj;

 protected:
  std::string extra_repr() const override;

 private:
  bool fused() const { return in_proj_weight.defined(); }
  /// The spec for one call: variant settings, dropout when training, masks converted.
  AttentionSpec make_spec(int64_t B, int64_t T, int64_t S, const Tensor& key_padding_mask,
                          const Tensor& attn_mask, bool is_causal) const;
};

}  // namespace tg::nn
