#include "nn/activation.h"

#include "autograd/error.h"
#include "ops/dropout.h"
#include "ops/unary.h"

namespace tg::nn {

GELU::GELU(const GELUOptions& opts) : Module("GELU"), options(opts) {
  TG_CHECK(opts.approximate() == "none" || opts.approximate() == "tanh",
           "GELU: approximate must be 'none' or 'tanh', got '{}'", opts.approximate());
}

Tensor GELU::forward(const Tensor& x) { return gelu(x, options.approximate()); }

Dropout::Dropout(const DropoutOptions& opts) : Module("Dropout"), options(opts) {
  TG_CHECK(opts.p() >= 0 && opts.p() <= 1, "Dropout: p must be in [0, 1], got {}", opts.p());
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, options.p(), is_training()); }

std::string Dropout::extra_repr() const { return fmt::format("p={}", options.p()); }

}  // namespace tg::nn
