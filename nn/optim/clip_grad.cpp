#include "nn/optim/clip_grad.h"

#include <cmath>

#include "autograd/error.h"
#include "ops/kernels/reduce_row.h"

namespace tg::optim {

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm) {
  TG_CHECK(max_norm > 0, "clip_grad_norm_: max_norm must be positive, got {}", max_norm);
  double sq = 0;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    dispatch(g.dtype(), [&]<class T>() {
      const T* d = g.data<T>();
      // In double (the norm of millions of float gradients), over fixed lanes so the loop
      // vectorises and the sum does not depend on the thread count.
      sq += kernels::lane_sum<double>(g.numel(), [d](int64_t i) { return double(d[i]) * double(d[i]); });
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
        const int64_t n = g.numel();
        for (int64_t i = 0; i < n; ++i) d[i] *= T(coef);
      });
      g.bump_version();
    }
  }
  return total;
}

}  // namespace tg::optim
