#pragma once
// Reductions over one or more axes, with keepdim, as in PyTorch. An empty axes list means all.
#include <vector>

#include "autograd/tensor.h"

namespace tg {

using Axes = std::vector<int64_t>;

/// Sum over `axes` (all when empty); negative axes count from the end.
Tensor sum(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
/// Maximum over `axes` (torch.amax); the gradient goes to the first arg-max.
Tensor max(const Tensor& x, const Axes& axes = {}, bool keepdim = false);
/// Variance over `axes` with Bessel's `correction` (1 = unbiased, as torch.var's default).
Tensor var(const Tensor& x, const Axes& axes = {}, int64_t correction = 1, bool keepdim = false);
/// log(sum(exp(x))) over `axes`, computed stably.
Tensor logsumexp(const Tensor& x, const Axes& axes, bool keepdim = false);

}  // namespace tg
