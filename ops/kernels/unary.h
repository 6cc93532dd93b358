#pragma once
// Unary elementwise kernels on flat contiguous buffers of n elements: math functions and
// activations with their derivatives, and tensor-with-scalar arithmetic. TBB-parallel over
// chunks; each element is computed the same way whatever the split. For float, exp, sigmoid and
// both GELU forms use exp and erf approximations written to vectorise (exp within 1 ulp, erf
// within 1.5e-7 absolute); double uses the C library.
#include <cstdint>

namespace tg::kernels {

enum class UnaryOp {
  neg,
  exp,
  log,
  sqrt,
  rsqrt,
  tanh,
  sigmoid,
  relu,
  gelu,       ///< exact: 0.5 x (1 + erf(x / sqrt 2))
  gelu_tanh,  ///< 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
  silu,       ///< x · sigmoid(x) (swish; Llama's MLP activation)
};

/// y = op(x).
template <class T>
void unary(UnaryOp op, const T* x, T* y, int64_t n);

/// dx = dy * op'(x). Each rule reads what its op saves: x for log, gelu, gelu_tanh, silu; y = op(x)
/// for exp, sqrt, rsqrt, tanh, sigmoid, relu (the gradient is 0 where y <= 0); neither for neg.
/// The unread pointer may be null.
template <class T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* dy, T* dx, int64_t n);

/// y = x ** exponent.
template <class T>
void pow(const T* x, T exponent, T* y, int64_t n);
/// dx = dy * exponent * x ** (exponent - 1) (0 when exponent is 0, as PyTorch).
template <class T>
void pow_backward(const T* x, T exponent, const T* dy, T* dx, int64_t n);

/// y = min(max(x, lo), hi): hi wherever lo > hi, NaN stays NaN (as torch.clamp). A missing
/// bound is passed as -inf / +inf.
template <class T>
void clamp(const T* x, T lo, T hi, T* y, int64_t n);
/// dx = dy where lo <= x <= hi, else 0.
template <class T>
void clamp_backward(const T* x, T lo, T hi, const T* dy, T* dx, int64_t n);

enum class ScalarOp {
  add,   ///< x + s
  mul,   ///< x * s
  div,   ///< x / s
  rsub,  ///< s - x
  rdiv,  ///< s / x
};

/// y = x op s.
template <class T>
void scalar(ScalarOp op, const T* x, T s, T* y, int64_t n);
/// Gradient of s / x: dx = -dy * s / (x * x).
template <class T>
void rdiv_backward(const T* x, T s, const T* dy, T* dx, int64_t n);

}  // namespace tg::kernels
