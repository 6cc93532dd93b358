#include "nn/conv1d.h"

#include "autograd/error.h"
#include "nn/init.h"
#include "ops/binary.h"
#include "ops/matmul.h"

namespace tg::nn {

Conv1D::Conv1D(const Conv1DOptions& opts, Generator* gen) : Module("Conv1D"), options(opts) {
  TG_CHECK(opts.in_features() > 0 && opts.out_features() > 0,
           "Conv1D: in_features and out_features must be positive, got {} and {}", opts.in_features(),
           opts.out_features());
  TG_CHECK(is_floating(opts.dtype()), "Conv1D: dtype must be f32 or f64, got {}", opts.dtype());
  weight = register_parameter("weight", empty({opts.in_features(), opts.out_features()}, opts.dtype()));
  if (opts.bias()) bias = register_parameter("bias", empty({opts.out_features()}, opts.dtype()));
  reset_parameters(gen ? *gen : default_generator());
}

void Conv1D::reset_parameters(Generator& gen, double std) {
  init::normal_(weight, 0.0, std, gen);
  if (bias.defined()) init::zeros_(bias);
}

Tensor Conv1D::forward(const Tensor& x) {
  TG_CHECK(x.dim() >= 1 && x.size(-1) == options.in_features(),
           "Conv1D: input of shape {} has last size {}, expected in_features={}", shape_str(x.shape()),
           x.dim() ? x.size(-1) : 0, options.in_features());
  // x's leading axes fold into the rows of one GEMM: [N, in] · [in, out], the bias written
  // into the output first (torch.addmm).
  return addmm(bias, x, weight);
}

std::string Conv1D::extra_repr() const {
  return fmt::format("nx={}, nf={}, bias={}", options.in_features(), options.out_features(),
                     options.bias());
}

}  // namespace tg::nn
