#include "ops/swiglu.h"

#include <utility>

#include "autograd/error.h"
#include "autograd/tape.h"
#include "ops/kernels/swiglu.h"

namespace tg {

Tensor swiglu(const Tensor& x) {
  TG_CHECK(x.defined(), "swiglu: the input tensor is undefined");
  TG_CHECK(is_floating(x.dtype()), "swiglu: expected a floating tensor (f32 or f64), got {} of shape {}", x.dtype(),
           shape_str(x.shape()));
  TG_CHECK(x.dim() >= 1 && x.shape().back() % 2 == 0,
           "swiglu: the last axis holds the gate and the up projection, so its size must be even; got shape {}",
           shape_str(x.shape()));
  Shape out_shape = x.shape();
  const int64_t I = out_shape.back() / 2, rows = I == 0 ? 0 : x.numel() / (2 * I);
  out_shape.back() = I;
  Tensor y = empty(out_shape, x.dtype());  // [..., I]
  dispatch(x.dtype(), [&]<class T>() { kernels::swiglu_forward<T>(x.data<T>(), y.data<T>(), rows, I); });
  if (Node* n = record("swiglu", y, {&x}, [rows, I](Node& n, const Tensor& dy) {
        Tensor x = n.saved("x");
        Tensor dx = empty(x.shape(), x.dtype());  // [..., 2I], every element written
        dispatch(x.dtype(), [&]<class T>() {
          kernels::swiglu_backward<T>(x.data<T>(), dy.data<T>(), dx.data<T>(), rows, I);
        });
        n.accumulate(0, std::move(dx));
      }))
    n->save("x", x);
  return y;
}

}  // namespace tg
