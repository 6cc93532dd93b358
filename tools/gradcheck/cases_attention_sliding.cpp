// Gradcheck cases of sliding_window attention: causal and bidirectional bands narrower than T,
// key padding, T != S, dropout (a fresh generator of the same seed per evaluation).
#include "ops/attention.h"
#include "tools/gradcheck/catalogue.h"

namespace tg {
namespace {

using catalogue::uniform;

std::vector<catalogue::OpCase> attention_sliding_cases() {
  struct Case {
    int64_t B, T, S, H, D, window;
    bool causal;
    std::vector<int64_t> key_lengths;
    double dropout;
    std::string note;
  };
  const std::vector<Case> specs = {
      {1, 6, 6, 2, 2, 2, true, {}, 0.0, "causal window 2"},
      {1, 6, 6, 1, 3, 1, false, {}, 0.0, "window 1"},
      {2, 5, 5, 1, 2, 2, false, {4, 2}, 0.0, "window 2 key_lengths [4, 2]"},
      {1, 4, 6, 1, 3, 2, true, {}, 0.0, "causal window 2, T 4 S 6"},
      {1, 6, 4, 1, 3, 1, false, {}, 0.0, "window 1, T 6 S 4"},
      {1, 6, 6, 1, 3, 2, true, {}, 0.3, "causal window 2 dropout 0.3"},
  };
  std::vector<catalogue::OpCase> cases;
  uint64_t seed = 500;
  for (const Case& c : specs) {
    AttentionSpec spec;
    spec.variant = AttentionVariant::sliding_window;
    spec.window = c.window;
    spec.causal = c.causal;
    spec.key_lengths = c.key_lengths;
    spec.dropout_p = c.dropout;
    std::string shapes =
        shape_str({c.B, c.T, c.H, c.D}) + " " + shape_str({c.B, c.S, c.H, c.D}) + " " + c.note;
    cases.push_back({"attention_sliding_window",
                     shapes,
                     [spec](const std::vector<Tensor>& in) {
                       AttentionSpec s = spec;
                       Generator gen(21);
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
    tg::catalogue::register_family("attention_sliding", &tg::attention_sliding_cases);
