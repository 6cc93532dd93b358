// dropout: in training, zeroes each element with probability p (kept where its Philox uniform
// u >= p) and scales the rest by 1/(1-p). Saves the mask (b8, one byte per element) so backward
// needs no second draw.
#include "ops/dropout.h"

#include <utility>

#include "autograd/tape.h"
#include "ops/kernels/dropout.h"
#include "ops/kernels/philox.h"

namespace tg {

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  TG_CHECK(x.defined(), "dropout: the input tensor is undefined");
  TG_CHECK(is_floating(x.dtype()), "dropout: expected a floating tensor (f32 or f64), got {} of shape {}",
           x.dtype(), shape_str(x.shape()));
  TG_CHECK(p >= 0.0 && p <= 1.0, "dropout: probability p must be in [0, 1], got {} (input of shape {})",
           p, shape_str(x.shape()));
  if (!training || p == 0.0) return x;
  if (p == 1.0) {  // everything dropped: no draw needed, and 1/(1-p) would be inf
    Tensor y = zeros(x.shape(), x.dtype());
    record("dropout", y, {&x}, [](Node& n, const Tensor& dout) {
      n.accumulate(0, zeros(n.input_shape(0), dout.dtype()));
    });
    return y;
  }
  int64_t count = x.numel();
  Tensor mask = empty(x.shape(), DType::b8);  // true = kept
  uint64_t offset = gen.advance(kernels::philox_uniform_blocks(static_cast<uint64_t>(count)));
  kernels::dropout_mask(gen.seed(), offset, p, mask.data<bool>(), count);
  double scale = 1.0 / (1.0 - p);
  Tensor y = empty(x.shape(), x.dtype());
  dispatch(x.dtype(), [&]<class T>() {
    kernels::dropout_apply<T>(x.data<T>(), mask.data<bool>(), static_cast<T>(scale), y.data<T>(), count);
  });
  if (Node* n = record("dropout", y, {&x}, [scale](Node& n, const Tensor& dout) {
        Tensor mask = n.saved("mask");
        Tensor dx = empty(dout.shape(), dout.dtype());
        dispatch(dout.dtype(), [&]<class T>() {
          kernels::dropout_apply<T>(dout.data<T>(), mask.data<bool>(), static_cast<T>(scale),
                                    dx.data<T>(), dx.numel());
        });
        n.accumulate(0, std::move(dx));
      }))
    n->save("mask", mask);
  return y;
}

Tensor dropout(const Tensor& x, double p, bool training) {
  return dropout(x, p, training, default_generator());
}

}  // namespace tg
