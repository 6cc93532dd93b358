#include "autograd/grad_accumulate.h"

#include "ops/kernels/parallel.h"
#include "ops/kernels/reduce_sum.h"

namespace tg::detail {
namespace {

bool exclusive(const Tensor& t) { return t.impl_ptr().use_count() == 1 && t.storage_use_count() == 1; }

// g may be adopted as a node's accumulated gradient when, besides `g` itself, at most the
// gradient rule's own local handle sees it: rules never touch a gradient after passing it on,
// and a node's buffer is only added to in place once nothing else holds it (exclusive()).
bool adoptable(const Tensor& g, bool in_place) {
  return g.storage_use_count() == 1 && g.impl_ptr().use_count() <= (in_place ? 1 : 2);
}

// A plain tensor (no grad_fn, no requires_grad) over t's data.
Tensor plain(const Tensor& t) { return t.view_of(t.shape()); }

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
