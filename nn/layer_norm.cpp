#include "nn/layer_norm.h"

#include "autograd/error.h"
#include "ops/norm.h"

namespace tg::nn {

LayerNorm::LayerNorm(const LayerNormOptions& opts) : Module("LayerNorm"), options(opts) {
  TG_CHECK(!opts.normalized_shape().empty() && numel(opts.normalized_shape()) > 0,
           "LayerNorm: normalized_shape must be non-empty with positive sizes, got {}",
           shape_str(opts.normalized_shape()));
  TG_CHECK(opts.eps() > 0, "LayerNorm: eps must be positive, got {}", opts.eps());
  if (opts.elementwise_affine()) {
    weight = register_parameter("weight", ones(opts.normalized_shape(), opts.dtype()));
    if (opts.bias()) bias = register_parameter("bias", zeros(opts.normalized_shape(), opts.dtype()));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  return layer_norm(x, options.normalized_shape(), weight, bias, options.eps());
}

std::string LayerNorm::extra_repr() const {
  return fmt::format("{}, eps={}, elementwise_affine={}", shape_str(options.normalized_shape()),
                     options.eps(), options.elementwise_affine());
}

}  // namespace tg::nn
