// flex:PATTERN in words: parsing, what each builds, and bad patterns named.
#include "ops/flex_patterns.h"
#include "ops/flex_spec.h"
#include "test_util.h"

namespace tg {
namespace {

TEST(FlexSpec, ParsesEveryPattern) {
  EXPECT_EQ(parse_flex_pattern("flex:causal").name, "causal");
  EXPECT_EQ(parse_flex_pattern("flex:sliding:256").ints, std::vector<int64_t>{256});
  EXPECT_EQ(parse_flex_pattern("flex:sinks:64:4").ints, (std::vector<int64_t>{64, 4}));
  EXPECT_EQ(parse_flex_pattern("flex:bigbird").ints, std::vector<int64_t>{});
  EXPECT_EQ(parse_flex_pattern("flex:bigbird:16:3:2:1").ints, (std::vector<int64_t>{16, 3, 2, 1}));
  EXPECT_DOUBLE_EQ(parse_flex_pattern("flex:softcap:50").real, 50.0);
  EXPECT_TRUE(is_flex_pattern("flex:alibi"));
  EXPECT_FALSE(is_flex_pattern("flash"));
}

TEST(FlexSpec, BadPatternsAreNamed) {
  EXPECT_TG_ERROR(parse_flex_pattern("flex:zigzag"), "attention pattern 'flex:zigzag': unknown pattern 'zigzag'");
  EXPECT_TG_ERROR(parse_flex_pattern("flex:sliding"), "sliding takes 1 number");
  EXPECT_TG_ERROR(parse_flex_pattern("flex:sliding:0"), "'0' must be an integer >= 1");
  EXPECT_TG_ERROR(parse_flex_pattern("flex:sliding:99999999999999999999"), "must be an integer");
  EXPECT_TG_ERROR(parse_flex_pattern("flex:softcap:-1"), "the cap must be a positive number");
  EXPECT_TG_ERROR(parse_flex_pattern("dense"), "expected flex:PATTERN");
  EXPECT_TG_ERROR(build_flex_problem(parse_flex_pattern("flex:document:9"), 1, 4, 4, false), "more documents");
}

// What each pattern lets through, as the blocks of its mask say (block 4 over T = S = 16).
TEST(FlexSpec, BuildsTheMasksItNames) {
  auto blocks = [](const std::string& text, bool causal) {
    FlexProblem p = build_flex_problem(parse_flex_pattern(text), 2, 16, 16, causal, DType::f32, 4);
    return p.block_mask.defined() ? p.block_mask.to_string() : std::string("all");
  };
  EXPECT_EQ(blocks("flex:full", false), "all");
  EXPECT_EQ(blocks("flex:full", true), blocks("flex:causal", false));
  // 4 documents of 4 keys: the diagonal blocks, each full; causal makes them partial.
  EXPECT_NE(blocks("flex:document:4", false).find(": 4 full, 0 partial, 12 empty; b 0 h 0\n#...\n.#..\n..#.\n...#"),
            std::string::npos)
      << blocks("flex:document:4", false);
  EXPECT_NE(blocks("flex:document:4", true).find("0 full, 4 partial, 12 empty"), std::string::npos)
      << blocks("flex:document:4", true);
  EXPECT_NE(blocks("flex:sliding:4", true).find("+...\n++..\n.++.\n..++"), std::string::npos)
      << blocks("flex:sliding:4", true);
  FlexProblem alibi = build_flex_problem(parse_flex_pattern("flex:alibi"), 2, 16, 16, true);
  EXPECT_TRUE(alibi.score_mod.defined());
  EXPECT_EQ(alibi.score_mod.captured.at(0).shape(), (Shape{2}));  // a slope per head
  EXPECT_EQ(alibi.block_mask.count(BlockKind::empty), 0);         // 16 keys fit one block of 128
}

// Packed sequences: a doc-id per token of each row [B, T] gives a mask with a batch axis, each
// row its own documents (intersected with the pattern and causal).
TEST(FlexSpec, DocumentIdsGiveEachRowItsOwnBlocks) {
  // Row 0: documents of 3 and 5 tokens; row 1: one document of 8. Blocks of 4.
  Tensor ids = tensor({0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0}, {2, 8}, DType::i64);
  FlexProblem p = build_flex_problem(parse_flex_pattern("flex:full"), 2, 8, 8, true, DType::f32, 4, 0, {}, ids);
  ASSERT_TRUE(p.block_mask.defined());
  EXPECT_EQ(p.block_mask.batch(), 2);
  // Queries 4..7 (document 1) over keys 0..3: only key 3 is theirs in row 0, all are in row 1.
  EXPECT_EQ(p.block_mask.kind(0, 0, 1, 0), BlockKind::partial);
  EXPECT_EQ(p.block_mask.kind(1, 0, 1, 0), BlockKind::full);
  EXPECT_EQ(p.block_mask.kind(0, 0, 0, 1), BlockKind::empty);  // causal
  // The mask itself: query 5 of row 0 sees keys 3..5.
  bool row[8];
  p.block_mask.mask_mod().row(0, 0, 5, 0, 8, row);
  EXPECT_EQ(std::vector<bool>(row, row + 8), (std::vector<bool>{false, false, false, true, true, true, false, false}));
  // With a sliding window of 2 on top: query 5 sees keys 4 and 5.
  FlexProblem s = build_flex_problem(parse_flex_pattern("flex:sliding:2"), 2, 8, 8, true, DType::f32, 4, 0, {}, ids);
  s.block_mask.mask_mod().row(0, 0, 5, 0, 8, row);
  EXPECT_EQ(std::vector<bool>(row, row + 8), (std::vector<bool>{false, false, false, false, true, true, false, false}));

  EXPECT_TG_ERROR(build_flex_problem(parse_flex_pattern("flex:full"), 2, 8, 8, true, DType::f32, 4, 0, {},
                                     tensor({0, 0, 1}, {1, 3}, DType::i64)),
                  "document_ids i64 [1, 3] must be i64 [B, T] for T 8 queries");
  EXPECT_TG_ERROR(build_flex_problem(parse_flex_pattern("flex:full"), 2, 8, 8, true, DType::f32, 4, 0, {1, 2, 3}, ids),
                  "B = 3 as the key lengths");
}

// The hand-written variants as the flex patterns computing the same.
TEST(FlexSpec, PatternOfAVariant) {
  AttentionSpec spec;
  EXPECT_EQ(flex_pattern_of_variant(spec).text(), "flex:full");
  spec.variant = AttentionVariant::flash;
  EXPECT_EQ(flex_pattern_of_variant(spec).text(), "flex:full");
  spec.variant = AttentionVariant::sliding_window, spec.window = 7;
  EXPECT_EQ(flex_pattern_of_variant(spec).text(), "flex:sliding:7");
  spec.variant = AttentionVariant::sparse, spec.sparse = SparseLayout{16, 3, 1, 2, 0};
  FlexPattern bigbird = flex_pattern_of_variant(spec);
  EXPECT_EQ(bigbird.text(), "flex:bigbird:16:3:1:2");
  // The same blocks as the sparse variant's layout.
  FlexProblem p = build_flex_problem(bigbird, 1, 64, 64, true, DType::f32, 16);
  Tensor layout = sparse_layout_mask(spec.sparse, 64, 64, true);
  bool row[64];
  for (int64_t q = 0; q < 64; ++q) {
    p.block_mask.mask_mod().row(0, 0, q, 0, 64, row);
    for (int64_t k = 0; k < 64; ++k) ASSERT_EQ(row[k], layout.data<bool>()[q * 64 + k] && k <= q) << q << " " << k;
  }
  spec.variant = AttentionVariant::linear;
  EXPECT_TG_ERROR(flex_pattern_of_variant(spec), "the linear variant has no attention mask");
}

// A pattern written in C++: its functions are used as they are, the caller's causal mask on top.
TEST(FlexSpec, CustomPatterns) {
  FlexPattern strided = FlexPattern::custom(
      "strided", mask_mod("strided", [](int64_t, int64_t, int64_t q, int64_t k) { return q - k < 2 || k % 4 == 3; }));
  EXPECT_EQ(strided.text(), "flex:custom:strided");
  EXPECT_TRUE(strided.is_custom());
  EXPECT_TRUE(is_custom_flex_pattern(strided.text()));
  FlexProblem p = build_flex_problem(strided, 1, 8, 8, true, DType::f32, 4);
  bool row[8];
  p.block_mask.mask_mod().row(0, 0, 6, 0, 8, row);
  EXPECT_EQ(std::vector<bool>(row, row + 8), (std::vector<bool>{false, false, false, true, false, true, true, false}));
  EXPECT_FALSE(p.score_mod.defined());
  FlexPattern capped = FlexPattern::custom("capped", {}, softcap(5.0));
  FlexProblem c = build_flex_problem(capped, 1, 8, 8, true, DType::f32, 4);
  EXPECT_TRUE(c.score_mod.defined());
  EXPECT_EQ(c.score_mod.name, "softcap");
  EXPECT_EQ(c.block_mask.count(BlockKind::empty), 1);  // the causal mask

  EXPECT_TG_ERROR(FlexPattern::custom("", causal_mask()), "must be non-empty");
  EXPECT_TG_ERROR(FlexPattern::custom("a:b", causal_mask()), "hold no ':'");
  EXPECT_TG_ERROR(FlexPattern::custom("none", {}), "neither a mask_mod nor a score_mod");
  EXPECT_TG_ERROR(parse_flex_pattern("flex:custom:strided"), "is written in C++");
}

}  // namespace
}  // namespace tg
