#pragma once
// What flex_attention must compute, composed of plain differentiable ops (matmul, softmax,
// masked_fill, index_select): the mask materialised as a [B, H, T, S] tensor, the score_mod as
// tensor ops on the [B, H, T, S] scores. Shared by the flex tests.
#include <algorithm>
#include <functional>
#include <memory>

#include "ops/attention.h"
#include "ops/flex_attention.h"
#include "ops/flex_patterns.h"
#include "test_util.h"

namespace tg::testing {

/// The mask_mod evaluated on every (b, h, t, s): hidden b8 [B, H, T, S] (true = masked) and
/// none b8 [B, H, T, 1] (true = the row sees no key). An undefined mask hides nothing.
struct DenseMask {
  Tensor hidden, none;
};

inline DenseMask materialise(const MaskMod& mask, int64_t B, int64_t H, int64_t T, int64_t S, int64_t q_offset = 0) {
  DenseMask m;
  m.hidden = zeros({B, H, T, S}, DType::b8);
  m.none = zeros({B, H, T, 1}, DType::b8);
  bool* hp = m.hidden.data<bool>();
  bool* np = m.none.data<bool>();
  std::unique_ptr<bool[]> row(new bool[size_t(S)]);
  std::fill_n(row.get(), S, true);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        if (mask.defined()) mask.row(b, h, q_offset + t, 0, S, row.get());
        bool any = false;
        for (int64_t s = 0; s < S; ++s) {
          hp[((b * H + h) * T + t) * S + s] = !row[size_t(s)];
          any = any || row[size_t(s)];
        }
        np[(b * H + h) * T + t] = !any;
      }
  return m;
}

/// Scores [B, H, T, S] -> scores' (the score_mod as tensor ops), or null for none.
using ScoreFn = std::function<Tensor(const Tensor& scores)>;

/// Dense attention with the materialised mask: q [B, T, H, D], k [B, S, Hkv, D],
/// v [B, S, Hkv, Dv] -> [B, T, H, Dv]; kv head h / (H / Hkv) for query head h.
inline Tensor flex_reference(const Tensor& q, const Tensor& k, const Tensor& v, const DenseMask& mask,
                             const ScoreFn& score_fn, double scale) {
  const int64_t H = q.size(2), Hkv = k.size(2);
  Tensor qp = permute(q, {0, 2, 1, 3}), kp = permute(k, {0, 2, 1, 3}), vp = permute(v, {0, 2, 1, 3});
  if (Hkv != H) {
    std::vector<double> idx;
    for (int64_t h = 0; h < H; ++h) idx.push_back(double(h / (H / Hkv)));
    Tensor index = tensor(idx, {H}, DType::i64);
    kp = index_select(kp, 1, index);
    vp = index_select(vp, 1, index);
  }
  Tensor s = matmul(qp, transpose(kp, -1, -2)) * scale;  // [B, H, T, S]
  if (score_fn) s = score_fn(s);
  s = masked_fill(s, mask.hidden, -1e30);
  Tensor w = masked_fill(softmax(s, -1), mask.none, 0.0);  // a row that sees nothing: zeros
  return permute(matmul(w, vp), {0, 2, 1, 3});
}

/// k - (q_offset + t) as [1, 1, T, S] of dtype dt.
inline Tensor relative_positions(int64_t T, int64_t S, int64_t q_offset, DType dt) {
  std::vector<double> d;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s < S; ++s) d.push_back(double(s - (q_offset + t)));
  return tensor(d, {1, 1, T, S}, dt);
}

/// ALiBi as tensor ops: scores + slopes[h] · (k - q).
inline ScoreFn alibi_reference(const Tensor& slopes, int64_t T, int64_t S, int64_t q_offset) {
  return [=](const Tensor& s) {
    return s + reshape(slopes, {1, slopes.size(0), 1, 1}) * relative_positions(T, S, q_offset, s.dtype());
  };
}

inline ScoreFn softcap_reference(double cap) {
  return [cap](const Tensor& s) { return tanh(s / cap) * cap; };
}

/// T5's bias as tensor ops: scores + table[h, bucket(k - q)].
inline ScoreFn relative_bias_reference(const Tensor& table, int64_t T, int64_t S, int64_t q_offset,
                                       bool bidirectional, int64_t max_distance) {
  return [=](const Tensor& s) {
    std::vector<double> buckets;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t k = 0; k < S; ++k)
        buckets.push_back(double(t5_relative_bucket(k - (q_offset + t), bidirectional, table.size(1), max_distance)));
    Tensor bias = index_select(table, 1, tensor(buckets, {T * S}, DType::i64));  // [H, T*S]
    return s + reshape(bias, {1, table.size(0), T, S});
  };
}

}  // namespace tg::testing
