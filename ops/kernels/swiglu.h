#pragma once
// SwiGLU's gating on a fused gate/up projection: each row of x holds I gate values g, then I up
// values u; y = silu(g) · u = g · sigmoid(g) · u.
#include <cstdint>

namespace tg::kernels {

/// x [rows, 2I] -> y [rows, I].
template <class T>
void swiglu_forward(const T* x, T* y, int64_t rows, int64_t I);

/// dy [rows, I] -> dx [rows, 2I]: dg = dy · u · s (1 + g (1 - s)) with s = sigmoid(g),
/// du = dy · silu(g).
template <class T>
void swiglu_backward(const T* x, const T* dy, T* dx, int64_t rows, int64_t I);

}  // namespace tg::kernels
