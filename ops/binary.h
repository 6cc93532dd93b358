#pragma once
// Binary elementwise ops with NumPy broadcasting: add, sub, mul, div, and their scalar forms and
// C++ operators. Each op's gradient rule sits beside its forward in binary.cpp; gradients of a
// broadcast input are summed back to its shape by the engine (Node::accumulate).
#include "autograd/tensor.h"

namespace tg {

/// a + b, shapes broadcast (as torch.add). Both floating, same dtype.
Tensor add(const Tensor& a, const Tensor& b);
/// a - b, shapes broadcast.
Tensor sub(const Tensor& a, const Tensor& b);
/// a * b, shapes broadcast.
Tensor mul(const Tensor& a, const Tensor& b);
/// a / b, shapes broadcast.
Tensor div(const Tensor& a, const Tensor& b);

Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
/// b - a.
Tensor rsub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
/// b / a.
Tensor rdiv(const Tensor& a, double b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(const Tensor& a, double b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(const Tensor& a, double b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(const Tensor& a, double b);
Tensor operator/(double a, const Tensor& b);
Tensor operator-(const Tensor& a);

}  // namespace tg
