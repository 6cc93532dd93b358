#pragma once
// The one place where gradients meet: broadcast gradients are summed back to an input's shape,
// and gradients arriving at the same tensor are added, checking shape and dtype.
#include "autograd/tensor.h"

namespace tg::detail {

/// Sums `g` over the axes along which `shape` was broadcast to g's shape (not recorded).
/// Throws tg::Error naming `op` when `shape` does not broadcast to g's shape.
Tensor sum_to(const Tensor& g, const Shape& shape, const char* op);

/// acc += g. `acc` may be undefined: then it takes g's buffer when this is the only handle to
/// it (g passed by std::move), else a copy. In place when acc's data is seen by nobody else or
/// `in_place` is true; otherwise a new buffer. Throws tg::Error naming `op` on a shape or dtype
/// mismatch.
void add_grad(Tensor& acc, Tensor g, const char* op, bool in_place = false);

}  // namespace tg::detail
