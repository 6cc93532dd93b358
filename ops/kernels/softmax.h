#pragma once
// Softmax and log-softmax along the middle axis of x viewed as [outer, n, inner] (inner = 1
// when the axis is the last one: the fast path, rows in parallel). The max is subtracted
// before exp, so large inputs do not overflow. Every output is computed by one task in a fixed
// order: results do not depend on the thread count.
#include <cstdint>

namespace tg::kernels {

/// y = softmax(x) (or log_softmax(x) when `log`) along the n axis. x, y: [outer, n, inner].
template <class T>
void softmax_forward(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log);

/// Gradient from the forward's output y and dy, all [outer, n, inner]:
/// softmax: dx = y * (dy - sum(dy * y)); log_softmax: dx = dy - exp(y) * sum(dy).
template <class T>
void softmax_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t n, int64_t inner,
                      bool log);

}  // namespace tg::kernels
