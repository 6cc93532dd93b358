#include "tools/gradcheck/catalogue.h"

#include <map>

namespace tg::catalogue {
namespace {

std::map<std::string, CaseList>& families() {
  static std::map<std::string, CaseList> f;
  return f;
}

}  // namespace

bool register_family(const char* family, CaseList cases) {
  families()[family] = cases;
  return true;
}

std::vector<OpCase> all_cases() {
  std::vector<OpCase> all;
  for (auto& [name, cases] : families())
    for (OpCase& c : cases()) all.push_back(std::move(c));
  return all;
}

Tensor uniform(const Shape& shape, uint64_t seed, double lo, double hi) {
  Generator gen(seed);
  Tensor t = rand(shape, gen, DType::f64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = lo + (hi - lo) * p[i];
  return t;
}

}  // namespace tg::catalogue
