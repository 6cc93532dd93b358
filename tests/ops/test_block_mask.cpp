// BlockMask: every block's class (empty, partial, full) and every partial block's runs against
// the element mask counted by brute force, at the edges (T not a multiple of the block, T != S, a query offset, per-batch
// masks); the index lists the kernel walks; the picture; memory O(blocks); one mask shared by
// batches and heads and reused across calls. The outputs under these masks: test_flex_attention.
#include "flex_reference.h"
#include "ops/block_mask.h"
#include "ops/flex_attention.h"
#include "ops/flex_patterns.h"

namespace tg {
namespace {

struct MaskCase {
  std::string name;
  MaskMod mask;
  int64_t B, H, T, S, block, q_offset;
};

std::vector<MaskCase> cases() {
  std::vector<double> p2(60);
  for (int64_t s = 0; s < 30; ++s) p2[size_t(s)] = s >= 17, p2[size_t(30 + s)] = s >= 4;
  std::vector<double> docs;
  for (int64_t s = 0; s < 50; ++s) docs.push_back(double(s < 11 ? 0 : s < 12 ? 1 : s < 40 ? 2 : 3));
  return {{"causal, T = S = 37", causal_mask(), 1, 1, 37, 37, 8, 0},
          {"causal, T 20 < S 45, q_offset 9", causal_mask(), 1, 1, 20, 45, 8, 9},
          {"causal, T 45 > S 30", causal_mask(), 1, 1, 45, 30, 16, 0},
          {"causal, q_offset = S", causal_mask(), 1, 1, 5, 12, 4, 12},
          {"sliding 5", sliding_window_mask(5), 1, 1, 40, 40, 8, 0},
          {"prefix_lm 10", prefix_lm_mask(10), 1, 1, 33, 33, 8, 0},
          {"document", document_mask(tensor(docs, {50}, DType::i64)), 1, 1, 50, 50, 8, 0},
          {"key padding per batch", key_padding_mask(tensor(p2, {2, 30}, DType::b8)), 2, 1, 20, 30, 8, 0},
          {"per head", mask_mod("per head", [](int64_t, int64_t h, int64_t q, int64_t k) { return h == 0 ? k <= q : k >= q; }),
           1, 2, 19, 19, 4, 0},
          {"block 1", causal_mask(), 1, 1, 6, 6, 1, 0},
          {"block larger than T and S", causal_mask(), 1, 1, 6, 9, 16, 0},
          {"block of 2^40 (its scratch sized by T, not the block)", causal_mask(), 1, 1, 6, 9, int64_t(1) << 40, 0},
          {"dilated sliding 9, dilation 2 (rows not one run)", dilated_sliding_window_mask(9, 2), 1, 1, 30, 30, 8, 0}};
}

// A partial block's runs: where the block mask has them, each row's run [first, end) is
// exactly the keys of the block the row sees; where it has none, some row's keys are not one run.
void expect_runs(const kernels::FlexBlocks& v, const bool* hidden, const MaskCase& c, int64_t b, int64_t h, int64_t i,
                 int64_t j) {
  const int32_t* runs = v.runs_from(b, h, i * c.block, j);
  bool all_runs = true;
  for (int64_t t = i * c.block, r = 0; t < std::min(c.T, (i + 1) * c.block); ++t, ++r) {
    int64_t first = -1, end = -1, seen = 0;
    for (int64_t s = j * c.block; s < std::min(c.S, (j + 1) * c.block); ++s)
      if (!hidden[((b * c.H + h) * c.T + t) * c.S + s]) {
        if (seen++ == 0) first = s;
        end = s + 1;
      }
    const bool one_run = seen == end - first || seen == 0;
    all_runs = all_runs && one_run;
    if (runs && seen > 0) {
      EXPECT_EQ(runs[2 * r], first) << "row " << t << ", key block " << j;
      EXPECT_EQ(runs[2 * r + 1], end) << "row " << t << ", key block " << j;
    }
    if (runs && seen == 0) {
      EXPECT_EQ(runs[2 * r], runs[2 * r + 1]) << "row " << t << " sees no key";
    }
  }
  EXPECT_EQ(runs != nullptr, all_runs) << "block (" << i << ", " << j << ") b " << b << " h " << h;
}

TEST(BlockMask, ClassifiesEveryBlockAsTheElementMaskSays) {
  for (const MaskCase& c : cases()) {
    SCOPED_TRACE(c.name);
    BlockMask m = create_block_mask(c.mask, c.B, c.H, c.T, c.S, c.block, c.q_offset);
    testing::DenseMask dense = testing::materialise(c.mask, c.B, c.H, c.T, c.S, c.q_offset);
    const bool* hidden = dense.hidden.data<bool>();
    const int64_t nq = (c.T + c.block - 1) / c.block, nk = (c.S + c.block - 1) / c.block;
    ASSERT_EQ(m.q_blocks(), nq);
    ASSERT_EQ(m.kv_blocks(), nk);
    int64_t counts[3] = {0, 0, 0};
    kernels::FlexBlocks v = m.view();
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t h = 0; h < c.H; ++h)
        for (int64_t i = 0; i < nq; ++i) {
          std::vector<int32_t> expected_list;
          for (int64_t j = 0; j < nk; ++j) {
            int64_t visible = 0, cells = 0;
            for (int64_t t = i * c.block; t < std::min(c.T, (i + 1) * c.block); ++t)
              for (int64_t s = j * c.block; s < std::min(c.S, (j + 1) * c.block); ++s, ++cells)
                visible += !hidden[((b * c.H + h) * c.T + t) * c.S + s];
            BlockKind want = visible == 0 ? BlockKind::empty : visible == cells ? BlockKind::full : BlockKind::partial;
            EXPECT_EQ(int(m.kind(b, h, i, j)), int(want)) << "block (" << i << ", " << j << ") b " << b << " h " << h;
            if (want == BlockKind::partial) expect_runs(v, hidden, c, b, h, i, j);
            ++counts[int(want)];
            if (want != BlockKind::empty) expected_list.push_back(int32_t(j));
          }
          int64_t row = v.bh(b, h) * nq + i;
          std::vector<int32_t> list(v.kv_index + v.kv_start[row], v.kv_index + v.kv_start[row + 1]);
          EXPECT_EQ(list, expected_list) << "key blocks of query block " << i;
        }
    for (int k = 0; k < 3; ++k) EXPECT_EQ(m.count(BlockKind(k)), counts[k]) << "kind " << k;
  }
}

// The known shape of causal at the edges: diagonal blocks partial, below full, above empty; the
// last, short block row still partial on its diagonal; a query offset shifts the diagonal.
TEST(BlockMask, CausalClassesAtTheEdges) {
  BlockMask m = create_block_mask(causal_mask(), 1, 1, 37, 37, 8);
  EXPECT_EQ(m.kind(0, 0, 0, 0), BlockKind::partial);
  EXPECT_EQ(m.kind(0, 0, 1, 0), BlockKind::full);
  EXPECT_EQ(m.kind(0, 0, 0, 1), BlockKind::empty);
  EXPECT_EQ(m.kind(0, 0, 4, 4), BlockKind::partial);  // rows and keys 32..36
  EXPECT_EQ(m.kind(0, 0, 4, 3), BlockKind::full);
  // Queries at positions 8..15 over 24 keys: key block 0 full, 1 partial (diagonal), 2 empty.
  BlockMask off = create_block_mask(causal_mask(), 1, 1, 8, 24, 8, 8);
  EXPECT_EQ(off.kind(0, 0, 0, 0), BlockKind::full);
  EXPECT_EQ(off.kind(0, 0, 0, 1), BlockKind::partial);
  EXPECT_EQ(off.kind(0, 0, 0, 2), BlockKind::empty);
  // Positions 7..14: keys 0..7 all visible (full), keys 8..15 in part.
  BlockMask off7 = create_block_mask(causal_mask(), 1, 1, 8, 24, 8, 7);
  EXPECT_EQ(off7.kind(0, 0, 0, 0), BlockKind::full);
  EXPECT_EQ(off7.kind(0, 0, 0, 1), BlockKind::partial);
}

TEST(BlockMask, PrintsAPictureOfTheBlocksThatRun) {
  BlockMask m = create_block_mask(causal_mask(), 1, 1, 24, 32, 8);
  EXPECT_EQ(m.to_string(),
            "BlockMask(causal: B 1 H 1 T 24 S 32 q_offset 0, block 8): 3 full, 3 partial, 6 empty; b 0 h 0\n"
            "+...\n"
            "#+..\n"
            "##+.\n");
  BlockMask w = create_block_mask(sliding_window_mask(8), 1, 1, 32, 32, 8);
  EXPECT_NE(w.to_string().find("+...\n++..\n.++.\n..++\n"), std::string::npos) << w.to_string();
}

TEST(BlockMask, MemoryIsPerBlockNotPerElement) {
  const int64_t T = 2048, block = 64, n = T / block;
  BlockMask m = create_block_mask(causal_mask(), 1, 1, T, T, block);
  EXPECT_EQ(m.count(BlockKind::full), n * (n - 1) / 2);
  EXPECT_EQ(m.count(BlockKind::partial), n);
  EXPECT_EQ(m.count(BlockKind::empty), n * (n - 1) / 2);
  EXPECT_LT(m.bytes(), 32 * 1024);  // T·S would be 4 MiB of bools
  BlockMask copy = m;                // copies share the arrays
  EXPECT_EQ(copy.view().kind, m.view().kind);
}

// One mask built with B = H = 1 serves every batch and head, and is reused across calls.
TEST(BlockMask, SharedAcrossBatchesHeadsAndCalls) {
  using testing::uniform;
  Tensor q = uniform({2, 21, 3, 8}, 1, -2, 2), k = uniform({2, 21, 3, 8}, 2, -2, 2), v = uniform({2, 21, 3, 8}, 3);
  BlockMask shared = create_block_mask(causal_mask(), 1, 1, 21, 21, 8);
  BlockMask full = create_block_mask(causal_mask(), 2, 3, 21, 21, 8);
  Tensor a = flex_attention(q, k, v, {}, shared), b = flex_attention(q, k, v, {}, full);
  Tensor again = flex_attention(q, k, v, {}, shared);
  EXPECT_EQ(testing::max_abs_diff(a, b), 0.0);
  EXPECT_EQ(testing::max_abs_diff(a, again), 0.0);
  EXPECT_TG_ERROR(flex_attention(q, k, v, {}, create_block_mask(causal_mask(), 3, 1, 21, 21, 8)),
                  "block mask built for [B, H, T, S] = [3, 1, 21, 21] does not fit");
}

}  // namespace
}  // namespace tg
