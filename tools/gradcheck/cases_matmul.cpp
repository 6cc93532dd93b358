// Gradcheck cases of the matmul family: matmul over every rank combination and broadcast batch
// (backward runs GEMMs with transpose flags and beta = 1 accumulation), and linear and addmm
// with and without bias. Empty axes are tested in tests/ops/test_matmul.cpp (gradcheck compares nothing
// there).
#include "ops/matmul.h"
#include "tools/gradcheck/catalogue.h"

namespace tg::catalogue {
namespace {

// Uniform in [-1, 1), f64, from a fixed seed.
Tensor input(const Shape& shape, uint64_t seed) { return catalogue::uniform(shape, seed, -1, 1); }

OpCase mm(const Shape& a, const Shape& b, uint64_t seed) {
  return {"matmul",
          shape_str(a) + " @ " + shape_str(b),
          [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); },
          {input(a, seed), input(b, seed + 1)}};
}

std::vector<OpCase> matmul_cases() {
  std::vector<OpCase> c;
  c.push_back(mm({3, 4}, {4, 2}, 1));
  c.push_back(mm({4}, {4, 3}, 3));               // 1-D @ 2-D
  c.push_back(mm({3, 4}, {4}, 5));               // 2-D @ 1-D
  c.push_back(mm({5}, {5}, 7));                  // dot
  c.push_back(mm({2, 3, 4}, {4, 2}, 9));         // a's batch folded into rows
  c.push_back(mm({2, 3, 4}, {1, 4, 2}, 11));     // b's size-1 batch: folded too
  c.push_back(mm({3, 4}, {2, 4, 3}, 13));        // 2-D a broadcast: da accumulates over the batch
  c.push_back(mm({2, 2, 3}, {2, 3, 2}, 15));     // plain batch
  c.push_back(mm({2, 1, 2, 3}, {3, 3, 2}, 17));  // both broadcast -> [2, 3, 2, 2]
  c.push_back(mm({4}, {2, 4, 2}, 19));           // 1-D @ batched
  c.push_back(mm({2, 3, 4}, {4}, 21));           // batched @ 1-D
  c.push_back(mm({1, 3}, {3, 1}, 23));           // size-1 rows and columns

  auto lin = [](const Shape& x, int64_t out, bool bias, uint64_t seed) {
    int64_t in = x.back();
    std::vector<Tensor> inputs{input(x, seed), input({out, in}, seed + 1)};
    if (bias) inputs.push_back(input({out}, seed + 2));
    std::string shapes =
        shape_str(x) + " @ " + shape_str({out, in}) + "^T" + (bias ? " + " + shape_str({out}) : "");
    return OpCase{
        "linear", shapes,
        [bias](const std::vector<Tensor>& v) { return linear(v[0], v[1], bias ? v[2] : Tensor()); },
        inputs};
  };
  c.push_back(lin({3, 4}, 2, true, 31));
  c.push_back(lin({3, 4}, 2, false, 34));
  c.push_back(lin({2, 2, 3}, 3, true, 37));  // batched input folded into rows
  c.push_back(lin({4}, 3, true, 40));        // 1-D input
  c.push_back(lin({1, 1}, 1, true, 43));     // size-1 everything

  auto addmm_case = [](const Shape& x, int64_t out, bool bias, uint64_t seed) {
    int64_t in = x.back();
    std::vector<Tensor> inputs{input(x, seed), input({in, out}, seed + 1)};
    if (bias) inputs.push_back(input({out}, seed + 2));
    std::string shapes = (bias ? shape_str({out}) + " + " : "") + shape_str(x) + " @ " + shape_str({in, out});
    return OpCase{
        "addmm", shapes,
        [bias](const std::vector<Tensor>& v) { return addmm(bias ? v[2] : Tensor(), v[0], v[1]); },
        inputs};
  };
  c.push_back(addmm_case({3, 4}, 2, true, 51));
  c.push_back(addmm_case({3, 4}, 2, false, 54));
  c.push_back(addmm_case({2, 2, 3}, 5, true, 57));  // batched input folded into rows
  c.push_back(addmm_case({4}, 3, true, 60));        // 1-D input
  return c;
}

static const bool registered = register_family("matmul", &matmul_cases);

}  // namespace
}  // namespace tg::catalogue
