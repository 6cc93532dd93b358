#pragma once
// MultiheadAttention: the one attention module of every model. As
// torch.nn.MultiheadAttention(batch_first=True) by default: inputs are [B, T, C], parameters
// carry PyTorch's names so state dicts interchange (in_proj_weight and in_proj_bias when
// kdim == vdim == embed_dim, else q_proj_weight, k_proj_weight, v_proj_weight; out_proj.weight,
// out_proj.bias), and the attention itself is any variant of tg::attention (dense by default).
// Beyond PyTorch: kv heads (grouped-query attention: H query heads share Hkv key/value heads),
// GPT-2's parameter layout (c_attn, c_proj as Conv1D) and Llama's (q_proj, k_proj, v_proj,
// o_proj) so Hugging Face checkpoints load as they are, rotary positions on queries and keys
// (Llama, Mistral, Qwen2), and cached decoding through a KVCache, the new queries placed after
// the cached keys by the attention op's query_offset.
// Differences from PyTorch: a query whose keys are all masked gets zeros (PyTorch gives NaN);
// the returned weights are taken before dropout and carry no gradient (they are for
// inspection); a floating attn_mask gets no gradient.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "autograd/random.h"
#include "nn/conv1d.h"
#include "nn/flex_pattern_cache.h"
#include "nn/kv_cache.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/options.h"
#include "ops/attention.h"
#include "ops/rope.h"

namespace tg::nn {

/// How the projections are stored and named.
enum class AttentionLayout {
  /// torch.nn.MultiheadAttention: in_proj_weight [(H + 2·Hkv)·D, C] (rows of q, then k, then v),
  /// in_proj_bias [(H + 2·Hkv)·D], out_proj (nn::Linear C -> C).
  pytorch,
  /// GPT-2 (Hugging Face's GPT2Attention): c_attn (Conv1D, weight [C, (H + 2·Hkv)·D], in × out),
  /// c_proj (Conv1D, weight [C, C]).
  gpt2,
  /// Llama, Mistral, Qwen2 (Hugging Face's LlamaAttention): q_proj (Linear C -> H·D), k_proj and
  /// v_proj (Linear C -> Hkv·D), o_proj (Linear C -> C).
  llama,
};

struct MultiheadAttentionOptions {
  MultiheadAttentionOptions(int64_t embed_dim, int64_t num_heads)
      : embed_dim_(embed_dim), num_heads_(num_heads) {}
  TG_ARG(int64_t, embed_dim, 0);  ///< C
  TG_ARG(int64_t, num_heads, 1);  ///< H; the head width is D = C / H
  /// Hkv, the key/value heads (grouped-query attention); 0 = num_heads. Must divide num_heads.
  TG_ARG(int64_t, kv_heads, 0);
  /// Dropout on the attention weights, in training mode only.
  TG_ARG(double, dropout, 0.0);
  TG_ARG(bool, bias, true);
  /// The output projection's bias when it differs from the input projections' (Qwen2: q, k, v
  /// with biases, o_proj without); unset: bias().
  TG_ARG(std::optional<bool>, out_bias, std::nullopt);
  /// Rotary position embedding of queries and keys (self-attention only): the frequencies of
  /// rope_theta and rope_scaling, positions from the cache's length or the call's position_ids.
  TG_ARG(bool, rope, false);
  TG_ARG(double, rope_theta, 10000.0);
  TG_ARG(RopeScaling, rope_scaling, RopeScaling{});
  TG_ARG(int64_t, kdim, 0);  ///< width of key inputs; 0 = embed_dim (pytorch layout only)
  TG_ARG(int64_t, vdim, 0);  ///< width of value inputs; 0 = embed_dim (pytorch layout only)
  /// The attention kernel, with its own settings: window (sliding_window), sparse (its block
  /// layout), feature_map (linear). See ops/attention.h.
  TG_ARG(AttentionVariant, variant, AttentionVariant::dense);
  TG_ARG(int64_t, window, 256);
  TG_ARG(SparseLayout, sparse, SparseLayout{});
  TG_ARG(std::string, feature_map, "elu");
  /// A flex pattern ("flex:sliding:256", "flex:alibi", ...; ops/flex_spec.h): self-attention then
  /// runs flex_attention with its block mask and score_mod (with causal and key lengths applied)
  /// instead of `variant`. Empty: none.
  TG_ARG(std::string, flex, "");
  /// A pattern written in C++ (FlexPattern::custom: a mask_mod and/or score_mod lambda), run as
  /// flex() runs a named one; flex() then names it ("flex:custom:NAME").
  TG_ARG(std::optional<FlexPattern>, flex_pattern, std::nullopt);
  /// Whether self-attention (forward(x) and forward(x, SelfAttentionOptions)) is causal.
  TG_ARG(bool, causal, false);
  TG_ARG(AttentionLayout, layout, AttentionLayout::pytorch);
  /// Draw the parameters at construction (reset_parameters()). false leaves them to the owner
  /// (a model drawing every parameter itself): the q/k/v projection zeros, the output
  /// projection as nn::Linear (pytorch) or nn::Conv1D (gpt2) constructs it.
  TG_ARG(bool, init_parameters, true);
  TG_ARG(DType, dtype, DType::f32);
};

/// What MultiheadAttention::forward returns (as PyTorch's (attn_output, attn_output_weights)).
struct MultiheadAttentionOutput {
  Tensor output;   ///< [B, T, C]
  Tensor weights;  ///< [B, T, S] averaged over heads, or [B, H, T, S]; undefined unless asked
};

/// The per-call inputs of self-attention beside x.
struct SelfAttentionOptions {
  /// Cached decoding: x's T positions follow the cache's length() cached ones; their keys and
  /// values are appended to it, and the queries attend to every cached key (causal when the
  /// module is). Inference only (under NoGradGuard). Null: no cache.
  KVCache* cache = nullptr;
  /// Keys s >= key_lengths[b] are padding (B entries), or empty.
  std::vector<int64_t> key_lengths;
  /// b8 [B, S], true = padding key; the alternative to key_lengths.
  Tensor key_padding_mask;
  /// Out: the attention weights [B, H, T, S] (dense only); or null.
  Tensor* weights = nullptr;
  /// Dropout's generator (default_generator() when null).
  Generator* generator = nullptr;
  /// Packed sequences: i64 [B, T], the document of each of x's tokens; a query sees only keys of
  /// its own document (intersected with the module's pattern and causal mask). The block mask is
  /// built once for a batch's ids and reused by every call with the same ids (every layer of a
  /// model whose modules share_flex_caches).
  /// Every variant but linear takes them: flex patterns directly, the others through the flex
  /// pattern computing what they compute (dense and flash: full, sliding_window: sliding,
  /// sparse: bigbird; flex_pattern_of_variant). Not with a cache. Undefined: one document.
  Tensor document_ids;
  /// Rotary positions of x's tokens, i64 [B, T] (packed documents restart at 0), for a module
  /// with rope; undefined: the cache's length + t.
  Tensor position_ids;
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
  /// GEMM to [B, T, (H + 2·Hkv)·D]; when key is value, keys and values share one.
  MultiheadAttentionOutput forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                   const Tensor& key_padding_mask = Tensor(),
                                   bool need_weights = true, const Tensor& attn_mask = Tensor(),
                                   bool average_attn_weights = true, bool is_causal = false);
  /// Self-attention x [B, T, C] -> [B, T, C] (causal when options.causal()), no weights.
  Tensor forward(const Tensor& x) override;
  /// Self-attention x [B, T, C] -> [B, T, C] (causal when options.causal()): one fused
  /// projection read in place by the kernel; with call.cache, cached decoding (see
  /// SelfAttentionOptions).
  Tensor forward(const Tensor& x, const SelfAttentionOptions& call);
  /// An empty cache for this module: keys and values [batch, capacity, Hkv, D].
  KVCache make_cache(int64_t batch, int64_t capacity) const;
  /// Uses `other`'s flex pattern caches, so that a block mask one of them builds for a call's
  /// sizes and documents serves both (a model's layers: a batch's document mask is built once).
  /// Both must run the same pattern.
  void share_flex_caches(const MultiheadAttention& other);
  /// Takes the attention kernel of `other` (variant, window, sparse layout, dropout); the
  /// parameters stay as they are.
  void set_kernel(const MultiheadAttentionOptions& other);
  /// Re-draws the parameters. pytorch: as PyTorch does, xavier_uniform_ on the input
  /// projections, zeros for in_proj_bias and out_proj.bias, out_proj.weight as nn::Linear.
  /// gpt2: as nn::Conv1D, N(0, 0.02) weights and zero biases.
  void reset_parameters();

  MultiheadAttentionOptions options;
  int64_t head_dim = 0;   ///< D = C / H
  int64_t kv_heads = 0;   ///< Hkv
  Tensor in_proj_weight;  ///< pytorch: [(H + 2·Hkv)·D, C] when kdim == vdim == C, else undefined
  Tensor q_proj_weight;   ///< pytorch: [C, C] when kdim or vdim differ from C, else undefined
  Tensor k_proj_weight;   ///< pytorch: [Hkv·D, kdim], likewise
  Tensor v_proj_weight;   ///< pytorch: [Hkv·D, vdim], likewise
  Tensor in_proj_bias;    ///< pytorch: [(H + 2·Hkv)·D] (q, k, v biases), undefined without bias
  std::shared_ptr<Linear> out_proj;  ///< pytorch: C -> C; llama: o_proj
  std::shared_ptr<Conv1D> c_attn;    ///< gpt2: weight [C, (H + 2·Hkv)·D]
  std::shared_ptr<Conv1D> c_proj;    ///< gpt2: weight [C, C]
  std::shared_ptr<Linear> q_proj;    ///< llama: C -> H·D
  std::shared_ptr<Linear> k_proj;    ///< llama: C -> Hkv·D
  std::shared_ptr<Linear> v_proj;    ///< llama: C -> Hkv·D

 protected:
  std::string extra_repr() const override;

 private:
  bool fused() const { return in_proj_weight.defined() || c_attn || q_proj; }
  /// The parameters' dtype.
  DType param_dtype() const;
  /// llama: q_proj, k_proj, v_proj's weights [(H + 2·Hkv)·D, C] and biases (or undefined) as one
  /// projection (concatenated at each call; the gradient flows back to each).
  Tensor llama_qkv_weight() const;
  Tensor llama_qkv_bias() const;
  /// llama, without autograd (evaluation, generation): the concatenation kept between calls and
  /// made again only when one of the weights or biases changed (their storage or version).
  mutable Tensor fused_weight_, fused_bias_;
  mutable std::vector<std::pair<const void*, uint64_t>> fused_from_;
  /// x [B, n, C] -> the fused projection [B, n, (H + 2·Hkv)·D].
  Tensor project_qkv(const Tensor& x) const;
  /// x [B, n, width] -> features [first, first + count) of the projection [B, n, count].
  Tensor project_part(const Tensor& x, int64_t first, int64_t count, const Tensor& separate) const;
  /// y [B, T, C] -> out_proj or c_proj.
  Tensor project_out(const Tensor& y) const;
  /// The kernel's settings: variant, window, sparse layout, feature map.
  AttentionSpec kernel_spec() const;
  /// options.flex() built for the sizes of a call; null without a pattern.
  std::shared_ptr<FlexPatternCache> flex_;
  /// Without a flex pattern: the variant's pattern as flex, for calls with document_ids (set at
  /// each such call, from the variant then in the options).
  std::shared_ptr<FlexPatternCache> variant_as_flex_ = std::make_shared<FlexPatternCache>();
  /// Self-attention through flex_attention with `pattern`: qkv [B, T, H + 2·Hkv, D] (the new
  /// positions), the keys and values from the cache when given -> [B, T, H, D].
  Tensor flex_self_attention(FlexPatternCache& pattern, const Tensor& qkv, KVCache* cache,
                             const SelfAttentionOptions& call);
  /// The spec for one call: variant settings, dropout when training, masks converted.
  AttentionSpec make_spec(int64_t B, int64_t T, int64_t S, const Tensor& key_padding_mask,
                          const Tensor& attn_mask, bool is_causal) const;
};

}  // namespace tg::nn
