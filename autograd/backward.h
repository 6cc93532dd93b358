#pragma once
// backward(): seeds d(loss)/d(loss) and replays the tape in reverse, accumulating (+=) into
// each leaf's grad().
#include "autograd/tensor.h"

namespace tg {

/// Computes the gradients of `root` with respect to every leaf that requires them, adding them
/// into each leaf's grad(). A non-scalar root needs `grad` (same shape and dtype as root). The
/// nodes used are released afterwards unless `retain_graph`, as torch.autograd.backward.
void backward(const Tensor& root, const Tensor& grad = Tensor(), bool retain_graph = false);

namespace detail {
/// backward() that replays only the nodes recorded at or after `first_seq` on this thread: a
/// backward run inside a gradient rule (checkpoint's recomputation) must not touch the nodes of
/// the outer backward still waiting on the tape.
void backward_since(const Tensor& root, const Tensor& grad, uint64_t first_seq);
}  // namespace detail

}  // namespace tg
