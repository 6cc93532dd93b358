#include "nn/linear.h"

#include <cmath>

#include "autograd/error.h"
#include "nn/init.h"
#include "ops/matmul.h"

namespace tg::nn {

Linear::Linear(const LinearOptions& opts) : Module("Linear"), options(opts) {
  TG_CHECK(opts.in_features() > 0 && opts.out_features() > 0,
           "Linear: in_features and out_features must be positive, got {} and {}",
           opts.in_features(), opts.out_features());
  weight = register_parameter("weight", empty({opts.out_features(), opts.in_features()}, opts.dtype()));
  if (opts.bias()) bias = register_parameter("bias", empty({opts.out_features()}, opts.dtype()));
  reset_parameters();
}

void Linear::reset_parameters() {
  // PyTorch: kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(in), 1/sqrt(in)); the bias uses the same bound.
  double bound = 1.0 / std::sqrt(static_cast<double>(options.in_features()));
  init::uniform_(weight, -bound, bound);
  if (bias.defined()) init::uniform_(bias, -bound, bound);
}

Tensor Linear::forward(const Tensor& x) {
  TG_CHECK(x.dim() >= 1 && x.size(-1) == options.in_features(),
           "Linear: input of shape {} has last size {}, expected in_features={}", shape_str(x.shape()),
           x.dim() ? x.size(-1) : 0, options.in_features());
  return linear(x, weight, bias);
}

std::string Linear::extra_repr() const {
  return fmt::format("in_features={}, out_features={}, bias={}", options.in_features(),
                     options.out_features(), options.bias());
}

}  // namespace tg::nn
