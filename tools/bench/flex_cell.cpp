#include "tools/bench/flex_cell.h"

#include <cmath>
#include <limits>
#include <memory>

#include "tapegrad.h"
#include "ops/flex_attention.h"

namespace tg::bench {

FlexCell make_flex_cell(const std::string& name, int64_t H, int64_t T, bool causal) {
  FlexCell cell;
  cell.problem = build_flex_problem(parse_flex_pattern(name), H, T, T, causal);
  const BlockMask& bm = cell.problem.block_mask;
  if (!bm.defined()) {
    cell.visible_pairs = T * T;
    return cell;
  }
  std::unique_ptr<bool[]> row(new bool[size_t(T)]);
  for (int64_t t = 0; t < T; ++t) {
    bm.mask_mod().row(0, 0, t, 0, T, row.get());
    for (int64_t s = 0; s < T; ++s) cell.visible_pairs += row[size_t(s)];
  }
  const double blocks = double(bm.q_blocks()) * double(bm.kv_blocks());
  cell.blocks_run = double(bm.count(BlockKind::full) + bm.count(BlockKind::partial)) / blocks;
  return cell;
}

Tensor run_flex_cell(const FlexCell& cell, const Tensor& q, const Tensor& k, const Tensor& v) {
  return flex_attention(q, k, v, cell.problem.score_mod, cell.problem.block_mask);
}

Tensor flex_cell_reference(const FlexCell& cell, const Tensor& q, const Tensor& k, const Tensor& v) {
  NoGradGuard no_grad;
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), D = q.size(3);
  Tensor qp = permute(q, {0, 2, 1, 3}), kp = permute(k, {0, 2, 1, 3}), vp = permute(v, {0, 2, 1, 3});
  Tensor scores = matmul(qp, transpose(kp, -1, -2)) * (1.0 / std::sqrt(double(D)));  // [B, H, T, T]
  float* s = scores.data<float>();
  const ScoreMod& mod = cell.problem.score_mod;
  std::vector<const float*> captured;
  for (const Tensor& c : mod.captured) captured.push_back(c.data<float>());
  const BlockMask& bm = cell.problem.block_mask;
  std::unique_ptr<bool[]> row(new bool[size_t(T)]);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        float* r = s + ((b * H + h) * T + t) * T;
        if (mod.defined()) mod.f32.apply(mod.f32.fn, captured.data(), r, b, h, t, 0, T);
        if (!bm.defined()) continue;
        bm.mask_mod().row(b, h, t, 0, T, row.get());
        for (int64_t c = 0; c < T; ++c)
          if (!row[size_t(c)]) r[c] = -std::numeric_limits<float>::infinity();
      }
  // softmax over rows; a row of -inf only: zeros.
  for (int64_t i = 0; i < B * H * T; ++i) {
    float* r = s + i * T;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t c = 0; c < T; ++c) m = std::max(m, r[c]);
    double sum = 0;
    for (int64_t c = 0; c < T; ++c) sum += (r[c] = std::isinf(m) ? 0.f : std::exp(r[c] - m));
    for (int64_t c = 0; c < T; ++c) r[c] = sum > 0 ? float(r[c] / sum) : 0.f;
  }
  return permute(matmul(scores, vp), {0, 2, 1, 3});
}

}  // namespace tg::bench
