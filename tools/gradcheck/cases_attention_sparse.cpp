// Gradcheck cases of sparse (BigBird) attention on T = 6 with blocks of 2: window, global and
// random blocks, causal, a partial last block, key padding, T != S, dropout (a fresh generator
// of the same seed per evaluation).
#include "ops/attention.h"
#include "tools/gradcheck/catalogue.h"

namespace tg {
namespace {

using catalogue::uniform;

std::vector<catalogue::OpCase> attention_sparse_cases() {
  struct Case {
    int64_t B, T, S, H, D;
    SparseLayout layout;
    bool causal;
    std::vector<int64_t> key_lengths;
    double dropout;
    std::string note;
  };
  const std::vector<Case> specs = {
      {1, 6, 6, 2, 2, {2, 1, 1, 1, 3}, false, {}, 0.0, "block 2 window 1 global 1 random 1"},
      {1, 8, 8, 1, 3, {2, 1, 0, 1, 4}, true, {}, 0.0, "causal block 2 window 1 random 1"},
      {1, 7, 7, 1, 3, {2, 3, 1, 0, 0}, false, {}, 0.0, "block 2 window 3 global 1 (partial block)"},
      {2, 6, 6, 1, 2, {2, 1, 1, 1, 5}, true, {5, 3}, 0.0, "causal block 2 key_lengths [5, 3]"},
      {1, 4, 7, 1, 3, {2, 1, 1, 1, 6}, false, {}, 0.0, "block 2 T 4 S 7"},
      {1, 6, 6, 1, 3, {2, 1, 1, 1, 7}, false, {}, 0.3, "block 2 dropout 0.3"},
  };
  std::vector<catalogue::OpCase> cases;
  uint64_t seed = 600;
  for (const Case& c : specs) {
    AttentionSpec spec;
    spec.variant = AttentionVariant::sparse;
    spec.sparse = c.layout;
    spec.causal = c.causal;
    spec.key_lengths = c.key_lengths;
    spec.dropout_p = c.dropout;
    std::string shapes =
        shape_str({c.B, c.T, c.H, c.D}) + " " + shape_str({c.B, c.S, c.H, c.D}) + " " + c.note;
    cases.push_back({"attention_sparse",
                     shapes,
                     [spec](const std::vector<Tensor>& in) {
                       AttentionSpec s = spec;
                       Generator gen(23);
                       s.generator = &gen;
                       return attention(in[0], in[1], in[2], s);
                     },
                     {uniform({c.B, c.T, c.H, c.D}, seed), uniform({c.B, c.S, c.H, c.D}, seed + 1),
                      uniform({c.B, c.S, c.H, c.D}, seed + 2)}});
    seed += 3;
  }
  return cases;
}

}  // namespace
}  // namespace tg

static const bool registered =
    tg::catalogue::register_family("attention_sparse", &tg::attention_sparse_cases);
