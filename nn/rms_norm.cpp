#include "nn/rms_norm.h"

#include "autograd/error.h"
#include "ops/rms_norm.h"

namespace tg::nn {

RMSNorm::RMSNorm(const RMSNormOptions& opts) : Module("RMSNorm"), options(opts) {
  TG_CHECK(!opts.normalized_shape().empty() && numel(opts.normalized_shape()) > 0,
           "RMSNorm: normalized_shape must be non-empty with positive sizes, got {}", shape_str(opts.normalized_shape()));
  TG_CHECK(!opts.eps() || *opts.eps() >= 0, "RMSNorm: eps must be >= 0, got {}", opts.eps().value_or(0));
  if (opts.elementwise_affine()) weight = register_parameter("weight", ones(opts.normalized_shape(), opts.dtype()));
}

Tensor RMSNorm::forward(const Tensor& x) { return rms_norm(x, options.normalized_shape(), weight, options.eps()); }

std::string RMSNorm::extra_repr() const {
  return fmt::format("{}, eps={}, elementwise_affine={}", shape_str(options.normalized_shape()),
                     options.eps() ? fmt::format("{}", *options.eps()) : "None", options.elementwise_affine());
}

}  // namespace tg::nn
