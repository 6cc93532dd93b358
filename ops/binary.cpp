// Binary elementwise ops with broadcasting. Each forward sits beside its gradient rule; the rules
// pass full (output-shaped) gradients to accumulate(), which sums them back to each input's shape.
#include "ops/binary.h"

#include <utility>

#include "autograd/tape.h"
#include "ops/kernels/broadcast.h"
#include "ops/kernels/unary.h"
#include "ops/unary.h"

namespace tg {
namespace {

using kernels::BinaryOp;
using kernels::ScalarOp;

void check_floating(const Tensor& x, const char* op) {
  TG_CHECK(x.defined(), "{}: the input tensor is undefined", op);
  TG_CHECK(is_floating(x.dtype()), "{}: expected a floating tensor (f32 or f64), got {} of shape {}",
           op, x.dtype(), shape_str(x.shape()));
}

// Both floating with the same dtype; returns the broadcast output shape.
Shape check_pair(const Tensor& a, const Tensor& b, const char* op) {
  check_floating(a, op);
  check_floating(b, op);
  TG_CHECK(a.dtype() == b.dtype(), "{}: dtypes {} and {} differ (shapes {} and {}); convert one with .to()",
           op, a.dtype(), b.dtype(), shape_str(a.shape()), shape_str(b.shape()));
  return broadcast_shapes(a.shape(), b.shape(), op);
}

// out = a op b with broadcasting, not recorded. a, b: any shapes that broadcast, same dtype.
Tensor binary_kernel(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& shape) {
  Tensor out = empty(shape, a.dtype());
  kernels::BroadcastPlan plan = kernels::plan_broadcast(shape, {&a.shape(), &b.shape()});
  dispatch(a.dtype(), [&]<class T>() {
    kernels::binary<T>(op, plan, a.data<T>(), b.data<T>(), out.data<T>());
  });
  return out;
}

// y = x op s, not recorded.
Tensor scalar_kernel(ScalarOp op, const Tensor& x, double s) {
  Tensor y = empty(x.shape(), x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    kernels::scalar<T>(op, x.data<T>(), static_cast<T>(s), y.data<T>(), x.numel());
  });
  return y;
}

Tensor negated(const Tensor& g) {
  Tensor out = empty(g.shape(), g.dtype());
  dispatch(g.dtype(), [&]<class T>() {
    kernels::unary<T>(kernels::UnaryOp::neg, g.data<T>(), out.data<T>(), g.numel());
  });
  return out;
}

}  // namespace

// --- tensor with tensor ----------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b) {
  Shape shape = check_pair(a, b, "add");
  Tensor out = binary_kernel(BinaryOp::add, a, b, shape);
  record("add", out, {&a, &b}, [](Node& n, const Tensor& dout) {
    n.accumulate(0, dout);  // [out] summed to a's shape by the engine
    n.accumulate(1, dout);
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Shape shape = check_pair(a, b, "sub");
  Tensor out = binary_kernel(BinaryOp::sub, a, b, shape);
  record("sub", out, {&a, &b}, [](Node& n, const Tensor& dout) {
    n.accumulate(0, dout);
    if (n.needs_grad(1)) n.accumulate(1, negated(dout));
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Shape shape = check_pair(a, b, "mul");
  Tensor out = binary_kernel(BinaryOp::mul, a, b, shape);
  Node* node = record("mul", out, {&a, &b}, [shape](Node& n, const Tensor& dout) {
    if (n.needs_grad(0)) n.accumulate(0, binary_kernel(BinaryOp::mul, dout, n.saved("b"), shape));
    if (n.needs_grad(1)) n.accumulate(1, binary_kernel(BinaryOp::mul, dout, n.saved("a"), shape));
  });
  // Each gradient needs only the other operand.
  if (node && node->needs_grad(1)) node->save("a", a);
  if (node && node->needs_grad(0)) node->save("b", b);
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Shape shape = check_pair(a, b, "div");
  Tensor out = binary_kernel(BinaryOp::div, a, b, shape);
  Node* node = record("div", out, {&a, &b}, [shape](Node& n, const Tensor& dout) {
    Tensor b = n.saved("b");
    if (n.needs_grad(0)) n.accumulate(0, binary_kernel(BinaryOp::div, dout, b, shape));
    if (n.needs_grad(1)) {
      // d(a / b)/db = -a / b^2, computed in the output's shape.
      Tensor a = n.saved("a");
      Tensor db = empty(shape, dout.dtype());
      auto plan = kernels::plan_broadcast(shape, {&shape, &a.shape(), &b.shape()});
      dispatch(dout.dtype(), [&]<class T>() {
        kernels::div_grad_divisor<T>(plan, dout.data<T>(), a.data<T>(), b.data<T>(), db.data<T>());
      });
      n.accumulate(1, std::move(db));
    }
  });
  if (node) {
    node->save("b", b);
    if (node->needs_grad(1)) node->save("a", a);
  }
  return out;
}

// --- tensor with scalar ----------------------------------------------------------------------

Tensor add(const Tensor& a, double b) {
  check_floating(a, "add");
  Tensor out = scalar_kernel(ScalarOp::add, a, b);
  record("add", out, {&a}, [](Node& n, const Tensor& dout) { n.accumulate(0, dout); });
  return out;
}

Tensor sub(const Tensor& a, double b) {
  check_floating(a, "sub");
  // a - b and a + (-b) round identically.
  Tensor out = scalar_kernel(ScalarOp::add, a, -b);
  record("sub", out, {&a}, [](Node& n, const Tensor& dout) { n.accumulate(0, dout); });
  return out;
}

Tensor rsub(const Tensor& a, double b) {
  check_floating(a, "rsub");
  Tensor out = scalar_kernel(ScalarOp::rsub, a, b);
  record("rsub", out, {&a}, [](Node& n, const Tensor& dout) { n.accumulate(0, negated(dout)); });
  return out;
}

Tensor mul(const Tensor& a, double b) {
  check_floating(a, "mul");
  Tensor out = scalar_kernel(ScalarOp::mul, a, b);
  record("mul", out, {&a}, [b](Node& n, const Tensor& dout) {
    n.accumulate(0, scalar_kernel(ScalarOp::mul, dout, b));
  });
  return out;
}

Tensor div(const Tensor& a, double b) {
  check_floating(a, "div");
  Tensor out = scalar_kernel(ScalarOp::div, a, b);
  record("div", out, {&a}, [b](Node& n, const Tensor& dout) {
    n.accumulate(0, scalar_kernel(ScalarOp::div, dout, b));
  });
  return out;
}

Tensor rdiv(const Tensor& a, double b) {
  check_floating(a, "rdiv");
  Tensor out = scalar_kernel(ScalarOp::rdiv, a, b);
  Node* node = record("rdiv", out, {&a}, [b](Node& n, const Tensor& dout) {
    Tensor a = n.saved("a");
    Tensor da = empty(a.shape(), a.dtype());
    dispatch(a.dtype(), [&]<class T>() {  // d(b / a)/da = -b / a^2
      kernels::rdiv_backward<T>(a.data<T>(), static_cast<T>(b), dout.data<T>(), da.data<T>(),
                                a.numel());
    });
    n.accumulate(0, std::move(da));
  });
  if (node) node->save("a", a);
  return out;
}

// --- operators -------------------------------------------------------------------------------

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(b, a); }
Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
Tensor operator-(double a, const Tensor& b) { return rsub(b, a); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
Tensor operator/(const Tensor& a, double b) { return div(a, b); }
Tensor operator/(double a, const Tensor& b) { return rdiv(b, a); }
Tensor operator-(const Tensor& a) { return neg(a); }

}  // namespace tg
