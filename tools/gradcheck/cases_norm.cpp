// Gradcheck cases of layer_norm (over one and two trailing axes, with weight and bias, with
// neither, with only one of them) and rms_norm (with and without weight, over more rows than one
// block of the weight gradient's partial sums).
#include "ops/norm.h"
#include "ops/rms_norm.h"
#include "tools/gradcheck/catalogue.h"

namespace tg {
namespace {

using catalogue::uniform;

std::vector<catalogue::OpCase> norm_cases() {
  std::vector<catalogue::OpCase> cases;
  cases.push_back({"layer_norm", "[4, 5] over [5], weight [5], bias [5]",
                   [](const std::vector<Tensor>& in) { return layer_norm(in[0], {5}, in[1], in[2]); },
                   {uniform({4, 5}, 200, -2, 2), uniform({5}, 201, 0.5, 1.5), uniform({5}, 202)}});
  cases.push_back({"layer_norm", "[2, 3, 4] over [3, 4], weight [3, 4], bias [3, 4]",
                   [](const std::vector<Tensor>& in) { return layer_norm(in[0], {3, 4}, in[1], in[2]); },
                   {uniform({2, 3, 4}, 203), uniform({3, 4}, 204), uniform({3, 4}, 205)}});
  cases.push_back({"layer_norm", "[3, 6] over [6], no weight or bias",
                   [](const std::vector<Tensor>& in) { return layer_norm(in[0], {6}); },
                   {uniform({3, 6}, 206)}});
  cases.push_back({"layer_norm", "[3, 4] over [4], weight [4] only",
                   [](const std::vector<Tensor>& in) { return layer_norm(in[0], {4}, in[1]); },
                   {uniform({3, 4}, 207), uniform({4}, 208)}});
  cases.push_back({"layer_norm", "[5, 1, 3] over [3], bias [3] only",
                   [](const std::vector<Tensor>& in) { return layer_norm(in[0], {3}, Tensor(), in[1]); },
                   {uniform({5, 1, 3}, 209), uniform({3}, 210)}});
  cases.push_back({"rms_norm", "[4, 5] over [5], weight [5], eps 1e-6",
                   [](const std::vector<Tensor>& in) { return rms_norm(in[0], {5}, in[1], 1e-6); },
                   {uniform({4, 5}, 211, -2, 2), uniform({5}, 212, 0.5, 1.5)}});
  cases.push_back({"rms_norm", "[2, 3, 4] over [3, 4], no weight, default eps",
                   [](const std::vector<Tensor>& in) { return rms_norm(in[0], {3, 4}); },
                   {uniform({2, 3, 4}, 213)}});
  cases.push_back({"rms_norm", "[70, 3] over [3], weight [3] (three row blocks)",
                   [](const std::vector<Tensor>& in) { return rms_norm(in[0], {3}, in[1], 1e-5); },
                   {uniform({70, 3}, 214), uniform({3}, 215)}});
  return cases;
}

}  // namespace
}  // namespace tg

static const bool registered = tg::catalogue::register_family("norm", &tg::norm_cases);
