// sparse (BigBird) attention: the layout itself (window, global, random blocks; causal; seeds;
// partial blocks), a plain-loop reference, agreement with dense (no mask when every block is
// active, else the layout as a bool attn_mask) for output and gradients, key padding, T != S,
// dropout, f64; thread-count independence; saved weights proportional to the active blocks;
// errors.
#include <array>
#include <set>

#include "attention_agreement.h"

namespace tg {
namespace {

using testing::AttentionRun;
using testing::expect_runs_close;
using testing::run_attention;
using testing::uniform;

struct Inputs {
  Tensor q, k, v, dout;
};

Inputs make_inputs(int64_t B, int64_t T, int64_t S, int64_t H, int64_t D, uint64_t seed,
                   DType dt = DType::f32) {
  return {uniform({B, T, H, D}, seed, -2, 2, dt), uniform({B, S, H, D}, seed + 1, -2, 2, dt),
          uniform({B, S, H, D}, seed + 2, -1, 1, dt), uniform({B, T, H, D}, seed + 3, -1, 1, dt)};
}

AttentionSpec sparse(SparseLayout layout, bool causal) {
  AttentionSpec spec;
  spec.variant = AttentionVariant::sparse;
  spec.sparse = layout;
  spec.causal = causal;
  return spec;
}

SparseLayout layout(int64_t block, int64_t window, int64_t global, int64_t random,
                    uint64_t seed = 0) {
  return {block, window, global, random, seed};
}

// The blocks of a [T, S] element mask: set of (i, j) with any true element; and a check that
// every block is all true or all false.
std::set<std::pair<int64_t, int64_t>> mask_blocks(const Tensor& m, int64_t b) {
  int64_t T = m.size(0), S = m.size(1);
  std::set<std::pair<int64_t, int64_t>> on;
  const bool* p = m.data<bool>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s < S; ++s) {
      bool first = p[(t / b * b) * S + s / b * b];
      EXPECT_EQ(p[t * S + s], first) << "block (" << t / b << ", " << s / b << ") is not uniform";
      if (p[t * S + s]) on.insert({t / b, s / b});
    }
  return on;
}

// The dense spec computing what a sparse spec computes: its layout as a bool attn_mask.
AttentionSpec dense_with_layout(const AttentionSpec& spec, int64_t T, int64_t S) {
  AttentionSpec d = spec;
  d.variant = AttentionVariant::dense;
  d.attn_mask = sparse_layout_mask(spec.sparse, T, S, spec.causal);
  return d;
}

void expect_matches_dense(const Inputs& in, const AttentionSpec& spec) {
  int64_t T = in.q.size(1), S = in.k.size(1);
  expect_runs_close(run_attention(in.q, in.k, in.v, spec, in.dout),
                    run_attention(in.q, in.k, in.v, dense_with_layout(spec, T, S), in.dout));
}

TEST(SparseLayoutMask, BigBirdBlocks) {
  // 10 block-rows of 4 (T = S = 38: the last block partial), window 3, global 2, random 2.
  int64_t b = 4, T = 38, nb = 10;
  for (bool causal : {false, true}) {
    SCOPED_TRACE(::testing::Message() << "causal " << causal);
    Tensor m = sparse_layout_mask(layout(b, 3, 2, 2, 5), T, T, causal);
    ASSERT_EQ(m.shape(), Shape({T, T}));
    ASSERT_EQ(m.dtype(), DType::b8);
    auto on = mask_blocks(m, b);
    for (int64_t i = 0; i < nb; ++i) {
      int64_t last = causal ? i : nb - 1;
      std::set<int64_t> row;
      for (auto [bi, bj] : on)
        if (bi == i) row.insert(bj);
      EXPECT_LE(*row.rbegin(), last) << "row " << i << " sees a block past its own";
      if (i < 2) {  // global rows see every allowed block
        EXPECT_EQ(int64_t(row.size()), last + 1) << "global row " << i;
        continue;
      }
      std::set<int64_t> fixed;  // window and global blocks
      for (int64_t j = causal ? i - 2 : i - 1; j <= (causal ? i : i + 1); ++j)
        if (j >= 0 && j <= last) fixed.insert(j);
      fixed.insert(0), fixed.insert(1);
      for (int64_t j : fixed) EXPECT_TRUE(row.count(j)) << "row " << i << " misses block " << j;
      int64_t others = 0;
      for (int64_t j = 0; j <= last; ++j) others += fixed.count(j) ? 0 : 1;
      EXPECT_EQ(int64_t(row.size() - fixed.size()), std::min<int64_t>(2, others))
          << "random blocks of row " << i;
    }
  }
}

TEST(SparseLayoutMask, SeedsAndShapes) {
  int64_t T = 256;
  Tensor a = sparse_layout_mask(layout(8, 3, 1, 3, 1), T, T);
  Tensor b = sparse_layout_mask(layout(8, 3, 1, 3, 1), T, T);
  Tensor c = sparse_layout_mask(layout(8, 3, 1, 3, 2), T, T);
  EXPECT_EQ(a.to_vector(), b.to_vector());
  EXPECT_NE(a.to_vector(), c.to_vector());
  // No random blocks: the seed does not matter.
  EXPECT_EQ(sparse_layout_mask(layout(8, 3, 1, 0, 1), T, T).to_vector(),
            sparse_layout_mask(layout(8, 3, 1, 0, 2), T, T).to_vector());
  // T != S: blocks past the keys are dropped; query block-rows past the keys keep their
  // global and random blocks.
  Tensor m = sparse_layout_mask(layout(4, 3, 1, 1), 20, 9);
  EXPECT_EQ(m.shape(), Shape({20, 9}));
  auto on = mask_blocks(m, 4);
  EXPECT_TRUE(on.count({4, 0}));  // global
  EXPECT_TRUE(on.count({2, 2}));  // window
  EXPECT_TRUE(on.count({0, 2}));  // a global row
  // Empty sizes.
  EXPECT_EQ(sparse_layout_mask(layout(4, 3, 1, 1), 0, 9).shape(), Shape({0, 9}));
}

TEST(AttentionSparse, MatchesPlainLoops) {
  // f64, T = S = 13 with blocks of 3 (the last partial).
  Inputs in = make_inputs(2, 13, 13, 2, 4, 10, DType::f64);
  for (bool causal : {true, false}) {
    AttentionSpec spec = sparse(layout(3, 1, 1, 1, 4), causal);
    Tensor allowed = sparse_layout_mask(spec.sparse, 13, 13, causal);
    // The layout written out for this case: block-row i sees block i, block 0, and one random
    // block; block-row 0 sees everything.
    auto on = mask_blocks(allowed, 3);
    for (int64_t i = 1; i < 5; ++i) {
      EXPECT_TRUE(on.count({i, i}) && on.count({i, 0}));
      int64_t row = 0;
      for (auto [bi, bj] : on) row += bi == i;
      EXPECT_EQ(row, causal && i == 1 ? 2 : 3) << "block-row " << i;
    }
    Tensor out = attention(in.q, in.k, in.v, spec);
    Tensor ref =
        testing::naive_attention(in.q, in.k, in.v, 0.5, [&](int64_t, int64_t t, int64_t s) {
          return allowed.at({t, s}) != 0.0 && (!causal || s <= t);
        });
    testing::expect_close(out, ref, 1e-12, 1e-12);
  }
}

TEST(AttentionSparse, EveryBlockActiveEqualsDense) {
  Inputs in = make_inputs(2, 70, 70, 3, 16, 20);
  for (bool causal : {true, false})
    for (SparseLayout l :
         {layout(16, 9, 0, 0), layout(16, 1, 5, 0), layout(16, 1, 0, 4), layout(128, 1, 0, 0)}) {
      SCOPED_TRACE(::testing::Message() << "causal " << causal << " block " << l.block_size
                                        << " window " << l.window_blocks << " global "
                                        << l.global_blocks << " random " << l.random_blocks);
      AttentionSpec spec = sparse(l, causal);
      AttentionSpec dense = spec;
      dense.variant = AttentionVariant::dense;
      expect_runs_close(run_attention(in.q, in.k, in.v, spec, in.dout),
                        run_attention(in.q, in.k, in.v, dense, in.dout));
    }
}

TEST(AttentionSparse, LocalBlocksEqualDenseWithBlockBand) {
  // global 0, random 0: block-row i sees blocks |i - j| <= 1 (causal: i - 2 <= j <= i), written
  // out here independently of the layout code.
  int64_t T = 100, b = 8;
  Inputs in = make_inputs(2, T, T, 2, 16, 30);
  for (bool causal : {true, false}) {
    SCOPED_TRACE(::testing::Message() << "causal " << causal);
    AttentionSpec spec = sparse(layout(b, 3, 0, 0), causal);
    AttentionSpec dense = spec;
    dense.variant = AttentionVariant::dense;
    dense.attn_mask = testing::bool_mask(T, T, [&](int64_t t, int64_t s) {
      int64_t i = t / b, j = s / b;
      return causal ? (j <= i && j >= i - 2) : (j >= i - 1 && j <= i + 1);
    });
    expect_runs_close(run_attention(in.q, in.k, in.v, spec, in.dout),
                      run_attention(in.q, in.k, in.v, dense, in.dout));
  }
}

TEST(AttentionSparse, BigBirdEqualsDenseWithItsLayout) {
  Inputs in = make_inputs(2, 200, 200, 2, 16, 40);
  for (bool causal : {true, false})
    for (SparseLayout l :
         {layout(16, 3, 2, 3, 11), layout(10, 5, 1, 2, 12), layout(7, 1, 0, 3, 13)}) {
      SCOPED_TRACE(::testing::Message() << "causal " << causal << " block " << l.block_size);
      expect_matches_dense(in, sparse(l, causal));
    }
}

TEST(AttentionSparse, KeyPadding) {
  Inputs in = make_inputs(2, 96, 96, 2, 8, 50);
  for (bool causal : {true, false}) {
    SCOPED_TRACE(::testing::Message() << "causal " << causal);
    AttentionSpec spec = sparse(layout(8, 3, 1, 2, 3), causal);
    spec.key_lengths = {90, 5};  // batch 1: many block-rows see only padding but for block 0
    expect_matches_dense(in, spec);
    spec = sparse(layout(8, 3, 0, 0, 3), causal);
    spec.key_lengths = {90, 20};  // batch 1: block-rows 4.. see nothing: zeros
    expect_matches_dense(in, spec);
    Tensor out = attention(in.q, in.k, in.v, spec);
    for (int64_t t = 48; t < 96; ++t) EXPECT_EQ(out.at({1, t, 0, 0}), 0.0) << t;
  }
}

TEST(AttentionSparse, DifferentQueryAndKeyLengths) {
  for (auto [T, S] : {std::pair<int64_t, int64_t>{50, 130}, {130, 50}}) {
    Inputs in = make_inputs(1, T, S, 2, 8, 60);
    for (bool causal : {true, false}) {
      SCOPED_TRACE(::testing::Message() << "T " << T << " S " << S << " causal " << causal);
      expect_matches_dense(in, sparse(layout(16, 3, 1, 2, 7), causal));
    }
  }
}

TEST(AttentionSparse, DropoutDropsWhatDenseDrops) {
  // Blocks of 8 (the block-sparse kernel), and of 64 with D = 16 (the register tiles).
  for (auto [T, D, block] : {std::array<int64_t, 3>{80, 8, 8}, std::array<int64_t, 3>{260, 16, 64}}) {
    Inputs in = make_inputs(2, T, T, 2, D, 70);
    for (bool causal : {true, false}) {
      SCOPED_TRACE(::testing::Message() << "block " << block << " causal " << causal);
      Generator g1(9), g2(9);
      AttentionSpec spec = sparse(layout(block, 3, 1, 2, 1), causal);
      spec.dropout_p = 0.25;
      spec.generator = &g1;
      AttentionSpec dense = dense_with_layout(spec, T, T);
      dense.generator = &g2;
      expect_runs_close(run_attention(in.q, in.k, in.v, spec, in.dout),
                        run_attention(in.q, in.k, in.v, dense, in.dout));
    }
  }
}

TEST(AttentionSparse, F64MatchesDenseTightly) {
  Inputs in = make_inputs(1, 100, 100, 2, 8, 80, DType::f64);
  for (bool causal : {true, false}) {
    AttentionSpec spec = sparse(layout(8, 3, 2, 3, 5), causal);
    expect_runs_close(run_attention(in.q, in.k, in.v, spec, in.dout),
                      run_attention(in.q, in.k, in.v, dense_with_layout(spec, 100, 100), in.dout),
                      1e-12, 1e-14);
  }
}

TEST(AttentionSparse, ResultsDoNotDependOnThreadCount) {
  int saved = get_num_threads();
  // Blocks of 32 (the block-sparse kernel); of 64 (the register tiles), one head: one pass of the
  // backward on 1 thread, two on 2.
  for (auto [B, H, block] : {std::array<int64_t, 3>{2, 4, 32}, std::array<int64_t, 3>{1, 1, 64}})
  for (bool causal : {true, false}) {
    Inputs in = make_inputs(B, 300, 300, H, 32, 90);
    AttentionSpec spec = sparse(layout(block, 3, 1, 2, 8), causal);
    spec.dropout_p = 0.1;
    Generator g1(3), g2(3);
    spec.generator = &g1;
    set_num_threads(1);
    AttentionRun one = run_attention(in.q, in.k, in.v, spec, in.dout);
    set_num_threads(2);
    spec.generator = &g2;
    AttentionRun two = run_attention(in.q, in.k, in.v, spec, in.dout);
    testing::expect_runs_equal(one, two);
  }
  set_num_threads(saved);
}

TEST(AttentionSparse, RecordsItsNodeAndSavesOnlyActiveBlocks) {
  int64_t B = 2, T = 500, H = 3;
  Inputs in = make_inputs(B, T, T, H, 8, 100);
  Tensor q = in.q.detach().clone().requires_grad_();
  for (bool causal : {true, false}) {
    AttentionSpec spec = sparse(layout(16, 3, 2, 3, 6), causal);
    Tensor out = attention(q, in.k, in.v, spec);
    ASSERT_TRUE(out.grad_fn());
    EXPECT_STREQ(out.grad_fn()->name(), "attention_sparse");
    // The weights hold exactly the layout's elements for each batch and head.
    std::vector<double> m = sparse_layout_mask(spec.sparse, T, T, causal).to_vector();
    int64_t active = 0;
    for (double x : m) active += x != 0.0;
    EXPECT_EQ(out.grad_fn()->saved("weights").numel(), B * H * active);
    EXPECT_LT(active, T * T / 3);
  }
}

// f32 with blocks of whole register tiles (64, the default) and D a multiple of the lanes: the
// layout runs on flash's register tiles (attention_flash_tiled.h), saving the lse instead of the
// weights. The same numbers as dense with the layout as a mask: causal or not, T != S both ways,
// key padding (a batch row with few keys); dropout in DropoutDropsWhatDenseDrops, the thread
// count in ResultsDoNotDependOnThreadCount.
TEST(AttentionSparse, OnRegisterTilesEqualsDenseWithItsLayout) {
  for (auto [T, S] : {std::pair<int64_t, int64_t>{300, 300}, {150, 330}, {330, 150}}) {
    Inputs in = make_inputs(2, T, S, 2, 32, 130);
    for (bool causal : {true, false}) {
      SCOPED_TRACE(::testing::Message() << "T " << T << " S " << S << " causal " << causal);
      AttentionSpec spec = sparse(layout(64, 3, 1, 2, 5), causal);
      expect_matches_dense(in, spec);
      spec.key_lengths = {S - 70, 40};
      expect_matches_dense(in, spec);
    }
  }
  Inputs in = make_inputs(1, 260, 260, 1, 16, 140);
  Tensor q = in.q.detach().clone().requires_grad_();
  Tensor out = attention(q, in.k, in.v, sparse(layout(64, 3, 1, 2, 5), true));
  ASSERT_TRUE(out.grad_fn());
  EXPECT_STREQ(out.grad_fn()->name(), "attention_sparse");
  EXPECT_EQ(out.grad_fn()->saved("lse").numel(), 260);  // [B, H, T]: no weights
}

TEST(AttentionSparse, EmptyAxes) {
  // No keys: every query sees nothing and gets zeros, and so does its gradient. No queries: an
  // empty output and zero key gradients.
  for (auto [T, S] : {std::pair<int64_t, int64_t>{5, 0}, {0, 5}}) {
    Inputs in = make_inputs(2, T, S, 2, 4, 120);
    AttentionRun r = run_attention(in.q, in.k, in.v, sparse(layout(2, 3, 1, 1), true), in.dout);
    EXPECT_EQ(r.out.shape(), Shape({2, T, 2, 4}));
    EXPECT_EQ(testing::max_abs(r.out), 0.0);
    EXPECT_EQ(testing::max_abs(r.dq), 0.0);
    EXPECT_EQ(testing::max_abs(r.dk), 0.0);
    EXPECT_EQ(r.dk.shape(), Shape({2, S, 2, 4}));
  }
}

TEST(AttentionSparse, Errors) {
  Inputs in = make_inputs(1, 6, 6, 1, 4, 110);
  auto run = [&](SparseLayout l) { return attention(in.q, in.k, in.v, sparse(l, false)); };
  EXPECT_TG_ERROR(run(layout(0, 3, 1, 1)), "attention: sparse layout needs block_size >= 1, got 0");
  EXPECT_TG_ERROR(run(layout(2, 2, 1, 1)),
                  "needs an odd window_blocks >= 1 (blocks centred on the query's block), got 2");
  EXPECT_TG_ERROR(run(layout(2, 0, 1, 1)), "odd window_blocks >= 1");
  EXPECT_TG_ERROR(run(layout(2, -1, 1, 1)), "got -1");
  EXPECT_TG_ERROR(run(layout(2, 3, -1, 1)), "sparse layout needs global_blocks >= 0, got -1");
  EXPECT_TG_ERROR(run(layout(2, 3, 1, -2)), "sparse layout needs random_blocks >= 0, got -2");
  EXPECT_TG_ERROR(sparse_layout_mask(layout(2, 4, 1, 1), 6, 6),
                  "sparse_layout_mask: sparse layout needs an odd window_blocks");
  EXPECT_TG_ERROR(sparse_layout_mask(layout(2, 3, 1, 1), -1, 6),
                  "sparse_layout_mask: T and S must be >= 0");
  AttentionSpec spec = sparse(layout(2, 3, 1, 1), false);
  spec.attn_mask = ones({6, 6}, DType::b8);
  EXPECT_TG_ERROR(attention(in.q, in.k, in.v, spec),
                  "sparse takes causal and key padding masks, not attn_mask");
}

}  // namespace
}  // namespace tg
