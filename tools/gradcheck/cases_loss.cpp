// Gradcheck cases of cross_entropy: each reduction, with ignored targets, a custom
// ignore_index, and [C] logits with a scalar target. Targets (i64) pass through unchecked.
#include "ops/loss.h"
#include "tools/gradcheck/catalogue.h"

namespace tg {
namespace {

Tensor uniform(const Shape& shape, uint64_t seed) { return catalogue::uniform(shape, seed, -2, 2); }

std::vector<catalogue::OpCase> loss_cases() {
  std::vector<catalogue::OpCase> cases;
  Tensor target = tensor({3, -100, 0, 4, 1}, {5}, DType::i64);
  for (std::string red : {"mean", "sum", "none"}) {
    cases.push_back({"cross_entropy", "[5, 6] target [5] (one ignored), reduction " + red,
                     [red](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1], -100, red); },
                     {uniform({5, 6}, 300 + red.size()), target}});
  }
  cases.push_back({"cross_entropy", "[4, 3] target [4], ignore_index 1",
                   [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1], 1); },
                   {uniform({4, 3}, 310), tensor({0, 1, 2, 1}, {4}, DType::i64)}});
  cases.push_back({"cross_entropy", "[7] target []",
                   [](const std::vector<Tensor>& in) { return cross_entropy(in[0], in[1]); },
                   {uniform({7}, 311), tensor({5}, {}, DType::i64)}});
  return cases;
}

}  // namespace
}  // namespace tg

static const bool registered = tg::catalogue::register_family("loss", &tg::loss_cases);
