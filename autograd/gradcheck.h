#pragma once
// gradcheck: compares the gradients backward() computes with central finite differences, in
// f64, over the full Jacobian, as torch.autograd.gradcheck does.
#include <functional>
#include <string>
#include <vector>

#include "autograd/tensor.h"

namespace tg {

struct GradcheckOptions {
  double eps = 1e-6;   ///< finite-difference step
  double atol = 1e-5;  ///< passes when |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-3;
  bool verbose = true; ///< print the one-line summary to stdout
};

/// Where the worst error of a gradcheck happened.
struct GradcheckWorst {
  double error = 0;    ///< absolute or relative, as the field says
  size_t input = 0;    ///< which input
  int64_t element = 0; ///< flat index into that input
  int64_t output = 0;  ///< flat index into the output
  double analytic = 0, numeric = 0;
};

struct GradcheckResult {
  bool passed = true;
  GradcheckWorst max_abs;  ///< largest |analytic - numeric|
  GradcheckWorst max_rel;  ///< largest |analytic - numeric| / max(|analytic|, |numeric|), over
                           ///< entries larger than atol
  int64_t checked = 0;     ///< Jacobian entries compared
  /// "max abs 1.2e-10 (input 0 [3], output [1]) max rel 3.4e-09 (...)".
  std::string summary() const;
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

/// Checks d f(inputs) / d inputs. Inputs are copied to f64 leaves; those marked requires_grad
/// are checked (all floating inputs when none is marked); integer and bool inputs pass through.
/// f must return a floating tensor computed from its arguments.
GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace tg
