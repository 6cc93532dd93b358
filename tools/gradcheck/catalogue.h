#pragma once
// The op catalogue that `tapegrad gradcheck` runs and tests/tools checks case by case: every
// op, on random shapes (broadcast, size-1 and empty axes where they make sense), with the
// gradcheck options it needs. Each op family registers its cases from its own file.
#include <string>
#include <vector>

#include "autograd/gradcheck.h"

namespace tg::catalogue {

struct OpCase {
  std::string op;                ///< "mul"
  std::string shapes;            ///< "[3, 1] * [1, 4]"
  GradcheckFn fn;                ///< computes the op from the inputs
  std::vector<Tensor> inputs;    ///< f64 inputs (integer/bool ones pass through unchecked)
  GradcheckOptions options = {}; ///< verbose is turned off by the runners
};

using CaseList = std::vector<OpCase> (*)();

/// Adds a family's cases to the catalogue; use through a namespace-scope static:
///   static const bool registered = tg::catalogue::register_family("binary", &binary_cases);
bool register_family(const char* family, CaseList cases);

/// Every case of every registered family, families in name order.
std::vector<OpCase> all_cases();

/// An f64 input uniform in [lo, hi), drawn from Generator(seed).
Tensor uniform(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0);

}  // namespace tg::catalogue
