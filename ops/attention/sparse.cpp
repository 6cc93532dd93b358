// Block-sparse attention in BigBird's layout: the layout is checked and built here. f32 problems
// the register-blocked flash tiles take, with blocks of whole tiles (64, the default), run as
// flash attention over the layout's tiles (saving the lse, weights recomputed in backward);
// the rest as block-sparse attention over its blocks (consecutive blocks merged into one GEMM,
// the weights saved). Recorded as "attention_sparse" either way.
#include <algorithm>
#include <memory>

#include "autograd/error.h"
#include "ops/attention/block_sparse.h"
#include "ops/kernels/attention_flash_tiled.h"
#include "ops/kernels/sparse_layout.h"

namespace tg {
namespace {

void check_layout(const SparseLayout& l, const char* who) {
  TG_CHECK(l.block_size >= 1, "{}: sparse layout needs block_size >= 1, got {}", who, l.block_size);
  TG_CHECK(l.window_blocks >= 1 && l.window_blocks % 2 == 1,
           "{}: sparse layout needs an odd window_blocks >= 1 (blocks centred on the query's "
           "block), got {}",
           who, l.window_blocks);
  TG_CHECK(l.global_blocks >= 0, "{}: sparse layout needs global_blocks >= 0, got {}", who,
           l.global_blocks);
  TG_CHECK(l.random_blocks >= 0, "{}: sparse layout needs random_blocks >= 0, got {}", who,
           l.random_blocks);
}

kernels::BlockLayout build(const SparseLayout& l, int64_t T, int64_t S, bool causal) {
  return kernels::bigbird_layout(T, S, l.block_size, l.window_blocks, l.global_blocks,
                                 l.random_blocks, l.seed, causal);
}

}  // namespace

Tensor sparse_layout_mask(const SparseLayout& layout, int64_t T, int64_t S, bool causal) {
  check_layout(layout, "sparse_layout_mask");
  TG_CHECK(T >= 0 && S >= 0, "sparse_layout_mask: T and S must be >= 0, got T={}, S={}", T, S);
  kernels::BlockLayout l = build(layout, T, S, causal);
  Tensor mask = zeros({T, S}, DType::b8);
  bool* m = mask.data<bool>();
  const int64_t b = l.block;
  for (int64_t i = 0; i < l.rows; ++i)
    for (int64_t e = l.row_start[size_t(i)]; e < l.row_start[size_t(i) + 1]; ++e) {
      int64_t j = l.blocks[size_t(e)];
      for (int64_t t = i * b; t < std::min(T, (i + 1) * b); ++t)
        for (int64_t s = j * b; s < std::min(S, (j + 1) * b); ++s) m[t * S + s] = true;
    }
  return mask;
}

int64_t sparse_layout_visible_pairs(const SparseLayout& layout, int64_t T, int64_t S, bool causal,
                                    int64_t first_row) {
  check_layout(layout, "sparse_layout_visible_pairs");
  TG_CHECK(T >= 0 && S >= 0 && first_row >= 0, "sparse_layout_visible_pairs: T, S and first_row must be >= 0, got "
           "T={}, S={}, first_row={}", T, S, first_row);
  const kernels::BlockLayout l = build(layout, T, S, causal);
  const int64_t b = l.block;
  int64_t n = 0;
  for (int64_t i = 0; i < l.rows; ++i)
    for (int64_t e = l.row_start[size_t(i)]; e < l.row_start[size_t(i) + 1]; ++e) {
      const int64_t s0 = l.blocks[size_t(e)] * b, width = std::min(S, s0 + b) - s0;
      for (int64_t t = std::max(i * b, first_row); t < std::min(T, (i + 1) * b); ++t)
        n += causal ? std::clamp<int64_t>(t - s0 + 1, 0, width) : width;
    }
  return n;
}

namespace detail {

Tensor sparse_attention(const AttentionProblem& p) {
  const SparseLayout& layout = p.spec->sparse;
  check_layout(layout, "attention");
  const char* name = p.packed ? "attention_sparse_qkv" : "attention_sparse";
  const kernels::BlockLayout blocks = build(layout, p.dims.T, p.dims.S, p.causal);
  if (flash_band_applies(p) && layout.block_size % kernels::kTiledRows == 0 &&
      layout.block_size % kernels::kTiledCols == 0)
    return flash_band_attention(name, p, kernels::kNoBand,
                                std::make_shared<const kernels::LayoutBlockMask>(kernels::layout_block_mask(blocks)));
  if (p.dims.kv_heads() != p.dims.H) return attention_repeating_kv_heads(p);  // tiles above: in place
  auto ranges = std::make_shared<const kernels::KeyRanges>(kernels::key_ranges_of(blocks, p.dims.T, p.dims.S));
  return block_sparse_attention(name, p, std::move(ranges), kernels::kNoBand);
}

}  // namespace detail
}  // namespace tg
