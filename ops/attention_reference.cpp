#include "ops/attention_reference.h"

#include <algorithm>
#include <cstdlib>

#include "autograd/error.h"
#include "ops/binary.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "ops/select.h"
#include "ops/shape_ops.h"
#include "ops/unary.h"

namespace tg {

Tensor attention_pattern(const AttentionSpec& spec, int64_t T, int64_t S) {
  const int64_t offset = spec.query_offset;  // query t sits at key position offset + t
  if (spec.variant == AttentionVariant::sparse) {
    // The layout's rows offset.. of a layout over offset + T query positions.
    Tensor m = narrow(sparse_layout_mask(spec.sparse, offset + T, S, spec.causal), 0, offset, T).clone();
    if (!spec.causal) return m;
    bool* p = m.data<bool>();
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = offset + t + 1; s < S; ++s) p[t * S + s] = false;
    return m;
  }
  Tensor m = empty({T, S}, DType::b8);
  bool* p = m.data<bool>();
  for (int64_t i = 0; i < T; ++i)
    for (int64_t s = 0; s < S; ++s) {
      const int64_t t = offset + i;
      bool visible = !spec.causal || s <= t;
      if (spec.variant == AttentionVariant::sliding_window)
        visible = visible && (spec.causal ? t - s < spec.window : std::abs(t - s) <= spec.window);
      p[i * S + s] = visible;
    }
  return m;
}

int64_t attention_visible_pairs(const AttentionSpec& spec, int64_t T, int64_t S) {
  TG_CHECK(T >= 0 && S >= 0, "attention_visible_pairs: T and S must be >= 0, got T={}, S={}", T, S);
  const int64_t offset = spec.query_offset;
  if (spec.variant == AttentionVariant::sparse)
    return sparse_layout_visible_pairs(spec.sparse, offset + T, S, spec.causal, offset);
  // As attention_pattern: the window clamped (as the kernels clamp it) so that t ± w cannot overflow.
  const int64_t w = std::min<int64_t>(spec.window, int64_t(1) << 60);
  int64_t n = 0;
  for (int64_t i = 0; i < T; ++i) {
    const int64_t t = offset + i;
    int64_t lo = 0, end = S;  // keys [lo, end)
    if (spec.causal) end = std::min(end, t + 1);
    if (spec.variant == AttentionVariant::sliding_window) {
      lo = std::max(lo, spec.causal ? t - w + 1 : t - w);
      if (!spec.causal) end = std::min(end, t + w + 1);
    }
    n += std::max<int64_t>(0, end - lo);
  }
  return n;
}

Tensor attention_reference(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionSpec& spec) {
  TG_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4, "attention_reference: q, k, v must be [B, T, H, D]");
  TG_CHECK(spec.dropout_p == 0.0, "attention_reference: dropout is not part of the reference");
  int64_t T = q.size(1), S = k.size(1);
  Tensor pattern = attention_pattern(spec, T, S);
  if (spec.variant != AttentionVariant::linear) {
    AttentionSpec dense = spec;
    dense.variant = AttentionVariant::dense;
    dense.causal = false;  // in the pattern
    dense.query_offset = 0;
    dense.attn_mask = pattern;
    return attention(q, k, v, dense);
  }
  TG_CHECK(spec.feature_map == "elu", "attention_reference: linear's reference covers the elu feature map only");
  auto phi = [](const Tensor& x) { return relu(x) + exp(clamp(x, std::nullopt, 0.0)); };  // elu(x) + 1
  const int64_t group = q.size(2) / k.size(2);
  Tensor qf = permute(phi(q), {0, 2, 1, 3});                           // [B, H, T, D]
  Tensor kf = permute(phi(repeat_kv_heads(k, group)), {0, 2, 1, 3});   // [B, H, S, D]
  Tensor a = matmul(qf, transpose(kf, -1, -2));                                      // [B, H, T, S]
  Tensor hidden = empty({1, 1, T, S}, DType::b8);  // the pattern's complement
  for (int64_t i = 0; i < T * S; ++i) hidden.data<bool>()[i] = !pattern.data<bool>()[i];
  if (spec.key_padding_mask.defined() || !spec.key_lengths.empty()) {
    Tensor pad = empty({q.size(0), S}, DType::b8);
    for (int64_t b = 0; b < q.size(0); ++b)
      for (int64_t s = 0; s < S; ++s)
        pad.data<bool>()[b * S + s] = spec.key_padding_mask.defined() ? spec.key_padding_mask.at({b, s}) != 0
                                                                       : s >= spec.key_lengths[size_t(b)];
    a = masked_fill(a, reshape(pad, {q.size(0), 1, 1, S}), 0.0);
  }
  a = masked_fill(a, hidden, 0.0);
  // A row that sees no key has a zero numerator: the clamp makes it 0, not 0/0.
  Tensor den = clamp(sum(a, {-1}, true), 1e-30, std::nullopt);
  Tensor out = matmul(a, permute(repeat_kv_heads(v, group), {0, 2, 1, 3})) / den;
  return permute(out, {0, 2, 1, 3});
}

}  // namespace tg
