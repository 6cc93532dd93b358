// The variant names the commands accept.
#include "ops/attention.h"
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
