// Gradcheck cases of checkpoint: a small block recomputed in backward, with an input that needs
// no gradient, and with dropout inside (its mask replayed from the generator's saved state).
#include "autograd/checkpoint.h"
#include "ops/binary.h"
#include "ops/dropout.h"
#include "ops/matmul.h"
#include "ops/unary.h"
#include "tools/gradcheck/catalogue.h"

namespace tg {
namespace {

using catalogue::uniform;

// gelu(x · w) * y: x [3, 4], w [4, 5], y [3, 5].
Tensor block(const std::vector<Tensor>& in) { return mul(gelu(matmul(in[0], in[1]), "tanh"), in[2]); }

std::vector<catalogue::OpCase> checkpoint_cases() {
  std::vector<catalogue::OpCase> cases;
  cases.push_back({"checkpoint", "gelu([3, 4] · [4, 5]) * [3, 5]",
                   [](const std::vector<Tensor>& in) { return checkpoint(block, in); },
                   {uniform({3, 4}, 900), uniform({4, 5}, 901), uniform({3, 5}, 902)}});
  cases.push_back({"checkpoint", "dropout(p=0.3) of [4, 6] * [4, 6]",
                   [](const std::vector<Tensor>& in) {
                     // The same generator state for every evaluation, as gradcheck needs.
                     static Generator gen(5);
                     gen.manual_seed(5);
                     return checkpoint(
                         [](const std::vector<Tensor>& a) { return dropout(mul(a[0], a[1]), 0.3, true, gen); }, in,
                         &gen);
                   },
                   {uniform({4, 6}, 903), uniform({4, 6}, 904)}});
  return cases;
}

}  // namespace
}  // namespace tg

static const bool registered = tg::catalogue::register_family("checkpoint", &tg::checkpoint_cases);
