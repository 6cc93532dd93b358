#include "ops/rope.h"

#include <cmath>

#include "autograd/tape.h"
#include "ops/kernels/rope.h"

namespace tg {
namespace {

// Rotates x (forward) or back (inverse, the gradient) with the positions of `o`, recorded: the
// gradient of a rotation is the opposite rotation, itself recorded (so create_graph differentiates
// it again).
Tensor rotate(const Tensor& x, const RopeOptions& o, bool inverse) {
  const Shape& s = x.shape();
  Tensor y = empty(s, x.dtype());
  const int64_t* positions = o.positions.defined() ? o.positions.data<int64_t>() : nullptr;
  const int64_t b_stride = o.positions.defined() && o.positions.dim() == 2 ? s[1] : 0;
  dispatch(x.dtype(), [&]<class T>() {
    kernels::rope_rotate<T>(x.data<T>(), y.data<T>(), s[0], s[1], s[2], s[3], o.theta, positions, b_stride,
                            o.position_offset, inverse);
  });
  record(inverse ? "rope backward" : "rope", y, {&x},
         [o, inverse](Node& n, const Tensor& dout) { n.accumulate(0, rotate(dout, o, !inverse)); });
  return y;
}

}  // namespace

Tensor rope(const Tensor& x, const RopeOptions& o) {
  TG_CHECK(x.defined(), "rope: the input tensor is undefined");
  TG_CHECK(is_floating(x.dtype()), "rope: expected a floating tensor (f32 or f64), got {} of shape {}", x.dtype(),
           shape_str(x.shape()));
  TG_CHECK(x.dim() == 4, "rope: expected x of shape [B, T, H, D], got {}", shape_str(x.shape()));
  TG_CHECK(x.shape()[3] % 2 == 0, "rope: the head width D must be even, got x of shape {}", shape_str(x.shape()));
  TG_CHECK(std::isfinite(o.theta) && o.theta > 0, "rope: theta must be positive and finite, got {}", o.theta);
  TG_CHECK(o.position_offset >= 0, "rope: position_offset must be >= 0, got {}", o.position_offset);
  if (o.positions.defined()) {
    const Shape& p = o.positions.shape();
    const int64_t B = x.shape()[0], T = x.shape()[1];
    TG_CHECK(o.positions.dtype() == DType::i64 &&
                 ((p.size() == 1 && p[0] == T) || (p.size() == 2 && p[0] == B && p[1] == T)),
             "rope: positions must be i64 of shape [{}] or [{}, {}] for x of shape {}, got {} {}", T, B, T,
             shape_str(x.shape()), o.positions.dtype(), shape_str(p));
  }
  return rotate(x, o, /*inverse=*/false);
}

}  // namespace tg
