#include "ops/kernels/sparse_layout.h"

#include <algorithm>

#include "ops/kernels/philox.h"

namespace tg::kernels {

BlockLayout bigbird_layout(int64_t T, int64_t S, int64_t block, int64_t window_blocks,
                           int64_t global_blocks, int64_t random_blocks, uint64_t seed,
                           bool causal) {
  BlockLayout l;
  l.block = block;
  l.rows = (T + block - 1) / block;
  l.cols = (S + block - 1) / block;
  l.row_start.assign(1, 0);
  std::vector<char> chosen(static_cast<size_t>(l.cols));
  std::vector<int64_t> candidates;
  for (int64_t i = 0; i < l.rows; ++i) {
    // Blocks this row may use at all: causal rows see no block past their own.
    int64_t last = causal ? std::min(i, l.cols - 1) : l.cols - 1;
    std::fill(chosen.begin(), chosen.end(), 0);
    auto choose = [&](int64_t from, int64_t to) {  // blocks [from, to] within [0, last]
      for (int64_t j = std::max<int64_t>(from, 0); j <= std::min(to, last); ++j)
        chosen[size_t(j)] = 1;
    };
    if (i < global_blocks) {
      choose(0, last);
    } else {
      int64_t half = (window_blocks - 1) / 2;
      if (causal)
        choose(i - window_blocks + 1, i);
      else
        choose(i - half, i + half);
      choose(0, global_blocks - 1);
      // Random blocks: a partial Fisher-Yates shuffle of the blocks not yet chosen, drawing
      // from Philox keyed by (seed, i) so the layout depends on nothing else.
      candidates.clear();
      for (int64_t j = 0; j <= last; ++j)
        if (!chosen[size_t(j)]) candidates.push_back(j);
      int64_t n = static_cast<int64_t>(candidates.size());
      int64_t draws = std::min(random_blocks, n);
      for (int64_t r = 0; r < draws; ++r) {
        double u =
            philox_uniform<double>(seed, static_cast<uint64_t>(i) << 24, static_cast<uint64_t>(r));
        int64_t pick = r + std::min(static_cast<int64_t>(u * double(n - r)), n - r - 1);
        std::swap(candidates[size_t(r)], candidates[size_t(pick)]);
        chosen[size_t(candidates[size_t(r)])] = 1;
      }
    }
    for (int64_t j = 0; j < l.cols; ++j)
      if (chosen[size_t(j)]) l.blocks.push_back(j);
    l.row_start.push_back(static_cast<int64_t>(l.blocks.size()));
  }
  return l;
}

void KeyRanges::add_range(int64_t l, int64_t h) {
  l = std::max<int64_t>(l, 0);
  h = std::min(h, S);
  if (h <= l) return;
  int64_t first = row_start.back();
  if (int64_t(hi.size()) > first && hi.back() == l) {
    hi.back() = h;
  } else {
    lo.push_back(l);
    hi.push_back(h);
  }
}

void KeyRanges::end_row() {
  int64_t i = rows();
  int64_t w = 0;
  for (size_t r = size_t(row_start.back()); r < lo.size(); ++r) w += hi[r] - lo[r];
  width.push_back(w);
  offset.push_back(offset.back() + row_size(i) * w);
  row_start.push_back(static_cast<int64_t>(lo.size()));
}

KeyRanges begin_key_ranges(int64_t T, int64_t S, int64_t block) {
  KeyRanges r;
  r.T = T, r.S = S, r.block = block;
  r.row_start.assign(1, 0);
  r.offset.assign(1, 0);
  return r;
}

KeyRanges key_ranges_of(const BlockLayout& layout, int64_t T, int64_t S) {
  KeyRanges r = begin_key_ranges(T, S, layout.block);
  for (int64_t i = 0; i < layout.rows; ++i) {
    for (int64_t e = layout.row_start[size_t(i)]; e < layout.row_start[size_t(i) + 1]; ++e) {
      int64_t j = layout.blocks[size_t(e)];
      r.add_range(j * layout.block, (j + 1) * layout.block);
    }
    r.end_row();
  }
  return r;
}

FlexBlocks LayoutBlockMask::view() const {
  FlexBlocks v;
  v.bq = v.bk = block;
  v.nq = rows, v.nk = cols;
  v.kind = kind.data();
  v.kv_start = kv_start.data(), v.kv_index = kv_index.data();
  v.q_start = q_start.data(), v.q_index = q_index.data();
  return v;
}

LayoutBlockMask layout_block_mask(const BlockLayout& layout) {
  LayoutBlockMask m;
  m.block = layout.block, m.rows = layout.rows, m.cols = layout.cols;
  m.kind.assign(size_t(m.rows * m.cols), kBlockEmpty);
  m.kv_start.assign(1, 0);
  for (int64_t i = 0; i < m.rows; ++i) {
    for (int64_t e = layout.row_start[size_t(i)]; e < layout.row_start[size_t(i) + 1]; ++e) {
      const int64_t j = layout.blocks[size_t(e)];
      m.kind[size_t(i * m.cols + j)] = kBlockFull;
      m.kv_index.push_back(int32_t(j));
    }
    m.kv_start.push_back(int64_t(m.kv_index.size()));
  }
  m.q_start.assign(1, 0);
  for (int64_t j = 0; j < m.cols; ++j) {  // the transpose: block-rows in increasing order
    for (int64_t i = 0; i < m.rows; ++i)
      if (m.kind[size_t(i * m.cols + j)] == kBlockFull) m.q_index.push_back(int32_t(i));
    m.q_start.push_back(int64_t(m.q_index.size()));
  }
  return m;
}

}  // namespace tg::kernels
