#include "ops/kernels/reduce.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "ops/kernels/fold_axes.h"
#include "ops/kernels/parallel.h"
#include "ops/kernels/reduce_sum.h"

namespace tg::kernels {
namespace {

int64_t count(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

// The folded axes (fold_axes.h) with the strides of each merged axis in the input and in the
// output.
struct StridedAxes {
  std::vector<int64_t> size, in_stride, out_stride;
  std::vector<bool> reduced;
  size_t rank() const { return size.size(); }
};

StridedAxes strided_fold(const std::vector<int64_t>& in_shape, const std::vector<int64_t>& out_shape) {
  FoldedAxes axes = fold_axes(in_shape, out_shape);
  StridedAxes f{std::move(axes.size), {}, {}, std::move(axes.reduced)};
  size_t r = f.rank();
  f.in_stride.assign(r, 1);
  f.out_stride.assign(r, 1);
  for (size_t i = r; i-- > 1;) {
    f.in_stride[i - 1] = f.in_stride[i] * f.size[i];
    f.out_stride[i - 1] = f.out_stride[i] * (f.reduced[i] ? 1 : f.size[i]);
  }
  return f;
}

// Visits the input from folded axis `axis` on, in row-major order, as runs along the innermost
// axis: fn.reduced(i, n, j) for inputs i..i+n-1 that all map to output j, fn.kept(i, n, j) for
// inputs i..i+n-1 that map to outputs j..j+n-1. Depth is at most the rank.
template <class Fn>
void visit(const StridedAxes& f, size_t axis, int64_t i, int64_t j, const Fn& fn) {
  int64_t n = f.size[axis];
  if (axis + 1 == f.rank()) {
    if (f.reduced[axis])
      fn.reduced(i, n, j);
    else
      fn.kept(i, n, j);
    return;
  }
  int64_t j_step = f.reduced[axis] ? 0 : f.out_stride[axis];
  for (int64_t k = 0; k < n; ++k) visit(f, axis + 1, i + k * f.in_stride[axis], j + k * j_step, fn);
}

// Runs fn over the whole (non-empty) input. The outer folded axis is split across threads when
// the parts write disjoint memory: always when fn writes input-shaped data (backward), only
// along a kept axis when it writes outputs. Each output is then still accumulated by one task
// in a fixed order, so the thread count never changes a result.
template <class Fn>
void run(const StridedAxes& f, const Fn& fn, bool writes_input) {
  if (f.rank() == 0) {  // a single element
    fn.kept(0, 1, 0);
    return;
  }
  int64_t n = f.size[0];
  if (f.rank() == 1) {
    if (!writes_input) {
      visit(f, 0, 0, 0, fn);
      return;
    }
    parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
      if (f.reduced[0])
        fn.reduced(lo, hi - lo, 0);
      else
        fn.kept(lo, hi - lo, lo);
    });
    return;
  }
  if (f.reduced[0] && !writes_input) {
    visit(f, 0, 0, 0, fn);
    return;
  }
  int64_t j_step = f.reduced[0] ? 0 : f.out_stride[0];
  parallel_for(0, n, rows_grain(f.in_stride[0]), [&](int64_t lo, int64_t hi) {
    for (int64_t k = lo; k < hi; ++k) visit(f, 1, k * f.in_stride[0], k * j_step, fn);
  });
}

// A NaN beats any number and then stays; otherwise strictly greater, so the first maximum wins.
template <class T>
bool beats(T v, T m) {
  return v > m || (v != v && m == m);
}

// Running max; with kIndices also the flat input index of the first maximum (-1 = none yet).
template <class T, bool kIndices>
struct MaxFn {
  const T* x;
  T* out;
  int64_t* idx;
  void reduced(int64_t i, int64_t n, int64_t j) const {
    T m = out[j];
    int64_t a = kIndices ? idx[j] : 0;
    for (int64_t k = 0; k < n; ++k) {
      if ((kIndices && a < 0) || beats(x[i + k], m)) {
        m = x[i + k];
        a = i + k;
      }
    }
    out[j] = m;
    if constexpr (kIndices) idx[j] = a;
  }
  void kept(int64_t i, int64_t n, int64_t j) const {
    for (int64_t k = 0; k < n; ++k) {
      if ((kIndices && idx[j + k] < 0) || beats(x[i + k], out[j + k])) {
        out[j + k] = x[i + k];
        if constexpr (kIndices) idx[j + k] = i + k;
      }
    }
  }
};

// out[j] += sum of (x - mean[j])^2.
template <class T>
struct SquaredDeviationFn {
  const T* x;
  const T* mean;
  T* out;
  void reduced(int64_t i, int64_t n, int64_t j) const {
    T m = mean[j], acc = 0;
    for (int64_t k = 0; k < n; ++k) {
      T d = x[i + k] - m;
      acc += d * d;
    }
    out[j] += acc;
  }
  void kept(int64_t i, int64_t n, int64_t j) const {
    for (int64_t k = 0; k < n; ++k) {
      T d = x[i + k] - mean[j + k];
      out[j + k] += d * d;
    }
  }
};

// sum[j] += sum of exp(x - shift[j]).
template <class T>
struct ExpSumFn {
  const T* x;
  const T* shift;
  T* sum;
  void reduced(int64_t i, int64_t n, int64_t j) const {
    T s = shift[j], acc = 0;
    for (int64_t k = 0; k < n; ++k) acc += std::exp(x[i + k] - s);
    sum[j] += acc;
  }
  void kept(int64_t i, int64_t n, int64_t j) const {
    for (int64_t k = 0; k < n; ++k) sum[j + k] += std::exp(x[i + k] - shift[j + k]);
  }
};

template <class T>
struct BroadcastFn {
  const T* dout;
  T* dx;
  T scale;
  void reduced(int64_t i, int64_t n, int64_t j) const {
    T g = scale * dout[j];
    for (int64_t k = 0; k < n; ++k) dx[i + k] = g;
  }
  void kept(int64_t i, int64_t n, int64_t j) const {
    for (int64_t k = 0; k < n; ++k) dx[i + k] = scale * dout[j + k];
  }
};

template <class T>
struct VarBackwardFn {
  const T* x;
  const T* mean;
  const T* dout;
  T* dx;
  T scale;
  void reduced(int64_t i, int64_t n, int64_t j) const {
    T g = scale * dout[j], m = mean[j];
    for (int64_t k = 0; k < n; ++k) dx[i + k] = g * (x[i + k] - m);
  }
  void kept(int64_t i, int64_t n, int64_t j) const {
    for (int64_t k = 0; k < n; ++k) dx[i + k] = scale * dout[j + k] * (x[i + k] - mean[j + k]);
  }
};

template <class T>
struct LogsumexpBackwardFn {
  const T* x;
  const T* lse;
  const T* dout;
  T* dx;
  static T grad(T g, T xv, T l) { return l == -std::numeric_limits<T>::infinity() ? T(0) : g * std::exp(xv - l); }
  void reduced(int64_t i, int64_t n, int64_t j) const {
    T g = dout[j], l = lse[j];
    for (int64_t k = 0; k < n; ++k) dx[i + k] = grad(g, x[i + k], l);
  }
  void kept(int64_t i, int64_t n, int64_t j) const {
    for (int64_t k = 0; k < n; ++k) dx[i + k] = grad(dout[j + k], x[i + k], lse[j + k]);
  }
};

}  // namespace

template <class T>
void max_reduce(const T* in, const std::vector<int64_t>& in_shape, T* out, int64_t* indices,
                const std::vector<int64_t>& out_shape) {
  if (count(in_shape) == 0) return;  // then there are no outputs either (checked by the op)
  int64_t out_n = count(out_shape);
  std::fill(out, out + out_n, -std::numeric_limits<T>::infinity());
  std::fill(indices, indices + out_n, int64_t(-1));
  run(strided_fold(in_shape, out_shape), MaxFn<T, true>{in, out, indices}, false);
}

template <class T>
void var_reduce(const T* in, const std::vector<int64_t>& in_shape, T* mean, T* out,
                const std::vector<int64_t>& out_shape, int64_t correction) {
  int64_t in_n = count(in_shape), out_n = count(out_shape);
  if (out_n == 0) return;
  int64_t n = in_n / out_n;
  // Both 0/0 (NaN) for an empty reduction, as PyTorch; a divisor of 0 gives inf or NaN.
  T divisor = static_cast<T>(std::max<int64_t>(0, n - correction));
  sum_to_shape(in, in_shape, mean, out_shape);
  for (int64_t j = 0; j < out_n; ++j) mean[j] /= static_cast<T>(n);
  std::fill(out, out + out_n, T(0));
  if (in_n > 0) run(strided_fold(in_shape, out_shape), SquaredDeviationFn<T>{in, mean, out}, false);
  for (int64_t j = 0; j < out_n; ++j) out[j] /= divisor;
}

template <class T>
void logsumexp_reduce(const T* in, const std::vector<int64_t>& in_shape, T* out,
                      const std::vector<int64_t>& out_shape) {
  int64_t in_n = count(in_shape), out_n = count(out_shape);
  if (out_n == 0) return;
  std::fill(out, out + out_n, -std::numeric_limits<T>::infinity());
  std::vector<T> sum(static_cast<size_t>(out_n), T(0));
  if (in_n > 0) {
    StridedAxes f = strided_fold(in_shape, out_shape);
    run(f, MaxFn<T, false>{in, out, nullptr}, false);
    // An infinite max (all -inf, or some +inf) is not subtracted: x - max would be NaN.
    for (int64_t j = 0; j < out_n; ++j)
      if (std::isinf(out[j])) out[j] = 0;
    run(f, ExpSumFn<T>{in, out, sum.data()}, false);
  } else {
    std::fill(out, out + out_n, T(0));
  }
  for (int64_t j = 0; j < out_n; ++j) out[j] += std::log(sum[static_cast<size_t>(j)]);
}

template <class T>
void broadcast_scaled(const T* dout, const std::vector<int64_t>& out_shape, T* dx,
                      const std::vector<int64_t>& in_shape, T scale) {
  if (count(in_shape) == 0) return;
  run(strided_fold(in_shape, out_shape), BroadcastFn<T>{dout, dx, scale}, true);
}

template <class T>
void var_backward(const T* x, const T* mean, const T* dout, T* dx,
                  const std::vector<int64_t>& in_shape, const std::vector<int64_t>& out_shape,
                  T scale) {
  if (count(in_shape) == 0) return;
  run(strided_fold(in_shape, out_shape), VarBackwardFn<T>{x, mean, dout, dx, scale}, true);
}

template <class T>
void logsumexp_backward(const T* x, const T* lse, const T* dout, T* dx,
                        const std::vector<int64_t>& in_shape,
                        const std::vector<int64_t>& out_shape) {
  if (count(in_shape) == 0) return;
  run(strided_fold(in_shape, out_shape), LogsumexpBackwardFn<T>{x, lse, dout, dx}, true);
}

template <class T>
void max_backward(const T* dout, const int64_t* indices, int64_t n_out, T* dx, int64_t n_in) {
  parallel_for(0, n_in, kElementwiseGrain,
               [&](int64_t lo, int64_t hi) { std::fill(dx + lo, dx + hi, T(0)); });
  for (int64_t j = 0; j < n_out; ++j) dx[indices[j]] = dout[j];  // distinct indices
}

#define TG_INSTANTIATE(T)                                                                      \
  template void max_reduce<T>(const T*, const std::vector<int64_t>&, T*, int64_t*,             \
                              const std::vector<int64_t>&);                                    \
  template void var_reduce<T>(const T*, const std::vector<int64_t>&, T*, T*,                   \
                              const std::vector<int64_t>&, int64_t);                           \
  template void logsumexp_reduce<T>(const T*, const std::vector<int64_t>&, T*,                 \
                                    const std::vector<int64_t>&);                              \
  template void broadcast_scaled<T>(const T*, const std::vector<int64_t>&, T*,                 \
                                    const std::vector<int64_t>&, T);                           \
  template void var_backward<T>(const T*, const T*, const T*, T*, const std::vector<int64_t>&, \
                                const std::vector<int64_t>&, T);                               \
  template void logsumexp_backward<T>(const T*, const T*, const T*, T*,                        \
                                      const std::vector<int64_t>&, const std::vector<int64_t>&); \
  template void max_backward<T>(const T*, const int64_t*, int64_t, T*, int64_t);
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE

}  // namespace tg::kernels
