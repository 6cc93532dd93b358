#include "ops/kernels/unary.h"

#include "ops/kernels/fast_math.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <type_traits>

#include "ops/kernels/parallel.h"

namespace tg::kernels {
namespace {

// Elements per task: the elementwise grain for a few flops per element, less for a math call.
constexpr int64_t kCheap = kElementwiseGrain;
constexpr int64_t kCostly = kElementwiseGrain / 8;

// out[i] = f(a[i]) / f(a[i], b[i]): plain loops the compiler vectorises where f allows (the
// restrict tells it out overlaps no input; ops always write a fresh buffer).
template <class T, class F>
void loop(const F& f, const T* a, T* __restrict out, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) out[i] = f(a[i]);
}
template <class T, class F>
void loop(const F& f, const T* a, const T* b, T* __restrict out, int64_t lo, int64_t hi) {
  for (int64_t i = lo; i < hi; ++i) out[i] = f(a[i], b[i]);
}

template <class T, class F>
void map(int64_t grain, const T* a, T* out, int64_t n, const F& f) {
  parallel_for(0, n, grain, [&](int64_t lo, int64_t hi) { loop(f, a, out, lo, hi); });
}
template <class T, class F>
void map(int64_t grain, const T* a, const T* b, T* out, int64_t n, const F& f) {
  parallel_for(0, n, grain, [&](int64_t lo, int64_t hi) { loop(f, a, b, out, lo, hi); });
}

// The exp and erf used by the kernels: the vectorisable ones for float, the library's for double
// (f64 serves gradient checks, where accuracy matters more than speed).
template <class T>
inline T exp_of(T x) {
  if constexpr (std::is_same_v<T, float>)
    return fast_exp(x);
  else
    return std::exp(x);
}

template <class T>
inline T erf_of(T x) {
  if constexpr (std::is_same_v<T, float>)
    return fast_erf(x);
  else
    return std::erf(x);
}

// erf(z) where e = e^(-z^2) is already computed (float's formula uses it; double's does not).
template <class T>
inline T erf_given_exp(T z, T e) {
  if constexpr (std::is_same_v<T, float>)
    return fast_erf_given_exp(z, e);
  else
    return std::erf(z);
}

template <class T> constexpr T kSqrtHalf = T(0.70710678118654752440);     // 1 / sqrt(2)
template <class T> constexpr T kInvSqrt2Pi = T(0.39894228040143267794);   // 1 / sqrt(2 pi)
template <class T> constexpr T kSqrt2OverPi = T(0.79788456080286535588);  // sqrt(2 / pi)
template <class T> constexpr T kKappa = T(0.044715);

}  // namespace

template <class T>
void unary(UnaryOp op, const T* x, T* y, int64_t n) {
  switch (op) {
    case UnaryOp::neg: return map(kCheap, x, y, n, [](T v) { return -v; });
    case UnaryOp::exp: return map(kCostly, x, y, n, [](T v) { return exp_of(v); });
    case UnaryOp::log: return map(kCostly, x, y, n, [](T v) { return std::log(v); });
    case UnaryOp::sqrt: return map(kCheap, x, y, n, [](T v) { return std::sqrt(v); });
    case UnaryOp::rsqrt: return map(kCheap, x, y, n, [](T v) { return T(1) / std::sqrt(v); });
    case UnaryOp::tanh: return map(kCostly, x, y, n, [](T v) { return std::tanh(v); });
    case UnaryOp::sigmoid:
      return map(kCostly, x, y, n, [](T v) { return T(1) / (T(1) + exp_of(-v)); });
    // `v < 0 ? 0 : v` keeps NaN, as torch.relu.
    case UnaryOp::relu: return map(kCheap, x, y, n, [](T v) { return v < T(0) ? T(0) : v; });
    case UnaryOp::gelu:
      return map(kCostly, x, y, n,
                 [](T v) { return T(0.5) * v * (T(1) + erf_of(v * kSqrtHalf<T>)); });
    case UnaryOp::gelu_tanh:
      // 0.5 (1 + tanh(u)) = sigmoid(2u): one exp, and no cancellation in 1 + tanh(u) for x < 0.
      return map(kCostly, x, y, n, [](T v) {
        T inner = kSqrt2OverPi<T> * (v + kKappa<T> * v * v * v);
        return v / (T(1) + exp_of(T(-2) * inner));
      });
    case UnaryOp::silu: return map(kCostly, x, y, n, [](T v) { return v / (T(1) + exp_of(-v)); });
  }
}

template <class T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* dy, T* dx, int64_t n) {
  switch (op) {
    case UnaryOp::neg: return map(kCheap, dy, dx, n, [](T g) { return -g; });
    case UnaryOp::exp: return map(kCheap, y, dy, dx, n, [](T v, T g) { return g * v; });
    case UnaryOp::log: return map(kCheap, x, dy, dx, n, [](T v, T g) { return g / v; });
    case UnaryOp::sqrt: return map(kCheap, y, dy, dx, n, [](T v, T g) { return g / (T(2) * v); });
    case UnaryOp::rsqrt:  // d/dx x^(-1/2) = -1/2 x^(-3/2) = -1/2 y^3
      return map(kCheap, y, dy, dx, n, [](T v, T g) { return T(-0.5) * g * (v * v * v); });
    case UnaryOp::tanh:
      return map(kCheap, y, dy, dx, n, [](T v, T g) { return g * (T(1) - v * v); });
    case UnaryOp::sigmoid:
      return map(kCheap, y, dy, dx, n, [](T v, T g) { return g * ((T(1) - v) * v); });
    case UnaryOp::relu:
      return map(kCheap, y, dy, dx, n, [](T v, T g) { return v > T(0) ? g : T(0); });
    case UnaryOp::gelu:  // d/dx x Phi(x) = Phi(x) + x phi(x); phi's exponential is erf's too
      return map(kCostly, x, dy, dx, n, [](T v, T g) {
        T z = v * kSqrtHalf<T>;
        T e = exp_of(-z * z);  // e^(-x^2 / 2)
        T cdf = T(0.5) * (T(1) + erf_given_exp(z, e));
        return g * (cdf + v * (kInvSqrt2Pi<T> * e));
      });
    case UnaryOp::gelu_tanh:
      // Product rule on x * s with s = sigmoid(2u) = 0.5 (1 + tanh(u)): s + 2 x s (1 - s) u'.
      return map(kCostly, x, dy, dx, n, [](T v, T g) {
        T inner = kSqrt2OverPi<T> * (v + kKappa<T> * v * v * v);
        T s = T(1) / (T(1) + exp_of(T(-2) * inner));
        T dinner = kSqrt2OverPi<T> * (T(1) + T(3) * kKappa<T> * v * v);
        return g * (s + T(2) * v * s * (T(1) - s) * dinner);
      });
    case UnaryOp::silu:  // d/dx x s(x) = s + x s (1 - s)
      return map(kCostly, x, dy, dx, n, [](T v, T g) {
        T s = T(1) / (T(1) + exp_of(-v));
        return g * (s * (T(1) + v * (T(1) - s)));
      });
  }
}

template <class T>
void pow(const T* x, T e, T* y, int64_t n) {
  // Exact forms for the common exponents (as PyTorch), std::pow otherwise.
  if (e == T(2)) return map(kCheap, x, y, n, [](T v) { return v * v; });
  if (e == T(3)) return map(kCheap, x, y, n, [](T v) { return v * v * v; });
  if (e == T(0.5)) return map(kCheap, x, y, n, [](T v) { return std::sqrt(v); });
  if (e == T(-0.5)) return map(kCheap, x, y, n, [](T v) { return T(1) / std::sqrt(v); });
  if (e == T(-1)) return map(kCheap, x, y, n, [](T v) { return T(1) / v; });
  if (e == T(-2)) return map(kCheap, x, y, n, [](T v) { return T(1) / (v * v); });
  map(kCostly, x, y, n, [e](T v) { return std::pow(v, e); });
}

template <class T>
void pow_backward(const T* x, T e, const T* dy, T* dx, int64_t n) {
  if (e == T(0)) return map(kCheap, dy, dx, n, [](T) { return T(0); });
  if (e == T(2)) return map(kCheap, x, dy, dx, n, [](T v, T g) { return g * (T(2) * v); });
  map(kCostly, x, dy, dx, n, [e](T v, T g) { return g * (e * std::pow(v, e - T(1))); });
}

template <class T>
void clamp(const T* x, T lo, T hi, T* y, int64_t n) {
  // std::max(v, lo) is (v < lo ? lo : v): NaN stays NaN.
  map(kCheap, x, y, n, [lo, hi](T v) { return std::min(std::max(v, lo), hi); });
}

template <class T>
void clamp_backward(const T* x, T lo, T hi, const T* dy, T* dx, int64_t n) {
  map(kCheap, x, dy, dx, n, [lo, hi](T v, T g) { return v >= lo && v <= hi ? g : T(0); });
}

template <class T>
void scalar(ScalarOp op, const T* x, T s, T* y, int64_t n) {
  switch (op) {
    case ScalarOp::add: return map(kCheap, x, y, n, [s](T v) { return v + s; });
    case ScalarOp::mul: return map(kCheap, x, y, n, [s](T v) { return v * s; });
    case ScalarOp::div: return map(kCheap, x, y, n, [s](T v) { return v / s; });
    case ScalarOp::rsub: return map(kCheap, x, y, n, [s](T v) { return s - v; });
    case ScalarOp::rdiv: return map(kCheap, x, y, n, [s](T v) { return s / v; });
  }
}

template <class T>
void rdiv_backward(const T* x, T s, const T* dy, T* dx, int64_t n) {
  map(kCheap, x, dy, dx, n, [s](T v, T g) { return -g * s / (v * v); });
}

#define TG_UNARY_INSTANTIATE(T)                                                       \
  template void unary<T>(UnaryOp, const T*, T*, int64_t);                             \
  template void unary_backward<T>(UnaryOp, const T*, const T*, const T*, T*, int64_t); \
  template void pow<T>(const T*, T, T*, int64_t);                                     \
  template void pow_backward<T>(const T*, T, const T*, T*, int64_t);                  \
  template void clamp<T>(const T*, T, T, T*, int64_t);                                \
  template void clamp_backward<T>(const T*, T, T, const T*, T*, int64_t);             \
  template void scalar<T>(ScalarOp, const T*, T, T*, int64_t);                        \
  template void rdiv_backward<T>(const T*, T, const T*, T*, int64_t);
TG_UNARY_INSTANTIATE(float)
TG_UNARY_INSTANTIATE(double)
#undef TG_UNARY_INSTANTIATE

}  // namespace tg::kernels
