// Gradcheck cases of linear attention: non-causal and causal, T != S both ways, key padding
// (including a batch element with every key padded), FAVOR+ features, and two cases across a
// chunk boundary. Small sizes: gradcheck costs two forwards per input element.
#include "ops/attention.h"
#include "tools/gradcheck/catalogue.h"

namespace tg {
namespace {

Tensor uniform(const Shape& shape, uint64_t seed) { return catalogue::uniform(shape, seed, -1.5, 1.5); }

std::vector<catalogue::OpCase> attention_linear_cases() {
  struct Case {
    int64_t B, T, S, H, D, Dv;
    bool causal;
    std::vector<int64_t> lengths;
    std::string feature_map;
  };
  const std::vector<Case> specs = {
      {1, 3, 4, 2, 2, 3, false, {}, "elu"},       {2, 4, 4, 1, 3, 2, true, {}, "elu"},
      {1, 5, 3, 1, 2, 2, true, {}, "elu"},        {1, 3, 5, 1, 2, 2, true, {}, "elu"},
      {1, 2, 5, 1, 3, 3, false, {}, "elu"},       {2, 3, 4, 1, 2, 2, false, {3, 0}, "elu"},
      {2, 3, 4, 1, 2, 2, true, {2, 4}, "elu"},    {1, 3, 4, 1, 2, 2, false, {}, "favor:5:3"},
      {1, 4, 4, 1, 2, 2, true, {3}, "favor:3:7"},
      // Across a chunk boundary (64 rows), wide enough for the kernel's vector tiles.
      {1, 67, 67, 1, 8, 8, true, {}, "elu"},      {1, 66, 70, 1, 8, 9, false, {61}, "elu"},
  };
  std::vector<catalogue::OpCase> cases;
  uint64_t seed = 700;
  for (const Case& c : specs) {
    AttentionSpec spec;
    spec.variant = AttentionVariant::linear;
    spec.causal = c.causal;
    spec.key_lengths = c.lengths;
    spec.feature_map = c.feature_map;
    std::string d = fmt::format("q {} k {} v {}{}{}{}", shape_str({c.B, c.T, c.H, c.D}),
                                shape_str({c.B, c.S, c.H, c.D}), shape_str({c.B, c.S, c.H, c.Dv}),
                                c.causal ? " causal" : "",
                                c.lengths.empty() ? "" : " lengths " + shape_str(c.lengths),
                                c.feature_map == "elu" ? "" : " " + c.feature_map);
    cases.push_back(
        {"attention_linear",
         d,
         [spec](const std::vector<Tensor>& in) { return attention(in[0], in[1], in[2], spec); },
         {uniform({c.B, c.T, c.H, c.D}, seed), uniform({c.B, c.S, c.H, c.D}, seed + 1),
          uniform({c.B, c.S, c.H, c.Dv}, seed + 2)}});
    seed += 3;
  }
  return cases;
}

}  // namespace
}  // namespace tg

static const bool registered =
    tg::catalogue::register_family("attention_linear", &tg::attention_linear_cases);
