#pragma once
// Reductions other than sums (max, variance, log-sum-exp) and the kernels that spread an
// output-shaped gradient back over the input. Shapes as in sum_to_shape: `out_shape` has the
// rank of `in_shape`, with each size equal to the input's or 1 (a reduced axis).
// Each output element is computed by one task, visiting its inputs in row-major order, so
// results do not depend on the thread count. (Sums: reduce_sum.h.)
#include <cstdint>
#include <vector>

namespace tg::kernels {

/// out = max over the reduced axes; indices[j] = flat input index of the first maximum of
/// output j (NaN wins, as in PyTorch). Every reduced axis must be non-empty.
template <class T>
void max_reduce(const T* in, const std::vector<int64_t>& in_shape, T* out, int64_t* indices,
                const std::vector<int64_t>& out_shape);

/// mean = mean over the reduced axes; out = sum((x - mean)^2) / max(0, n - correction) where n
/// is the number of elements reduced into each output (two passes, so no cancellation).
template <class T>
void var_reduce(const T* in, const std::vector<int64_t>& in_shape, T* mean, T* out,
                const std::vector<int64_t>& out_shape, int64_t correction);

/// out = log(sum(exp(x))) over the reduced axes, with the max subtracted first. A row of only
/// -inf gives -inf; an empty row gives -inf.
template <class T>
void logsumexp_reduce(const T* in, const std::vector<int64_t>& in_shape, T* out,
                      const std::vector<int64_t>& out_shape);

/// dx[i] = scale * dout[j(i)]: the gradient of sum (scale 1) and mean (scale 1/n).
template <class T>
void broadcast_scaled(const T* dout, const std::vector<int64_t>& out_shape, T* dx,
                      const std::vector<int64_t>& in_shape, T scale);

/// dx[i] = scale * dout[j] * (x[i] - mean[j]): the gradient of var with scale 2/(n - correction).
template <class T>
void var_backward(const T* x, const T* mean, const T* dout, T* dx,
                  const std::vector<int64_t>& in_shape, const std::vector<int64_t>& out_shape,
                  T scale);

/// dx[i] = dout[j] * exp(x[i] - lse[j]) (0 where lse[j] is -inf: nothing to spread).
template <class T>
void logsumexp_backward(const T* x, const T* lse, const T* dout, T* dx,
                        const std::vector<int64_t>& in_shape,
                        const std::vector<int64_t>& out_shape);

/// dx (n_in elements) = 0 except dx[indices[j]] = dout[j] for the n_out outputs.
template <class T>
void max_backward(const T* dout, const int64_t* indices, int64_t n_out, T* dx, int64_t n_in);

}  // namespace tg::kernels
