// cross_entropy: fused log-softmax + negative log-likelihood over logits [N, C] (or [C]).
// Saves the target and the softmax probs [N, C] the forward computes on the way to the loss (as
// PyTorch's log_softmax saves its output); backward scales them in one pass.
#include "ops/loss.h"

#include <cmath>
#include <utility>

#include "autograd/tape.h"
#include "ops/kernels/cross_entropy.h"

namespace tg {
namespace {

enum class Reduction { none, mean, sum };

Reduction parse_reduction(std::string_view r) {
  if (r == "mean") return Reduction::mean;
  if (r == "sum") return Reduction::sum;
  if (r == "none") return Reduction::none;
  fail("cross_entropy: unknown reduction '{}' (expected 'mean', 'sum' or 'none')", r);
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                     std::string_view reduction) {
  Reduction red = parse_reduction(reduction);
  TG_CHECK(logits.defined() && target.defined(), "cross_entropy: logits or target is undefined");
  const Shape& ls = logits.shape();
  TG_CHECK(is_floating(logits.dtype()),
           "cross_entropy: logits must be floating (f32 or f64), got {} of shape {}",
           logits.dtype(), shape_str(ls));
  TG_CHECK(logits.dim() == 1 || logits.dim() == 2,
           "cross_entropy: logits must be [N, C] or [C], got shape {}", shape_str(ls));
  TG_CHECK(target.dtype() == DType::i64,
           "cross_entropy: target must hold i64 class ids, got {} of shape {}", target.dtype(),
           shape_str(target.shape()));
  Shape expected = logits.dim() == 2 ? Shape{ls[0]} : Shape{};
  TG_CHECK(target.shape() == expected,
           "cross_entropy: target of shape {} does not match logits of shape {} (expected {})",
           shape_str(target.shape()), shape_str(ls), shape_str(expected));

  int64_t N = logits.dim() == 2 ? ls[0] : 1, C = ls.back();
  const int64_t* t = target.data<int64_t>();
  int64_t count = 0;  // targets not ignored
  for (int64_t i = 0; i < N; ++i) {
    if (t[i] == ignore_index) continue;
    TG_CHECK(t[i] >= 0 && t[i] < C,
             "cross_entropy: target {} at position {} is out of range for {} classes (logits of "
             "shape {}, ignore_index {})",
             t[i], i, C, shape_str(ls), ignore_index);
    ++count;
  }

  Tensor lse = empty({N}, logits.dtype());  // [N]
  Tensor probs = should_record({&logits}) ? empty(ls, logits.dtype()) : Tensor();  // [N, C] or [C]
  Tensor out = empty(red == Reduction::none ? expected : Shape{}, logits.dtype());
  dispatch(logits.dtype(), [&]<class T>() {
    T* loss = red == Reduction::none ? out.data<T>() : nullptr;
    T* p = probs.defined() ? probs.data<T>() : nullptr;
    double total = kernels::cross_entropy_forward<T>(logits.data<T>(), t, lse.data<T>(), p, loss,
                                                     N, C, ignore_index);
    // With every target ignored the mean is 0/0 = NaN, as in PyTorch.
    if (red == Reduction::sum) out.data<T>()[0] = static_cast<T>(total);
    if (red == Reduction::mean) out.data<T>()[0] = static_cast<T>(total / static_cast<double>(count));
  });

  if (Node* n = record("cross_entropy", out, {&logits},
                       [N, C, ignore_index, red, count](Node& n, const Tensor& dout) {
                         Tensor probs = n.saved("probs"), target = n.saved("target");
                         Tensor dx = empty(probs.shape(), probs.dtype());
                         double scale = red == Reduction::mean ? 1.0 / static_cast<double>(count) : 1.0;
                         int64_t stride = red == Reduction::none ? 1 : 0;
                         dispatch(probs.dtype(), [&]<class T>() {
                           kernels::cross_entropy_backward<T>(
                               probs.data<T>(), target.data<int64_t>(), dout.data<T>(), stride,
                               static_cast<T>(scale), dx.data<T>(), N, C, ignore_index);
                         });
                         n.accumulate(0, std::move(dx));
                       })) {
    n->save("probs", probs);
    n->save("target", target);
  }
  return out;
}

}  // namespace tg
