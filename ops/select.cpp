// Selection by a boolean mask with broadcasting: where and masked_fill, each beside its gradient
// rule. Both rules route dout through a mask (zeros elsewhere) and let accumulate() sum it back
// to the input's shape.
#include "ops/select.h"

#include "autograd/tape.h"
#include "ops/kernels/broadcast.h"

namespace tg {
namespace {

void check_defined(const Tensor& t, const char* op, const char* what) {
  TG_CHECK(t.defined(), "{}: {} is undefined", op, what);
}

// g where (mask == keep_when), 0 elsewhere; g: [shape], mask broadcasts to shape. Not recorded.
Tensor masked_grad(const Tensor& g, const Tensor& mask, bool keep_when) {
  Tensor out = empty(g.shape(), g.dtype());
  auto plan = kernels::plan_broadcast(g.shape(), {&g.shape(), &mask.shape()});
  dispatch(g.dtype(), [&]<class T>() {
    kernels::masked_fill<T>(plan, g.data<T>(), mask.data<bool>(), !keep_when, T(0), out.data<T>());
  });
  return out;
}

}  // namespace

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  check_defined(condition, "where", "condition");
  check_defined(a, "where", "a");
  check_defined(b, "where", "b");
  TG_CHECK(condition.dtype() == DType::b8, "where: condition must be b8 (bool), got {} of shape {}",
           condition.dtype(), shape_str(condition.shape()));
  TG_CHECK(a.dtype() == b.dtype(), "where: a and b must have the same dtype, got {} and {} (shapes {} and {})",
           a.dtype(), b.dtype(), shape_str(a.shape()), shape_str(b.shape()));
  Shape shape;
  try {
    shape = broadcast_shapes(broadcast_shapes(condition.shape(), a.shape(), "where"), b.shape(), "where");
  } catch (const Error&) {
    fail("where: shapes {} (condition), {} (a) and {} (b) do not broadcast",
         shape_str(condition.shape()), shape_str(a.shape()), shape_str(b.shape()));
  }
  Tensor out = empty(shape, a.dtype());
  auto plan = kernels::plan_broadcast(shape, {&condition.shape(), &a.shape(), &b.shape()});
  dispatch_all(a.dtype(), [&]<class T>() {
    kernels::where<T>(plan, condition.data<bool>(), a.data<T>(), b.data<T>(), out.data<T>());
  });
  Node* node = record("where", out, {&a, &b}, [](Node& n, const Tensor& dout) {
    Tensor cond = n.saved("condition");  // broadcasts to dout's shape
    if (n.needs_grad(0)) n.accumulate(0, masked_grad(dout, cond, true));
    if (n.needs_grad(1)) n.accumulate(1, masked_grad(dout, cond, false));
  });
  if (node) node->save("condition", condition);
  return out;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  check_defined(x, "masked_fill", "x");
  check_defined(mask, "masked_fill", "mask");
  TG_CHECK(mask.dtype() == DType::b8, "masked_fill: mask must be b8 (bool), got {} of shape {}",
           mask.dtype(), shape_str(mask.shape()));
  // The output keeps x's shape, so the mask may broadcast to x but not x to the mask.
  TG_CHECK(broadcasts_to(mask.shape(), x.shape()),
           "masked_fill: mask of shape {} does not broadcast to x's shape {}",
           shape_str(mask.shape()), shape_str(x.shape()));
  Tensor out = empty(x.shape(), x.dtype());
  auto plan = kernels::plan_broadcast(x.shape(), {&x.shape(), &mask.shape()});
  dispatch_all(x.dtype(), [&]<class T>() {
    kernels::masked_fill<T>(plan, x.data<T>(), mask.data<bool>(), true, static_cast<T>(value),
                            out.data<T>());
  });
  Node* node = record("masked_fill", out, {&x}, [](Node& n, const Tensor& dout) {
    n.accumulate(0, masked_grad(dout, n.saved("mask"), false));  // 0 where filled
  });
  if (node) node->save("mask", mask);
  return out;
}

}  // namespace tg
