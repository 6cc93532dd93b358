// Gradcheck cases of swiglu (the Llama family's MLP gating on a fused gate/up projection): rows
// of one and several gate widths, gates on both sides of 0 (SiLU's curvature), a leading batch.
#include "ops/swiglu.h"
#include "tools/gradcheck/catalogue.h"

namespace tg {
namespace {

using catalogue::uniform;

std::vector<catalogue::OpCase> swiglu_cases() {
  std::vector<catalogue::OpCase> cases;
  auto fn = [](const std::vector<Tensor>& in) { return swiglu(in[0]); };
  cases.push_back({"swiglu", "[2, 3, 8] (I = 4)", fn, {uniform({2, 3, 8}, 950, -4, 4)}});
  cases.push_back({"swiglu", "[5, 2] (I = 1)", fn, {uniform({5, 2}, 951, -3, 3)}});
  cases.push_back({"swiglu", "[70] (one row, I = 35)", fn, {uniform({70}, 952, -6, 6)}});
  return cases;
}

}  // namespace
}  // namespace tg

static const bool registered = tg::catalogue::register_family("swiglu", &tg::swiglu_cases);
