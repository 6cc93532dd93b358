// Gradcheck cases of flash attention: each mask (causal, key lengths, key padding, bool and
// additive attn_mask, a fully masked row), T != S, D != Dv, and dropout (a fresh generator of
// the same seed per evaluation, so every evaluation drops the same weights); and two cases
// crossing the tile size (D = Dv = 1 to keep them cheap), so the online softmax rescales and
// the backward sums over several tiles; grouped kv heads, separate and packed.
#include "ops/attention.h"
#include "ops/kernels/attention_flash.h"
#include "tools/gradcheck/catalogue.h"

namespace tg {
namespace {

using catalogue::uniform;

struct Case {
  std::string what;
  int64_t B, T, S, H, D, Dv;
  AttentionSpec spec;  // generator set per evaluation when dropout_p > 0
};

std::vector<Case> specs() {
  std::vector<Case> c;
  c.push_back({"", 1, 4, 5, 2, 3, 2, {}});
  c.push_back({"causal", 1, 4, 4, 2, 3, 3, {}});
  c.back().spec.causal = true;
  c.push_back({"causal T > S", 1, 5, 3, 1, 2, 3, {}});
  c.back().spec.causal = true;
  c.push_back({"key_lengths {3, 1}", 2, 3, 4, 1, 2, 2, {}});
  c.back().spec.key_lengths = {3, 1};
  c.push_back({"key_padding_mask, a batch fully padded", 2, 3, 3, 1, 2, 2, {}});
  c.back().spec.key_padding_mask = tensor({0, 1, 0, 1, 1, 1}, {2, 3}, DType::b8);
  c.push_back({"bool attn_mask [3, 4]", 1, 3, 4, 2, 2, 2, {}});
  c.back().spec.attn_mask = tensor({1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 1, 0}, {3, 4}, DType::b8);
  c.push_back({"additive attn_mask [1, 2, 3, 4] + causal", 1, 3, 4, 2, 2, 2, {}});
  c.back().spec.attn_mask = uniform({1, 2, 3, 4}, 900, -2, 2);
  c.back().spec.causal = true;
  c.push_back({"dropout 0.3 + causal", 1, 4, 4, 2, 2, 2, {}});
  c.back().spec.dropout_p = 0.3;
  c.back().spec.causal = true;
  constexpr int64_t R = kernels::kFlashRows, C = kernels::kFlashCols;
  c.push_back({"causal, two tiles each way", 1, R + 2, C + 2, 1, 1, 1, {}});
  c.back().spec.causal = true;
  c.push_back({"additive + dropout 0.2, two key tiles", 1, 3, C + 3, 1, 1, 1, {}});
  c.back().spec.attn_mask = uniform({3, C + 3}, 990, -1, 1);
  c.back().spec.dropout_p = 0.2;
  return c;
}

std::vector<catalogue::OpCase> attention_flash_cases() {
  std::vector<catalogue::OpCase> cases;
  uint64_t seed = 950;
  for (const Case& c : specs()) {
    std::string shapes = "q " + shape_str({c.B, c.T, c.H, c.D}) + " k " +
                         shape_str({c.B, c.S, c.H, c.D}) + " v " +
                         shape_str({c.B, c.S, c.H, c.Dv}) + (c.what.empty() ? "" : " " + c.what);
    AttentionSpec spec = c.spec;
    cases.push_back({"attention_flash",
                     shapes,
                     [spec](const std::vector<Tensor>& in) {
                       AttentionSpec s = spec;
                       s.variant = AttentionVariant::flash;
                       Generator gen(41);
                       s.generator = &gen;
                       return attention(in[0], in[1], in[2], s);
                     },
                     {uniform({c.B, c.T, c.H, c.D}, seed), uniform({c.B, c.S, c.H, c.D}, seed + 1),
                      uniform({c.B, c.S, c.H, c.Dv}, seed + 2)}});
    seed += 3;
  }
  // Grouped-query attention read in place: 4 query heads on 2 kv heads, causal with dropout, and
  // packed; each group's query heads add into their kv head's gradients.
  auto grouped = [](const std::vector<Tensor>& in) {
    AttentionSpec s;
    s.variant = AttentionVariant::flash;
    s.causal = true;
    s.dropout_p = 0.25;
    Generator gen(41);
    s.generator = &gen;
    return in.size() == 1 ? attention_qkv(in[0], 2, s) : attention(in[0], in[1], in[2], s);
  };
  cases.push_back({"attention_flash", "q [1, 5, 4, 2] k, v [1, 6, 2, 2] grouped kv heads, causal, dropout 0.25",
                   grouped,
                   {uniform({1, 5, 4, 2}, seed), uniform({1, 6, 2, 2}, seed + 1), uniform({1, 6, 2, 2}, seed + 2)}});
  cases.push_back({"attention_flash_qkv", "qkv [2, 5, 4 + 2·2, 2] grouped kv heads, causal, dropout 0.25", grouped,
                   {uniform({2, 5, 8, 2}, seed + 3)}});
  return cases;
}

}  // namespace
}  // namespace tg

static const bool registered =
    tg::catalogue::register_family("attention_flash", &tg::attention_flash_cases);
