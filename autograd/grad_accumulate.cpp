#include "autograd/grad_accumulate.h"

#include "ops/kernels/parallel.h"
#include "ops/kernels/reduce_sum.h"

namespace tg::detail {
namespace {

bool exclusive(const Tensor& t) { return t.impl_ptr().use_count() == 1 && t.storage_use_count() == 1; }

// A plain tensor (no grad_fn, no requires_grad) over t's data.
Tensor plain(const Tensor& t) { return t.view_of(t.shape()); }

// g may become an accumulated gradient without a copy when nothing can write to it later:
// - a node's gradient (in_place false) is only ever added to in place once nothing else holds
//   its buffer (exclusive()), and gradient rules never write to the gradient they receive, so
//   any g may be adopted, even one that shares the caller's or the user's buffer;
// - a leaf's gradient is added to in place and handed to the user (zero_grad, clipping), so it
//   adopts g only when no one else can see g's buffer.
bool adoptable(const Tensor& g, bool in_place) {
  return !in_place || (g.storage_use_count() == 1 && g.impl_ptr().use_count() == 1);
}

}  // namespace

Tensor sum_to(const Tensor& g, const Shape& shape, const char* op) {
  if (g.shape() == shape) return g;
  if (!broadcasts_to(shape, g.shape()))
    fail("{} backward: a gradient of shape {} cannot be summed to the input's shape {}", op,
         shape_str(g.shape()), shape_str(shape));
  Shape padded(g.dim() - static_cast<int64_t>(shape.size()), 1);
  padded.insert(padded.end(), shape.begin(), shape.end());
  Tensor out = empty(shape, g.dtype());
  dispatch(g.dtype(), [&]<class T>() {
    kernels::sum_to_shape<T>(g.data<T>(), g.shape(), out.data<T>(), padded);
  });
  return out;
}

void add_grad(Tensor& acc, Tensor g, const char* op, bool in_place) {
  if (!acc.defined()) {
    acc = adoptable(g, in_place) ? plain(g) : g.detach().clone();
    return;
  }
  if (acc.shape() != g.shape())
    fail("{} backward: gradient of shape {} does not match the accumulated gradient's shape {}", op,
         shape_str(g.shape()), shape_str(acc.shape()));
  if (acc.dtype() != g.dtype())
    fail("{} backward: gradient of dtype {} does not match the accumulated gradient's dtype {}", op,
         g.dtype(), acc.dtype());
  if (!in_place && !exclusive(acc)) acc = acc.detach().clone();
  dispatch(acc.dtype(), [&]<class T>() {
    T* a = acc.data<T>();
    const T* b = g.data<T>();
    kernels::parallel_for(0, acc.numel(), kernels::kElementwiseGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) a[i] += b[i];
    });
  });
  acc.bump_version();
}

}  // namespace tg::detail
