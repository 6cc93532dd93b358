#pragma once
// backward(): seeds d(loss)/d(loss) and replays the tape in reverse, accumulating (+=) into
// each leaf's grad().
#include "autograd/tensor.h"

namespace tg {

/// Computes the gradients of `root` with respect to every leaf that requires them, adding them
/// into each leaf's grad(). A non-scalar root needs `grad` (same shape and dtype as root). The
/// nodes used are released afterwards unless `retain_graph`, as torch.autograd.backward.
void backward(const Tensor& root, const Tensor& grad = Tensor(), bool retain_graph = false);

}  // namespace tg
