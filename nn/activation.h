#pragma once
// Activation and regularisation layers without parameters: GELU, Dropout.
#include <string>

#include "nn/module.h"
#include "nn/options.h"

namespace tg::nn {

struct GELUOptions {
  /// "none" (exact, erf) or "tanh", as torch.nn.GELU(approximate=...).
  TG_ARG(std::string, approximate, "none");
};

class GELU : public Module {
 public:
  explicit GELU(const GELUOptions& options = {});
  Tensor forward(const Tensor& x) override;
  GELUOptions options;

 protected:
  std::string extra_repr() const override { return "approximate='" + options.approximate() + "'"; }
};

struct DropoutOptions {
  explicit DropoutOptions(double p = 0.5) : p_(p) {}
  TG_ARG(double, p, 0.5);
};

/// Zeroes elements with probability p in training (scaling the rest by 1/(1-p)); identity in
/// eval(). Draws from default_generator().
class Dropout : public Module {
 public:
  explicit Dropout(const DropoutOptions& options = DropoutOptions());
  Tensor forward(const Tensor& x) override;
  DropoutOptions options;

 protected:
  std::string extra_repr() const override;
};

}  // namespace tg::nn
