// softmax and log_softmax along one axis: x viewed as [outer, n, inner] around that axis, one
// fused kernel each way. Both save their output y, from which the gradient follows.
#include "ops/softmax.h"

#include <utility>

#include "autograd/tape.h"
#include "ops/kernels/softmax.h"

namespace tg {
namespace {

struct Layout {
  int64_t outer = 1, n = 1, inner = 1;
};

Layout layout(const char* op, const Tensor& x, int64_t axis) {
  TG_CHECK(x.defined(), "{}: the input tensor is undefined", op);
  const Shape& s = x.shape();
  TG_CHECK(is_floating(x.dtype()), "{}: expected a floating tensor (f32 or f64), got {} of shape {}",
           op, x.dtype(), shape_str(s));
  int64_t rank = x.dim(), r = rank == 0 ? 1 : rank;  // a scalar accepts axis 0 and -1
  TG_CHECK(axis >= -r && axis < r, "{}: axis {} is out of range for a tensor of shape {} (rank {})",
           op, axis, shape_str(s), rank);
  int64_t a = axis < 0 ? axis + r : axis;
  Layout l;
  for (int64_t i = 0; i < rank; ++i) (i < a ? l.outer : i == a ? l.n : l.inner) *= s[i];
  return l;
}

Tensor softmax_impl(const char* op, const Tensor& x, int64_t axis, bool log) {
  Layout l = layout(op, x, axis);
  Tensor y = empty(x.shape(), x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    kernels::softmax_forward<T>(x.data<T>(), y.data<T>(), l.outer, l.n, l.inner, log);
  });
  if (Node* node = record(op, y, {&x}, [l, log](Node& node, const Tensor& dy) {
        Tensor y = node.saved("y");
        Tensor dx = empty(y.shape(), y.dtype());
        dispatch(y.dtype(), [&]<class T>() {
          kernels::softmax_backward<T>(y.data<T>(), dy.data<T>(), dx.data<T>(), l.outer, l.n,
                                       l.inner, log);
        });
        node.accumulate(0, std::move(dx));
      }))
    node->save("y", y);
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t axis) { return softmax_impl("softmax", x, axis, false); }

Tensor log_softmax(const Tensor& x, int64_t axis) {
  return softmax_impl("log_softmax", x, axis, true);
}

}  // namespace tg
