// flex:PATTERN in words: parsing, what each builds, and bad patterns named.
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

}  // namespace
}  // namespace tg
