// Gradcheck cases of dropout: each evaluation draws from a fresh generator of the same seed, so
// the mask is the same for the forward and every finite-difference evaluation.
#include "ops/dropout.h"
#include "tools/gradcheck/catalogue.h"

namespace tg {
namespace {

using catalogue::uniform;

std::vector<catalogue::OpCase> dropout_cases() {
  std::vector<catalogue::OpCase> cases;
  for (double p : {0.2, 0.5}) {
    cases.push_back({"dropout", "[4, 6] p " + std::to_string(p).substr(0, 3),
                     [p](const std::vector<Tensor>& in) {
                       Generator gen(17);
                       return dropout(in[0], p, true, gen);
                     },
                     {uniform({4, 6}, 400)}});
  }
  cases.push_back({"dropout", "[3, 5] p 1.0 (all dropped)",
                   [](const std::vector<Tensor>& in) {
                     Generator gen(17);
                     return dropout(in[0], 1.0, true, gen);
                   },
                   {uniform({3, 5}, 401)}});
  return cases;
}

}  // namespace
}  // namespace tg

static const bool registered = tg::catalogue::register_family("dropout", &tg::dropout_cases);
