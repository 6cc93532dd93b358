// Reductions: sum, mean, max, var, logsumexp over any set of axes, with keepdim. Each computes
// into a "keep" buffer of x's rank (reduced axes of size 1) and returns it, or a view of it
// without the reduced axes; the gradient rules spread dout back over x through that shape.
#include "ops/reduce.h"

#include <algorithm>
#include <utility>

#include "autograd/tape.h"
#include "ops/kernels/reduce.h"
#include "ops/kernels/reduce_sum.h"

namespace tg {
namespace {

// What a reduction over `axes` does to x's shape.
struct Plan {
  Shape keep_shape;         // x's rank; reduced axes have size 1 (the keepdim shape)
  Shape out_shape;          // keep_shape, or without the reduced axes
  int64_t n = 1;            // elements reduced into each output
  int64_t empty_axis = -1;  // a reduced axis of size 0, if any
};

Plan plan(const char* op, const Tensor& x, const Axes& axes, bool keepdim) {
  TG_CHECK(x.defined(), "{}: the input tensor is undefined", op);
  const Shape& s = x.shape();
  TG_CHECK(is_floating(x.dtype()), "{}: expected a floating tensor (f32 or f64), got {} of shape {}",
           op, x.dtype(), shape_str(s));
  int64_t rank = x.dim();
  int64_t r = std::max<int64_t>(rank, 1);  // a scalar accepts axis 0 and -1, as in PyTorch
  std::vector<char> reduced(static_cast<size_t>(r), axes.empty());
  for (int64_t a : axes) {
    TG_CHECK(a >= -r && a < r, "{}: axis {} is out of range for a tensor of shape {} (rank {})",
             op, a, shape_str(s), rank);
    int64_t k = a < 0 ? a + r : a;
    TG_CHECK(!reduced[k], "{}: axis {} appears twice in axes {} (tensor of shape {})", op, k,
             shape_str(axes), shape_str(s));
    reduced[k] = 1;
  }
  Plan p;
  for (int64_t i = 0; i < rank; ++i) {
    if (!reduced[i]) {
      p.keep_shape.push_back(s[i]);
      p.out_shape.push_back(s[i]);
      continue;
    }
    p.keep_shape.push_back(1);
    if (keepdim) p.out_shape.push_back(1);
    p.n *= s[i];
    if (s[i] == 0 && p.empty_axis < 0) p.empty_axis = i;
  }
  return p;
}

// The result handle: the keep buffer itself or a view of it in the output shape.
Tensor as_output(const Tensor& keep, const Plan& p) {
  return p.out_shape == p.keep_shape ? keep : keep.view_of(p.out_shape);
}

// dx [x_shape] = scale * dout [keep_shape] spread over the reduced axes.
Tensor spread(const Tensor& dout, const Shape& keep_shape, const Shape& x_shape, double scale) {
  Tensor dx = empty(x_shape, dout.dtype());
  dispatch(dout.dtype(), [&]<class T>() {
    kernels::broadcast_scaled<T>(dout.data<T>(), keep_shape, dx.data<T>(), x_shape,
                                 static_cast<T>(scale));
  });
  return dx;
}

}  // namespace

Tensor sum(const Tensor& x, const Axes& axes, bool keepdim) {
  Plan p = plan("sum", x, axes, keepdim);
  Tensor keep = empty(p.keep_shape, x.dtype());  // a reduction over an empty axis gives 0
  dispatch(x.dtype(), [&]<class T>() {
    kernels::sum_to_shape<T>(x.data<T>(), x.shape(), keep.data<T>(), p.keep_shape);
  });
  Tensor out = as_output(keep, p);
  record("sum", out, {&x}, [keep_shape = p.keep_shape](Node& n, const Tensor& dout) {
    n.accumulate(0, spread(dout, keep_shape, n.input_shape(0), 1.0));
  });
  return out;
}

Tensor mean(const Tensor& x, const Axes& axes, bool keepdim) {
  Plan p = plan("mean", x, axes, keepdim);
  Tensor keep = empty(p.keep_shape, x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    T* k = keep.data<T>();
    kernels::sum_to_shape<T>(x.data<T>(), x.shape(), k, p.keep_shape);
    // Over an empty axis this is 0/0 = NaN, as PyTorch gives.
    for (int64_t j = 0; j < keep.numel(); ++j) k[j] /= static_cast<T>(p.n);
  });
  Tensor out = as_output(keep, p);
  record("mean", out, {&x}, [keep_shape = p.keep_shape, n = p.n](Node& node, const Tensor& dout) {
    node.accumulate(0, spread(dout, keep_shape, node.input_shape(0), 1.0 / static_cast<double>(n)));
  });
  return out;
}

Tensor max(const Tensor& x, const Axes& axes, bool keepdim) {
  Plan p = plan("max", x, axes, keepdim);
  TG_CHECK(p.empty_axis < 0,
           "max: cannot reduce over axis {} of size 0 (input of shape {}): the max of nothing is "
           "undefined",
           p.empty_axis, shape_str(x.shape()));
  Tensor keep = empty(p.keep_shape, x.dtype());
  Tensor indices = empty(p.keep_shape, DType::i64);  // flat index into x of each first max
  dispatch(x.dtype(), [&]<class T>() {
    kernels::max_reduce<T>(x.data<T>(), x.shape(), keep.data<T>(), indices.data<int64_t>(),
                           p.keep_shape);
  });
  Tensor out = as_output(keep, p);
  if (Node* n = record("max", out, {&x}, [](Node& n, const Tensor& dout) {
        Tensor idx = n.saved("indices");
        Tensor dx = empty(n.input_shape(0), dout.dtype());
        dispatch(dout.dtype(), [&]<class T>() {
          kernels::max_backward<T>(dout.data<T>(), idx.data<int64_t>(), idx.numel(), dx.data<T>(),
                                   dx.numel());
        });
        n.accumulate(0, std::move(dx));
      }))
    n->save("indices", indices);
  return out;
}

Tensor var(const Tensor& x, const Axes& axes, int64_t correction, bool keepdim) {
  Plan p = plan("var", x, axes, keepdim);
  Tensor keep = empty(p.keep_shape, x.dtype());
  Tensor mu = empty(p.keep_shape, x.dtype());  // the mean, saved for backward
  dispatch(x.dtype(), [&]<class T>() {
    kernels::var_reduce<T>(x.data<T>(), x.shape(), mu.data<T>(), keep.data<T>(), p.keep_shape,
                           correction);
  });
  Tensor out = as_output(keep, p);
  // d var / dx = 2 (x - mean) / (n - correction); the mean's own dependence on x cancels.
  double scale = 2.0 / static_cast<double>(std::max<int64_t>(0, p.n - correction));
  if (Node* n = record("var", out, {&x},
                       [keep_shape = p.keep_shape, scale](Node& n, const Tensor& dout) {
                         Tensor x = n.saved("x"), mu = n.saved("mean");
                         Tensor dx = empty(x.shape(), x.dtype());
                         dispatch(x.dtype(), [&]<class T>() {
                           kernels::var_backward<T>(x.data<T>(), mu.data<T>(), dout.data<T>(),
                                                    dx.data<T>(), x.shape(), keep_shape,
                                                    static_cast<T>(scale));
                         });
                         n.accumulate(0, std::move(dx));
                       })) {
    n->save("x", x);
    n->save("mean", mu);
  }
  return out;
}

Tensor logsumexp(const Tensor& x, const Axes& axes, bool keepdim) {
  Plan p = plan("logsumexp", x, axes, keepdim);
  Tensor keep = empty(p.keep_shape, x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    kernels::logsumexp_reduce<T>(x.data<T>(), x.shape(), keep.data<T>(), p.keep_shape);
  });
  Tensor out = as_output(keep, p);
  if (Node* n = record("logsumexp", out, {&x},
                       [keep_shape = p.keep_shape](Node& n, const Tensor& dout) {
                         Tensor x = n.saved("x"), lse = n.saved("lse");
                         Tensor dx = empty(x.shape(), x.dtype());
                         dispatch(x.dtype(), [&]<class T>() {
                           kernels::logsumexp_backward<T>(x.data<T>(), lse.data<T>(),
                                                          dout.data<T>(), dx.data<T>(), x.shape(),
                                                          keep_shape);
                         });
                         n.accumulate(0, std::move(dx));
                       })) {
    n->save("x", x);
    n->save("lse", keep);  // the output itself, in the keep shape
  }
  return out;
}

}  // namespace tg
