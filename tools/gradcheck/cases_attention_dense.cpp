// Gradcheck cases of dense attention: each mask (causal, key lengths, key padding, bool and
// additive attn_mask, a fully masked row), T != S, D != Dv, dropout (a fresh generator of
// the same seed per evaluation, so every evaluation drops the same weights), and causal heads
// longer than one row block; and attention_qkv on the self-attention cases. Grouped kv heads
// (read in place: each group's query heads add into their kv head's gradients), separate and packed.
#include "ops/attention.h"
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
  // Past one causal row block (32 rows up to T = 128, 64 beyond): the blocks above the diagonal
  // are skipped; odd S puts rows at odd flat indices for dropout's Philox pairs.
  c.push_back({"causal, two row blocks, T < S", 1, 70, 73, 1, 2, 1, {}});
  c.back().spec.causal = true;
  c.push_back({"causal, 64-row blocks (T > 128)", 1, 131, 131, 1, 1, 1, {}});
  c.back().spec.causal = true;
  c.push_back({"dropout 0.2 + causal, two row blocks, odd S", 1, 67, 67, 1, 1, 1, {}});
  c.back().spec.dropout_p = 0.2;
  c.back().spec.causal = true;
  return c;
}

std::vector<catalogue::OpCase> attention_dense_cases() {
  std::vector<catalogue::OpCase> cases;
  uint64_t seed = 910;
  for (const Case& c : specs()) {
    std::string shapes = "q " + shape_str({c.B, c.T, c.H, c.D}) + " k " +
                         shape_str({c.B, c.S, c.H, c.D}) + " v " +
                         shape_str({c.B, c.S, c.H, c.Dv}) + (c.what.empty() ? "" : " " + c.what);
    AttentionSpec spec = c.spec;
    cases.push_back({"attention_dense",
                     shapes,
                     [spec](const std::vector<Tensor>& in) {
                       AttentionSpec s = spec;
                       Generator gen(41);
                       s.generator = &gen;
                       return attention(in[0], in[1], in[2], s);
                     },
                     {uniform({c.B, c.T, c.H, c.D}, seed), uniform({c.B, c.S, c.H, c.D}, seed + 1),
                      uniform({c.B, c.S, c.H, c.Dv}, seed + 2)}});
    seed += 3;
  }
  // attention_qkv: the packed projection [B, T, 3, H, D] read in place; its gradient is written
  // in one buffer. Self-attention only (T == S, Dv == D).
  for (const Case& c : specs()) {
    if (c.T != c.S || c.D != c.Dv) continue;
    AttentionSpec spec = c.spec;
    cases.push_back({"attention_dense_qkv",
                     "qkv " + shape_str({c.B, c.T, 3, c.H, c.D}) + (c.what.empty() ? "" : " " + c.what),
                     [spec](const std::vector<Tensor>& in) {
                       AttentionSpec s = spec;
                       Generator gen(41);
                       s.generator = &gen;
                       return attention_qkv(in[0], s);
                     },
                     {uniform({c.B, c.T, 3, c.H, c.D}, seed)}});
    seed += 1;
  }
  // Grouped-query attention: 4 query heads on 2 kv heads, causal with dropout, then packed.
  AttentionSpec grouped;
  grouped.causal = true;
  grouped.dropout_p = 0.25;
  auto with_gen = [](AttentionSpec s, auto&& f) {
    Generator gen(41);
    s.generator = &gen;
    return f(s);
  };
  cases.push_back({"attention_dense", "q [1, 5, 4, 2] k, v [1, 6, 2, 2] grouped kv heads, causal, dropout 0.25",
                   [grouped, with_gen](const std::vector<Tensor>& in) {
                     return with_gen(grouped, [&](const AttentionSpec& s) { return attention(in[0], in[1], in[2], s); });
                   },
                   {uniform({1, 5, 4, 2}, seed), uniform({1, 6, 2, 2}, seed + 1), uniform({1, 6, 2, 2}, seed + 2)}});
  cases.push_back({"attention_dense_qkv", "qkv [2, 5, 4 + 2·2, 2] grouped kv heads, causal, dropout 0.25",
                   [grouped, with_gen](const std::vector<Tensor>& in) {
                     return with_gen(grouped, [&](const AttentionSpec& s) { return attention_qkv(in[0], 2, s); });
                   },
                   {uniform({2, 5, 8, 2}, seed + 3)}});
  return cases;
}

}  // namespace
}  // namespace tg

static const bool registered =
    tg::catalogue::register_family("attention_dense", &tg::attention_dense_cases);
