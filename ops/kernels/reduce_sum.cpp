#include "ops/kernels/reduce_sum.h"

#include <algorithm>

#include "ops/kernels/fold_axes.h"
#include "ops/kernels/parallel.h"

namespace tg::kernels {
namespace {

// Sums one outer slice: axes [axis, rank) of `f`, adding into out (whose strides skip reduced
// axes). Depth is the number of folded axes, at most the rank.
template <class T>
void sum_rec(const FoldedAxes& f, size_t axis, const T* in, T* out) {
  int64_t n = f.size[axis];
  int64_t in_stride = 1, out_stride = 1;
  for (size_t j = axis + 1; j < f.size.size(); ++j) {
    in_stride *= f.size[j];
    if (!f.reduced[j]) out_stride *= f.size[j];
  }
  if (axis + 1 == f.size.size()) {
    if (f.reduced[axis]) {
      T acc = 0;
      for (int64_t i = 0; i < n; ++i) acc += in[i];
      *out += acc;
    } else {
      for (int64_t i = 0; i < n; ++i) out[i] += in[i];
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i)
    sum_rec(f, axis + 1, in + i * in_stride, f.reduced[axis] ? out : out + i * out_stride);
}

}  // namespace

template <class T>
void sum_to_shape(const T* in, const std::vector<int64_t>& in_shape, T* out,
                  const std::vector<int64_t>& out_shape) {
  int64_t out_n = 1, in_n = 1;
  for (int64_t s : out_shape) out_n *= s;
  for (int64_t s : in_shape) in_n *= s;
  std::fill(out, out + out_n, T(0));
  if (in_n == 0) return;
  FoldedAxes f = fold_axes(in_shape, out_shape);
  if (f.size.empty()) {  // every axis has size 1
    out[0] = in[0];
    return;
  }
  if (!f.reduced[0] && f.size.size() > 1) {
    // Outer kept axis: its slices write disjoint outputs, so they run in parallel.
    int64_t in_stride = in_n / f.size[0], out_stride = out_n / f.size[0];
    parallel_for(0, f.size[0], rows_grain(in_stride), [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        FoldedAxes inner{{f.size.begin() + 1, f.size.end()}, {f.reduced.begin() + 1, f.reduced.end()}};
        sum_rec(inner, 0, in + i * in_stride, out + i * out_stride);
      }
    });
    return;
  }
  sum_rec(f, 0, in, out);
}

template void sum_to_shape<float>(const float*, const std::vector<int64_t>&, float*,
                                  const std::vector<int64_t>&);
template void sum_to_shape<double>(const double*, const std::vector<int64_t>&, double*,
                                   const std::vector<int64_t>&);

}  // namespace tg::kernels
