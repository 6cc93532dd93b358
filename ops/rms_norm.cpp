// rms_norm: x [..., *normalized_shape] viewed as [rows, C], one fused kernel each way. Saves x,
// weight and the per-row rstd [rows] that backward reuses.
#include "ops/rms_norm.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "autograd/tape.h"
#include "ops/kernels/rms_norm.h"

namespace tg {

Tensor rms_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, std::optional<double> eps) {
  TG_CHECK(x.defined(), "rms_norm: the input tensor is undefined");
  const Shape& s = x.shape();
  TG_CHECK(is_floating(x.dtype()), "rms_norm: expected a floating tensor (f32 or f64), got {} of shape {}",
           x.dtype(), shape_str(s));
  const size_t k = normalized_shape.size(), lead = s.size() - std::min(k, s.size());
  TG_CHECK(k >= 1 && k <= s.size() && Shape(s.begin() + lead, s.end()) == normalized_shape,
           "rms_norm: normalized_shape {} does not match the last axes of the input of shape {}",
           shape_str(normalized_shape), shape_str(s));
  if (weight.defined()) {
    TG_CHECK(weight.shape() == normalized_shape,
             "rms_norm: weight of shape {} does not match normalized_shape {} (input of shape {})",
             shape_str(weight.shape()), shape_str(normalized_shape), shape_str(s));
    TG_CHECK(weight.dtype() == x.dtype(), "rms_norm: weight is {} but the input is {}", weight.dtype(), x.dtype());
  }
  const double e = eps ? *eps
                       : (x.dtype() == DType::f32 ? double(std::numeric_limits<float>::epsilon())
                                                  : std::numeric_limits<double>::epsilon());
  TG_CHECK(std::isfinite(e) && e >= 0, "rms_norm: eps must be finite and >= 0, got {}", e);

  const int64_t rows = numel(Shape(s.begin(), s.begin() + lead)), C = numel(normalized_shape);
  Tensor y = empty(s, x.dtype());
  Tensor rstd = empty({rows}, x.dtype());  // [rows]
  dispatch(x.dtype(), [&]<class T>() {
    kernels::rms_norm_forward<T>(x.data<T>(), weight.defined() ? weight.data<T>() : nullptr, y.data<T>(),
                                 rstd.data<T>(), rows, C, static_cast<T>(e));
  });

  if (Node* n = record("rms_norm", y, {&x, &weight}, [rows, C](Node& n, const Tensor& dy) {
        Tensor x = n.saved("x"), w = n.saved("weight"), rstd = n.saved("rstd");
        Tensor dx = n.needs_grad(0) ? empty(x.shape(), x.dtype()) : Tensor();
        Tensor dw = n.needs_grad(1) ? empty(n.input_shape(1), x.dtype()) : Tensor();
        Tensor partials = dw.defined() ? empty({kernels::rms_norm_partials_size(rows, C)}, x.dtype()) : Tensor();
        dispatch(x.dtype(), [&]<class T>() {
          auto ptr = [](Tensor& t) { return t.defined() ? t.data<T>() : nullptr; };
          kernels::rms_norm_backward<T>(x.data<T>(), w.defined() ? w.data<T>() : nullptr, rstd.data<T>(),
                                        dy.data<T>(), ptr(dx), ptr(dw), ptr(partials), rows, C);
        });
        if (dx.defined()) n.accumulate(0, std::move(dx));
        if (dw.defined()) n.accumulate(1, std::move(dw));
      })) {
    n->save("x", x);
    n->save("weight", weight);
    n->save("rstd", rstd);
  }
  return y;
}

}  // namespace tg
