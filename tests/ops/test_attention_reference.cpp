// The variant names the commands accept, and the plain-way reference of each variant.
#include "ops/attention.h"
#include "ops/attention_reference.h"
#include "test_util.h"

namespace tg {
namespace {

TEST(AttentionParse, NamesAndParameters) {
  AttentionSpec spec;
  EXPECT_EQ(parse_attention_variant("dense"), AttentionVariant::dense);
  EXPECT_EQ(parse_attention_variant("flash"), AttentionVariant::flash);
  EXPECT_EQ(parse_attention_variant("linear"), AttentionVariant::linear);
  EXPECT_EQ(parse_attention_variant("sliding:32", &spec), AttentionVariant::sliding_window);
  EXPECT_EQ(spec.window, 32);
  EXPECT_EQ(parse_attention_variant("sparse", &spec), AttentionVariant::sparse);
  EXPECT_EQ(spec.sparse.block_size, 64);
  parse_attention_variant("sparse:16", &spec);
  EXPECT_EQ(spec.sparse.block_size, 16);
  EXPECT_EQ(spec.sparse.window_blocks, 3);
  parse_attention_variant("sparse:8:3:1:1", &spec);
  EXPECT_EQ(spec.sparse.block_size, 8);
  EXPECT_EQ(spec.sparse.global_blocks, 1);
  EXPECT_EQ(spec.sparse.random_blocks, 1);
  EXPECT_TG_ERROR(parse_attention_variant("fast"), "unknown attention variant 'fast'");
  EXPECT_TG_ERROR(parse_attention_variant("sliding:"), "must be a positive integer");
  EXPECT_TG_ERROR(parse_attention_variant("sliding:-3"), "must be a positive integer");
  EXPECT_TG_ERROR(parse_attention_variant("sparse:8:3"), "expected sparse:BLOCK or sparse:BLOCK:WINDOW:GLOBAL:RANDOM");
  EXPECT_TG_ERROR(parse_attention_variant("sparse:x"), "non-negative integers");
}

}  // namespace
}  // namespace tg

namespace tg {
namespace {

// attention_reference is what the bench checks each variant against: it must agree with every
// variant, causal or not, with key padding.
TEST(AttentionReference, AgreesWithEveryVariant) {
  Tensor q = testing::uniform({2, 12, 2, 4}, 1), k = testing::uniform({2, 12, 2, 4}, 2);
  Tensor v = testing::uniform({2, 12, 2, 3}, 3);
  for (const char* name : {"dense", "flash", "sliding:3", "sparse:2:3:1:1", "linear"})
    for (bool causal : {false, true}) {
      SCOPED_TRACE(fmt::format("{} causal={}", name, causal));
      AttentionSpec spec;
      spec.variant = parse_attention_variant(name, &spec);
      spec.causal = causal;
      spec.key_lengths = {12, 9};
      Tensor ref = attention_reference(q, k, v, spec);
      EXPECT_LT(testing::max_abs_diff(attention(q, k, v, spec), ref), 1e-12);
    }
  AttentionSpec band;
  band.variant = AttentionVariant::sliding_window;
  band.window = 2;
  band.causal = true;
  // Query 3 sees keys 2 and 3 only.
  EXPECT_EQ(attention_pattern(band, 4, 4).to_vector(),
            std::vector<double>({1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1}));
}

// attention_visible_pairs counts what attention_pattern marks, for every variant's pattern,
// causal or not, square or not, with queries offset into the keys, and sparse layouts whose
// blocks do not divide T or S.
TEST(AttentionReference, VisiblePairsCountThePattern) {
  std::vector<AttentionSpec> specs;
  for (const char* name : {"dense", "linear", "sliding:1", "sliding:2", "sliding:7", "sliding:100", "sparse:8",
                           "sparse:5:3:1:2", "sparse:16:1:0:0"}) {
    AttentionSpec spec;
    parse_attention_variant(name, &spec);
    specs.push_back(spec);
  }
  for (AttentionSpec spec : specs)
    for (bool causal : {false, true})
      for (int64_t offset : {0, 5})
        for (auto [T, S] : {std::pair<int64_t, int64_t>{37, 37}, {21, 50}, {50, 21}, {0, 9}, {9, 0}}) {
          if (offset > 0 && !causal && spec.variant != AttentionVariant::sliding_window) continue;
          spec.causal = causal;
          spec.query_offset = offset;
          Tensor pattern = attention_pattern(spec, T, S);
          int64_t want = 0;
          for (int64_t i = 0; i < pattern.numel(); ++i) want += pattern.data<bool>()[i];
          EXPECT_EQ(attention_visible_pairs(spec, T, S), want)
              << "variant " << int(spec.variant) << " causal " << causal << " offset " << offset << " T " << T
              << " S " << S;
        }
}

}  // namespace
}  // namespace tg
