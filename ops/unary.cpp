// Unary elementwise ops and activations, each forward beside its gradient rule. Rules save the
// input or the output, whichever the derivative is cheaper from (as PyTorch).
#include "ops/unary.h"

#include <limits>
#include <utility>

#include "autograd/tape.h"
#include "ops/kernels/unary.h"

namespace tg {
namespace {

using kernels::UnaryOp;

void check_floating(const Tensor& x, const char* op) {
  TG_CHECK(x.defined(), "{}: the input tensor is undefined", op);
  TG_CHECK(is_floating(x.dtype()), "{}: expected a floating tensor (f32 or f64), got {} of shape {}",
           op, x.dtype(), shape_str(x.shape()));
}

enum class Saves { nothing, input, output };

// y = op(x) and its rule dx = dy * op'(.), reading the saved x or y.
Tensor unary_op(const char* name, UnaryOp op, Saves saves, const Tensor& x) {
  check_floating(x, name);
  Tensor y = empty(x.shape(), x.dtype());
  dispatch(x.dtype(), [&]<class T>() { kernels::unary<T>(op, x.data<T>(), y.data<T>(), x.numel()); });
  Node* node = record(name, y, {&x}, [op, saves](Node& n, const Tensor& dy) {
    Tensor x = saves == Saves::input ? n.saved("x") : Tensor();   // [x's shape]
    Tensor y = saves == Saves::output ? n.saved("y") : Tensor();  // [x's shape]
    Tensor dx = empty(dy.shape(), dy.dtype());
    dispatch(dy.dtype(), [&]<class T>() {
      kernels::unary_backward<T>(op, x.defined() ? x.data<T>() : nullptr,
                                 y.defined() ? y.data<T>() : nullptr, dy.data<T>(), dx.data<T>(),
                                 dy.numel());
    });
    n.accumulate(0, std::move(dx));
  });
  if (node && saves == Saves::input) node->save("x", x);
  if (node && saves == Saves::output) node->save("y", y);
  return y;
}

}  // namespace

Tensor neg(const Tensor& x) { return unary_op("neg", UnaryOp::neg, Saves::nothing, x); }
Tensor exp(const Tensor& x) { return unary_op("exp", UnaryOp::exp, Saves::output, x); }
Tensor log(const Tensor& x) { return unary_op("log", UnaryOp::log, Saves::input, x); }
Tensor sqrt(const Tensor& x) { return unary_op("sqrt", UnaryOp::sqrt, Saves::output, x); }
Tensor rsqrt(const Tensor& x) { return unary_op("rsqrt", UnaryOp::rsqrt, Saves::output, x); }
Tensor tanh(const Tensor& x) { return unary_op("tanh", UnaryOp::tanh, Saves::output, x); }
Tensor sigmoid(const Tensor& x) { return unary_op("sigmoid", UnaryOp::sigmoid, Saves::output, x); }
Tensor relu(const Tensor& x) { return unary_op("relu", UnaryOp::relu, Saves::output, x); }
Tensor silu(const Tensor& x) { return unary_op("silu", UnaryOp::silu, Saves::input, x); }

Tensor gelu(const Tensor& x, std::string_view approximate) {
  UnaryOp op;
  if (approximate == "none")
    op = UnaryOp::gelu;
  else if (approximate == "tanh")
    op = UnaryOp::gelu_tanh;
  else
    fail("gelu: approximate must be \"none\" or \"tanh\", got \"{}\"", approximate);
  return unary_op("gelu", op, Saves::input, x);
}

Tensor pow(const Tensor& x, double exponent) {
  check_floating(x, "pow");
  Tensor y = empty(x.shape(), x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    kernels::pow<T>(x.data<T>(), static_cast<T>(exponent), y.data<T>(), x.numel());
  });
  Node* node = record("pow", y, {&x}, [exponent](Node& n, const Tensor& dy) {
    Tensor x = n.saved("x");  // [x's shape]
    Tensor dx = empty(x.shape(), x.dtype());
    dispatch(x.dtype(), [&]<class T>() {
      kernels::pow_backward<T>(x.data<T>(), static_cast<T>(exponent), dy.data<T>(), dx.data<T>(),
                               x.numel());
    });
    n.accumulate(0, std::move(dx));
  });
  if (node) node->save("x", x);
  return y;
}

Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max) {
  check_floating(x, "clamp");
  TG_CHECK(min || max, "clamp: at least one of min and max must be given (input of shape {})",
           shape_str(x.shape()));
  // A missing bound is an infinite one: the same values, gradients and NaN handling.
  constexpr double inf = std::numeric_limits<double>::infinity();
  double lo = min.value_or(-inf), hi = max.value_or(inf);
  Tensor y = empty(x.shape(), x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    kernels::clamp<T>(x.data<T>(), static_cast<T>(lo), static_cast<T>(hi), y.data<T>(), x.numel());
  });
  Node* node = record("clamp", y, {&x}, [lo, hi](Node& n, const Tensor& dy) {
    Tensor x = n.saved("x");  // [x's shape]
    Tensor dx = empty(x.shape(), x.dtype());
    dispatch(x.dtype(), [&]<class T>() {
      kernels::clamp_backward<T>(x.data<T>(), static_cast<T>(lo), static_cast<T>(hi),
                                 dy.data<T>(), dx.data<T>(), x.numel());
    });
    n.accumulate(0, std::move(dx));
  });
  if (node) node->save("x", x);
  return y;
}

}  // namespace tg
