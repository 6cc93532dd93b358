#include "nn/optim/clip_grad.h"

#include <cmath>

#include "autograd/error.h"

namespace tg::optim {

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm) {
  TG_CHECK(max_norm > 0, "clip_grad_norm_: max_norm must be positive, got {}", max_norm);
  double sq = 0;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    dispatch(g.dtype(), [&]<class T>() {
      const T* d = g.data<T>();
      double s = 0;  // in double: the norm of millions of float gradients
      for (int64_t i = 0; i < g.numel(); ++i) s += double(d[i]) * double(d[i]);
      sq += s;
    });
  }
  double total = std::sqrt(sq);
  double coef = max_norm / (total + 1e-6);
  if (coef < 1) {
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (!g.defined()) continue;
      dispatch(g.dtype(), [&]<class T>() {
        T* d = g.data<T>();
        for (int64_t i = 0; i < g.numel(); ++i) d[i] *= T(coef);
      });
      g.bump_version();
    }
  }
  return total;
}

}  // namespace tg::optim
