// Gradcheck cases of flex_attention: mask_mods through a BlockMask (causal with T not a multiple
// of the block, sliding window, document, prefix-LM with a query offset), score_mods with
// learned captured tensors (ALiBi slopes, T5 relative bias table) and soft-capping, grouped-query
// heads, dropout (a fresh generator of the same seed per evaluation), and no mask at all.
#include "ops/flex_attention.h"
#include "ops/flex_patterns.h"
#include "tools/gradcheck/catalogue.h"

namespace tg {
namespace {

using catalogue::uniform;

struct Case {
  std::string what;
  int64_t B, T, S, H, Hkv, D, Dv, block, q_offset;
  std::function<MaskMod()> mask;                                // null: no mask
  std::function<ScoreMod(const std::vector<Tensor>&)> score;    // from the captured inputs
  std::vector<Shape> captured;
  double dropout = 0.0;
};

std::vector<Case> specs() {
  auto docs = [] { return document_mask(tensor({0, 0, 0, 1, 1, 2, 2, 2, 2}, {9}, DType::i64)); };
  return {
      {"", 1, 4, 5, 2, 2, 3, 2, 4, 0, nullptr, nullptr, {}},
      {"causal, block 3", 1, 7, 7, 2, 2, 3, 3, 3, 0, [] { return causal_mask(); }, nullptr, {}},
      {"sliding window 3, GQA", 1, 8, 8, 4, 2, 2, 2, 4, 0, [] { return sliding_window_mask(3); }, nullptr, {}},
      {"document", 1, 9, 9, 1, 1, 2, 2, 4, 0, docs, nullptr, {}},
      {"prefix-LM 3, q_offset 4", 2, 4, 9, 1, 1, 2, 2, 2, 4, [] { return prefix_lm_mask(3); }, nullptr, {}},
      {"ALiBi (learned slopes) + causal", 1, 6, 6, 2, 2, 2, 2, 4, 0, [] { return causal_mask(); },
       [](const std::vector<Tensor>& c) { return alibi(c[0]); }, {{2}}},
      {"softcap 0.8", 1, 5, 6, 2, 1, 3, 2, 4, 0, nullptr, [](const std::vector<Tensor>&) { return softcap(0.8); }, {}},
      {"T5 relative bias (learned table)", 1, 6, 7, 2, 2, 2, 2, 4, 0, nullptr,
       [](const std::vector<Tensor>& c) { return relative_position_bias(c[0], true, 8); }, {{2, 6}}},
      {"dropout 0.3 + causal", 1, 5, 5, 2, 2, 2, 2, 2, 0, [] { return causal_mask(); }, nullptr, {}, 0.3},
  };
}

std::vector<catalogue::OpCase> flex_attention_cases() {
  std::vector<catalogue::OpCase> cases;
  uint64_t seed = 1200;
  for (const Case& c : specs()) {
    std::string shapes = "q " + shape_str({c.B, c.T, c.H, c.D}) + " k " + shape_str({c.B, c.S, c.Hkv, c.D}) +
                         " v " + shape_str({c.B, c.S, c.Hkv, c.Dv}) + " block " + std::to_string(c.block) +
                         (c.what.empty() ? "" : " " + c.what);
    std::vector<Tensor> inputs = {uniform({c.B, c.T, c.H, c.D}, seed), uniform({c.B, c.S, c.Hkv, c.D}, seed + 1),
                                  uniform({c.B, c.S, c.Hkv, c.Dv}, seed + 2)};
    for (const Shape& s : c.captured) inputs.push_back(uniform(s, seed + 3, -1, 1));
    seed += 4;
    cases.push_back({"flex_attention", shapes,
                     [c](const std::vector<Tensor>& in) {
                       BlockMask bm = c.mask ? create_block_mask(c.mask(), c.B, c.H, c.T, c.S, c.block, c.q_offset)
                                             : BlockMask::full(c.T, c.S, c.block, c.q_offset);
                       ScoreMod sm = c.score ? c.score({in.begin() + 3, in.end()}) : ScoreMod{};
                       Generator gen(43);
                       FlexOptions o;
                       o.enable_gqa = true;
                       o.dropout_p = c.dropout;
                       o.generator = &gen;
                       return flex_attention(in[0], in[1], in[2], sm, bm, o);
                     },
                     inputs});
  }
  return cases;
}

}  // namespace
}  // namespace tg

static const bool registered = tg::catalogue::register_family("flex_attention", &tg::flex_attention_cases);
