#pragma once
// Helpers of the attention variant tests: run a variant forward and backward with a given
// upstream gradient, compare two runs with a tolerance relative to the reference's magnitude,
// and a plain-loop attention over an explicit visibility rule.
#include <cmath>
#include <functional>
#include <vector>

#include "ops/attention.h"
#include "test_util.h"

namespace tg::testing {

/// The output and the gradients of q, k, v for upstream gradient dout.
struct AttentionRun {
  Tensor out, dq, dk, dv;
};

inline AttentionRun run_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const AttentionSpec& spec, const Tensor& dout) {
  Tensor lq = q.detach().clone(), lk = k.detach().clone(), lv = v.detach().clone();
  lq.requires_grad_(), lk.requires_grad_(), lv.requires_grad_();
  Tensor out = attention(lq, lk, lv, spec);
  backward(out, dout);
  return {out.detach(), lq.grad(), lk.grad(), lv.grad()};
}

/// max|a - b| <= rtol * max|ref| + atol, for the output and each gradient.
inline void expect_runs_close(const AttentionRun& a, const AttentionRun& ref, double rtol = 1e-5,
                              double atol = 1e-7) {
  const char* names[] = {"out", "dq", "dk", "dv"};
  const Tensor* as[] = {&a.out, &a.dq, &a.dk, &a.dv};
  const Tensor* rs[] = {&ref.out, &ref.dq, &ref.dk, &ref.dv};
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(as[i]->defined() && rs[i]->defined()) << names[i];
    ASSERT_EQ(as[i]->shape(), rs[i]->shape()) << names[i];
    double tol = rtol * max_abs(*rs[i]) + atol;
    EXPECT_LE(max_abs_diff(*as[i], *rs[i]), tol)
        << names[i] << " (max |ref| " << max_abs(*rs[i]) << ")";
  }
}

/// Bitwise equality of two runs (thread-count independence).
inline void expect_runs_equal(const AttentionRun& a, const AttentionRun& b) {
  EXPECT_EQ(a.out.to_vector(), b.out.to_vector());
  EXPECT_EQ(a.dq.to_vector(), b.dq.to_vector());
  EXPECT_EQ(a.dk.to_vector(), b.dk.to_vector());
  EXPECT_EQ(a.dv.to_vector(), b.dv.to_vector());
}

/// softmax(scale · q kᵀ) v by plain loops in f64 over the keys visible(b, t, s) allows; rows
/// seeing nothing give zeros. q [B, T, H, D], k [B, S, H, D], v [B, S, H, Dv].
inline Tensor naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                              const std::function<bool(int64_t, int64_t, int64_t)>& visible) {
  int64_t B = q.size(0), T = q.size(1), H = q.size(2), D = q.size(3), S = k.size(1), Dv = v.size(3);
  std::vector<double> Q = q.to_vector(), K = k.to_vector(), V = v.to_vector();
  std::vector<double> out(size_t(B * T * H * Dv), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> sc(size_t(S), -INFINITY);
        double mx = -INFINITY;
        for (int64_t s = 0; s < S; ++s) {
          if (!visible(b, t, s)) continue;
          double dot = 0;
          for (int64_t i = 0; i < D; ++i)
            dot +=
                Q[size_t(((b * T + t) * H + h) * D + i)] * K[size_t(((b * S + s) * H + h) * D + i)];
          sc[size_t(s)] = scale * dot;
          mx = std::max(mx, sc[size_t(s)]);
        }
        if (mx == -INFINITY) continue;
        double sum = 0;
        for (int64_t s = 0; s < S; ++s)
          sum += sc[size_t(s)] == -INFINITY ? 0.0 : std::exp(sc[size_t(s)] - mx);
        for (int64_t s = 0; s < S; ++s) {
          if (sc[size_t(s)] == -INFINITY) continue;
          double p = std::exp(sc[size_t(s)] - mx) / sum;
          for (int64_t j = 0; j < Dv; ++j)
            out[size_t(((b * T + t) * H + h) * Dv + j)] +=
                p * V[size_t(((b * S + s) * H + h) * Dv + j)];
        }
      }
  return tensor(out, {B, T, H, Dv}, DType::f64);
}

/// b8 [T, S] from a rule on (t, s).
inline Tensor bool_mask(int64_t T, int64_t S, const std::function<bool(int64_t, int64_t)>& allow) {
  Tensor m = zeros({T, S}, DType::b8);
  bool* p = m.data<bool>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s < S; ++s) p[t * S + s] = allow(t, s);
  return m;
}

}  // namespace tg::testing
