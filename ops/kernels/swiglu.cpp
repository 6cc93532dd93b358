#include "ops/kernels/swiglu.h"

#include "ops/kernels/fast_math.h"
#include "ops/kernels/parallel.h"

namespace tg::kernels {
namespace {

// sigmoid(g) and silu(g), written as ops/kernels/unary.cpp writes them, so that swiglu gives the
// bits of silu then mul: the vectorisable exp for float, the library's for double.
template <class T>
inline T swiglu_sigmoid(T g) {
  return T(1) / (T(1) + fast_exp(-g));
}
template <class T>
inline T swiglu_silu(T g) {
  return g / (T(1) + fast_exp(-g));
}

}  // namespace

template <class T>
void swiglu_forward(const T* x, T* y, int64_t rows, int64_t I) {
  parallel_for(0, rows, rows_grain(8 * I), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* __restrict g = x + r * 2 * I;
      const T* __restrict u = g + I;
      T* __restrict out = y + r * I;
      for (int64_t i = 0; i < I; ++i) out[i] = swiglu_silu(g[i]) * u[i];
    }
  });
}

template <class T>
void swiglu_backward(const T* x, const T* dy, T* dx, int64_t rows, int64_t I) {
  parallel_for(0, rows, rows_grain(12 * I), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      const T* __restrict g = x + r * 2 * I;
      const T* __restrict u = g + I;
      const T* __restrict d = dy + r * I;
      T* __restrict dg = dx + r * 2 * I;
      T* __restrict du = dg + I;
      for (int64_t i = 0; i < I; ++i) {
        const T s = swiglu_sigmoid(g[i]);
        dg[i] = (d[i] * u[i]) * (s * (T(1) + g[i] * (T(1) - s)));
        du[i] = d[i] * swiglu_silu(g[i]);
      }
    }
  });
}

template void swiglu_forward<float>(const float*, float*, int64_t, int64_t);
template void swiglu_forward<double>(const double*, double*, int64_t, int64_t);
template void swiglu_backward<float>(const float*, const float*, float*, int64_t, int64_t);
template void swiglu_backward<double>(const double*, const double*, double*, int64_t, int64_t);

}  // namespace tg::kernels
