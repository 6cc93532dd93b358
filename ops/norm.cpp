// layer_norm: x [..., *normalized_shape] viewed as [rows, C], one fused kernel each way. Saves
// x, weight, and the per-row mean [rows] and rstd [rows] that backward reuses.
#include "ops/norm.h"

#include <algorithm>
#include <utility>

#include "autograd/tape.h"
#include "ops/kernels/layer_norm.h"

namespace tg {
namespace {

void check_affine(const char* what, const Tensor& t, const Tensor& x, const Shape& normalized_shape) {
  if (!t.defined()) return;
  TG_CHECK(t.shape() == normalized_shape,
           "layer_norm: {} of shape {} does not match normalized_shape {} (input of shape {})",
           what, shape_str(t.shape()), shape_str(normalized_shape), shape_str(x.shape()));
  TG_CHECK(t.dtype() == x.dtype(), "layer_norm: {} is {} but the input is {}", what, t.dtype(),
           x.dtype());
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight,
                  const Tensor& bias, double eps) {
  TG_CHECK(x.defined(), "layer_norm: the input tensor is undefined");
  const Shape& s = x.shape();
  TG_CHECK(is_floating(x.dtype()),
           "layer_norm: expected a floating tensor (f32 or f64), got {} of shape {}", x.dtype(),
           shape_str(s));
  size_t k = normalized_shape.size(), lead = s.size() - std::min(k, s.size());
  TG_CHECK(k <= s.size() && Shape(s.begin() + lead, s.end()) == normalized_shape,
           "layer_norm: normalized_shape {} does not match the last axes of the input of shape {}",
           shape_str(normalized_shape), shape_str(s));
  check_affine("weight", weight, x, normalized_shape);
  check_affine("bias", bias, x, normalized_shape);

  int64_t rows = numel(Shape(s.begin(), s.begin() + lead)), C = numel(normalized_shape);
  Tensor y = empty(s, x.dtype());
  Tensor mean = empty({rows}, x.dtype()), rstd = empty({rows}, x.dtype());  // [rows] each
  dispatch(x.dtype(), [&]<class T>() {
    kernels::layer_norm_forward<T>(x.data<T>(), weight.defined() ? weight.data<T>() : nullptr,
                                   bias.defined() ? bias.data<T>() : nullptr, y.data<T>(),
                                   mean.data<T>(), rstd.data<T>(), rows, C, static_cast<T>(eps));
  });

  if (Node* n = record("layer_norm", y, {&x, &weight, &bias}, [rows, C](Node& n, const Tensor& dy) {
        Tensor x = n.saved("x"), w = n.saved("weight");
        Tensor mean = n.saved("mean"), rstd = n.saved("rstd");
        bool need_w = n.needs_grad(1), need_b = n.needs_grad(2);
        Tensor dx = n.needs_grad(0) ? empty(x.shape(), x.dtype()) : Tensor();
        Tensor dw = need_w ? empty(n.input_shape(1), x.dtype()) : Tensor();
        Tensor db = need_b ? empty(n.input_shape(2), x.dtype()) : Tensor();
        Tensor partials = need_w || need_b
                              ? empty({kernels::layer_norm_partials_size(rows, C)}, x.dtype())
                              : Tensor();
        dispatch(x.dtype(), [&]<class T>() {
          auto ptr = [](Tensor& t) { return t.defined() ? t.data<T>() : nullptr; };
          kernels::layer_norm_backward<T>(x.data<T>(), w.defined() ? w.data<T>() : nullptr,
                                          mean.data<T>(), rstd.data<T>(), dy.data<T>(), ptr(dx),
                                          ptr(dw), ptr(db), ptr(partials), rows, C);
        });
        if (dx.defined()) n.accumulate(0, std::move(dx));
        if (dw.defined()) n.accumulate(1, std::move(dw));
        if (db.defined()) n.accumulate(2, std::move(db));
      })) {
    n->save("x", x);
    n->save("weight", weight);
    n->save("mean", mean);
    n->save("rstd", rstd);
  }
  return y;
}

}  // namespace tg
