// Gradcheck cases of softmax and log_softmax along the last, first and a middle axis.
#include "ops/softmax.h"
#include "tools/gradcheck/catalogue.h"

namespace tg {
namespace {

Tensor uniform(const Shape& shape, uint64_t seed) { return catalogue::uniform(shape, seed, -2, 2); }

std::vector<catalogue::OpCase> softmax_cases() {
  std::vector<catalogue::OpCase> cases;
  struct Spec {
    Shape shape;
    int64_t axis;
  };
  const std::vector<Spec> specs = {{{3, 5}, -1}, {{3, 5}, 0}, {{2, 3, 4}, 1}, {{2, 1, 4}, 1}, {{6}, 0}};
  uint64_t seed = 100;
  for (const Spec& s : specs) {
    int64_t axis = s.axis;
    std::string d = shape_str(s.shape) + " axis " + std::to_string(axis);
    cases.push_back({"softmax", d, [=](const std::vector<Tensor>& in) { return softmax(in[0], axis); },
                     {uniform(s.shape, seed++)}});
    cases.push_back({"log_softmax", d,
                     [=](const std::vector<Tensor>& in) { return log_softmax(in[0], axis); },
                     {uniform(s.shape, seed++)}});
  }
  return cases;
}

}  // namespace
}  // namespace tg

static const bool registered = tg::catalogue::register_family("softmax", &tg::softmax_cases);
