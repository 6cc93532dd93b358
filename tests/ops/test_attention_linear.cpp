// Linear attention: against its quadratic masked form built from plain ops in this file
// (A = φ(Q)φ(K)ᵀ masked, out = A V / rowsum(A)), non-causal and causal (across several chunks,
// T != S both ways), with key padding, fully masked rows, empty sizes; gradients against the
// backward of the composed form (f32 at 1e-5 relative, f64 tighter); f32 against f64; FAVOR+
// against its own composed form and against softmax attention; errors; thread-count
// independence. Finite-difference gradchecks are in tools/gradcheck/cases_attention_linear.cpp.
#include <cmath>
#include <optional>

#include "ops/attention.h"
#include "ops/kernels/attention_linear.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::max_abs;
using testing::max_abs_diff;
using testing::uniform;

// elu(x) + 1 from plain ops: relu(x) + exp(min(x, 0)).
Tensor elu_plus_one(const Tensor& x) { return relu(x) + exp(clamp(x, std::nullopt, 0.0)); }

// FAVOR+ features from plain ops: exp(x̃ Wᵀ - |x̃|²/2) / sqrt(M), x̃ = sqrt(scale) · x.
Tensor favor_features(const Tensor& x, const Tensor& W, double scale) {
  Tensor xs = x * std::sqrt(scale);
  Tensor h = sum(xs * xs, {-1}, true) * 0.5;
  return exp(matmul(xs, transpose(W, 0, 1)) - h) / std::sqrt(static_cast<double>(W.size(0)));
}

// Which keys each query sees: [B, 1, T, S] in `dtype`, 1 = visible.
Tensor visible(int64_t B, int64_t T, int64_t S, bool causal, const std::vector<int64_t>& lengths,
               DType dtype) {
  Tensor m = zeros({B, 1, T, S}, DType::f64);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = 0; s < S; ++s) {
        bool ok = (!causal || s <= t) && (lengths.empty() || s < lengths[size_t(b)]);
        m.set({b, 0, t, s}, ok ? 1.0 : 0.0);
      }
  return m.to(dtype);
}

// The quadratic form on q [B, T, H, D], k [B, S, H, D], v [B, S, H, Dv] -> [B, T, H, Dv], with
// the feature map `phi`. Rows that see no key divide 0 by 0 (callers avoid them).
template <class Phi>
Tensor quadratic(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                 const std::vector<int64_t>& lengths, Phi phi) {
  Tensor fq = permute(phi(q), {0, 2, 1, 3});  // [B, H, T, M]
  Tensor fk = permute(phi(k), {0, 2, 1, 3});  // [B, H, S, M]
  Tensor vh = permute(v, {0, 2, 1, 3});       // [B, H, S, Dv]
  Tensor a = matmul(fq, transpose(fk, -1, -2)) *
             visible(q.size(0), q.size(1), k.size(1), causal, lengths, q.dtype());
  return permute(matmul(a, vh) / sum(a, {-1}, true), {0, 2, 1, 3});
}

Tensor quadratic_elu(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                     const std::vector<int64_t>& lengths = {}) {
  return quadratic(q, k, v, causal, lengths, elu_plus_one);
}

AttentionSpec linear_spec(bool causal, const std::vector<int64_t>& lengths = {}) {
  AttentionSpec spec;
  spec.variant = AttentionVariant::linear;
  spec.causal = causal;
  spec.key_lengths = lengths;
  return spec;
}

struct Sizes {
  int64_t B, T, S, H, D, Dv;
};

struct Inputs {
  Tensor q, k, v;
};

Inputs make_inputs(const Sizes& z, uint64_t seed, DType dtype = DType::f64, double range = 1.5) {
  return {uniform({z.B, z.T, z.H, z.D}, seed, -range, range, dtype),
          uniform({z.B, z.S, z.H, z.D}, seed + 1, -range, range, dtype),
          uniform({z.B, z.S, z.H, z.Dv}, seed + 2, -1, 1, dtype)};
}

// Runs both forms, backward with the same random upstream gradient; compares out, dq, dk, dv
// within rtol of each reference's largest magnitude.
template <class Ref>
void expect_matches(const Sizes& z, const AttentionSpec& spec, Ref ref, DType dtype, double rtol,
                    uint64_t seed) {
  Inputs x = make_inputs(z, seed, dtype);
  Tensor up = uniform({z.B, z.T, z.H, z.Dv}, seed + 3, -1, 1, dtype);
  std::vector<Tensor> grads[2];
  Tensor outs[2];
  for (int which = 0; which < 2; ++which) {
    Tensor q = x.q.detach().clone().requires_grad_(), k = x.k.detach().clone().requires_grad_(),
           v = x.v.detach().clone().requires_grad_();
    outs[which] = which == 0 ? attention(q, k, v, spec) : ref(q, k, v);
    backward(sum(outs[which] * up));
    grads[which] = {q.grad(), k.grad(), v.grad()};
  }
  EXPECT_STREQ(outs[0].grad_fn()->name(), "attention_linear");
  SCOPED_TRACE(fmt::format("B={} T={} S={} H={} D={} Dv={} causal={}", z.B, z.T, z.S, z.H, z.D,
                           z.Dv, spec.causal));
  expect_close(outs[0], outs[1].detach(), rtol, 0.0);
  const char* names[3] = {"dq", "dk", "dv"};
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(names[i]);
    expect_close(grads[0][size_t(i)], grads[1][size_t(i)], rtol, 1e-300);
  }
}

TEST(LinearAttention, NonCausalMatchesQuadraticForm) {
  for (Sizes z : {Sizes{2, 7, 7, 3, 4, 5}, Sizes{1, 5, 9, 2, 3, 2}, Sizes{2, 9, 4, 1, 6, 3},
                  Sizes{1, 150, 130, 2, 8, 5}}) {
    expect_matches(
        z, linear_spec(false),
        [](auto& q, auto& k, auto& v) { return quadratic_elu(q, k, v, false); }, DType::f64, 1e-12,
        10);
  }
}

TEST(LinearAttention, CausalMatchesQuadraticFormAcrossChunks) {
  // 150 rows span three chunks of 64 (the last partial); S < T and S > T shift where keys end.
  for (Sizes z : {Sizes{2, 5, 5, 2, 3, 4}, Sizes{1, 150, 150, 2, 8, 6}, Sizes{1, 150, 100, 1, 5, 3},
                  Sizes{1, 100, 150, 1, 5, 3}, Sizes{1, 64, 64, 1, 4, 4}, Sizes{1, 3, 8, 1, 2, 2},
                  Sizes{1, 8, 3, 1, 2, 2}}) {
    expect_matches(
        z, linear_spec(true),
        [](auto& q, auto& k, auto& v) { return quadratic_elu(q, k, v, true); }, DType::f64, 1e-12,
        20);
  }
}

TEST(LinearAttention, GradientsMatchQuadraticFormInFloat) {
  for (bool causal : {false, true})
    for (Sizes z : {Sizes{2, 9, 9, 2, 4, 3}, Sizes{1, 140, 120, 2, 8, 8}}) {
      expect_matches(
          z, linear_spec(causal),
          [causal](auto& q, auto& k, auto& v) { return quadratic_elu(q, k, v, causal); },
          DType::f32, 1e-5, 30);
    }
}

TEST(LinearAttention, KeyPaddingContributesNothing) {
  for (bool causal : {false, true}) {
    std::vector<int64_t> lengths = {5, 2};
    Sizes z{2, 6, 7, 2, 3, 4};
    expect_matches(
        z, linear_spec(causal, lengths),
        [&](auto& q, auto& k, auto& v) { return quadratic_elu(q, k, v, causal, lengths); },
        DType::f64, 1e-12, 40);
    // The same through key_padding_mask, and with padded keys changed to other values.
    Inputs x = make_inputs(z, 44);
    AttentionSpec by_mask = linear_spec(causal);
    by_mask.key_padding_mask = zeros({2, 7}, DType::b8);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t s = lengths[size_t(b)]; s < 7; ++s)
        by_mask.key_padding_mask.data<bool>()[b * 7 + s] = true;
    Tensor k2 = x.k.clone(), v2 = x.v.clone();
    k2.set({1, 4, 0, 1}, 9.0);
    v2.set({0, 6, 1, 2}, -7.0);
    Tensor a = attention(x.q, x.k, x.v, linear_spec(causal, lengths));
    EXPECT_EQ(max_abs_diff(a, attention(x.q, k2, v2, by_mask)), 0.0);
  }
}

TEST(LinearAttention, RowsWithoutVisibleKeysAreZeroWithZeroGradient) {
  // Batch 1 pads every key; causal with key 0 padded leaves query 0 of batch 0 with nothing.
  Sizes z{2, 3, 4, 1, 2, 3};
  for (bool causal : {false, true}) {
    Inputs x = make_inputs(z, 50);
    Tensor q = x.q.requires_grad_(), k = x.k.requires_grad_(), v = x.v.requires_grad_();
    AttentionSpec spec = linear_spec(causal);
    spec.key_padding_mask = zeros({2, 4}, DType::b8);
    bool* m = spec.key_padding_mask.data<bool>();
    m[0] = true;
    for (int s = 0; s < 4; ++s) m[4 + s] = true;
    Tensor out = attention(q, k, v, spec);
    backward(sum(out * out));
    for (int64_t t = 0; t < 3; ++t)
      for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(out.at({1, t, 0, j}), 0.0);
    if (causal) {
      for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(out.at({0, 0, 0, j}), 0.0);
    }
    for (int64_t i = 0; i < 2; ++i) EXPECT_EQ(q.grad().at({1, 0, 0, i}), 0.0);
    for (const Tensor& g : {q.grad(), k.grad(), v.grad()})
      for (double e : g.to_vector()) EXPECT_TRUE(std::isfinite(e));
    // Key 0 of batch 0 and every key of batch 1 are padding: no gradient.
    for (int64_t i = 0; i < 2; ++i) EXPECT_EQ(k.grad().at({0, 0, 0, i}), 0.0);
    EXPECT_EQ(max_abs(narrow(k.grad(), 0, 1, 1)), 0.0);
    EXPECT_EQ(max_abs(narrow(v.grad(), 0, 1, 1)), 0.0);
  }
}

TEST(LinearAttention, EmptySizes) {
  for (bool causal : {false, true}) {
    Tensor q = uniform({1, 3, 1, 2}, 60), k = zeros({1, 0, 1, 2}, DType::f64),
           v = zeros({1, 0, 1, 4}, DType::f64);
    q.requires_grad_();
    Tensor out = attention(q, k, v, linear_spec(causal));
    EXPECT_EQ(out.shape(), Shape({1, 3, 1, 4}));
    EXPECT_EQ(max_abs(out), 0.0);
    backward(sum(out));
    EXPECT_EQ(max_abs(q.grad()), 0.0);
    Tensor q0 = zeros({1, 0, 1, 2}, DType::f64), k1 = uniform({1, 3, 1, 2}, 61).requires_grad_();
    Tensor v1 = uniform({1, 3, 1, 4}, 62).requires_grad_();
    Tensor out0 = attention(q0, k1, v1, linear_spec(causal));
    EXPECT_EQ(out0.shape(), Shape({1, 0, 1, 4}));
    backward(sum(out0));
    EXPECT_EQ(max_abs(k1.grad()), 0.0);
    EXPECT_EQ(max_abs(v1.grad()), 0.0);
  }
}

TEST(LinearAttention, FloatMatchesDouble) {
  for (bool causal : {false, true}) {
    Inputs x = make_inputs({2, 80, 70, 2, 6, 5}, 70);
    Tensor a =
        attention(x.q.to(DType::f32), x.k.to(DType::f32), x.v.to(DType::f32), linear_spec(causal));
    Tensor b = attention(x.q, x.k, x.v, linear_spec(causal));
    EXPECT_EQ(a.dtype(), DType::f32);
    expect_close(a.to(DType::f64), b, 1e-5, 0.0);
  }
}

TEST(LinearAttention, ScaleIsIgnoredByElu) {
  Inputs x = make_inputs({1, 4, 4, 1, 3, 2}, 80);
  AttentionSpec spec = linear_spec(true);
  Tensor a = attention(x.q, x.k, x.v, spec);
  spec.scale = 5.0;
  EXPECT_EQ(max_abs_diff(a, attention(x.q, x.k, x.v, spec)), 0.0);
}

TEST(LinearAttention, SameResultsWhateverTheThreadCount) {
  Inputs x = make_inputs({2, 90, 90, 2, 8, 8}, 90);
  int saved = get_num_threads();
  std::vector<Tensor> outs, grads;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    Tensor q = x.q.detach().clone().requires_grad_();
    Tensor out = attention(q, x.k, x.v, linear_spec(true));
    backward(sum(out * out));
    outs.push_back(out.detach());
    grads.push_back(q.grad());
  }
  set_num_threads(saved);
  EXPECT_EQ(max_abs_diff(outs[0], outs[1]), 0.0);
  EXPECT_EQ(max_abs_diff(grads[0], grads[1]), 0.0);
}

// At T >= 4096 with more heads than threads, each thread steps a run of heads together (forward
// and backward); each head's arithmetic is that of one head alone: the same bits on 1 and 2
// threads, with key padding, T != S, causal or not, elu and FAVOR+.
TEST(LinearAttention, RunsOfHeadsGiveTheBitsOfOneHeadAlone) {
  Inputs x = make_inputs({2, 4100, 4200, 3, 8, 8}, 95, DType::f32);
  Tensor up = uniform({2, 4100, 3, 8}, 99, -1, 1, DType::f32);
  int saved = get_num_threads();
  for (bool causal : {false, true})
    for (bool favor : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "causal " << causal << " favor " << favor);
      AttentionSpec spec = linear_spec(causal, {4200, 3000});
      if (favor) spec.feature_map = "favor:16:11";
      std::vector<Tensor> got[2];
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        Tensor q = x.q.detach().clone().requires_grad_(), k = x.k.detach().clone().requires_grad_(),
               v = x.v.detach().clone().requires_grad_();
        Tensor out = attention(q, k, v, spec);
        backward(sum(out * up));
        got[threads - 1] = {out.detach(), q.grad(), k.grad(), v.grad()};
      }
      for (size_t i = 0; i < 4; ++i) EXPECT_EQ(max_abs_diff(got[0][i], got[1][i]), 0.0) << i;
    }
  set_num_threads(saved);
}

// FAVOR+: the kernel's features against the same map built from plain ops (same projection).
TEST(LinearAttention, FavorMatchesItsQuadraticForm) {
  const int64_t M = 7, D = 3;
  const double scale = 0.4;
  Tensor W = empty({M, D}, DType::f64);
  kernels::favor_projection<double>(M, D, 11, W.data<double>());
  auto phi = [&](const Tensor& x) { return favor_features(x, W, scale); };
  for (bool causal : {false, true}) {
    for (const auto& z_lengths : {std::pair{Sizes{2, 6, 6, 2, D, 4}, std::vector<int64_t>{6, 4}},
                                  std::pair{Sizes{1, 130, 100, 1, D, 2}, std::vector<int64_t>{90}}}) {
      // Not a structured binding: clang 14 cannot capture one in the lambda below.
      const Sizes& z = z_lengths.first;
      const std::vector<int64_t>& lengths = z_lengths.second;
      AttentionSpec spec = linear_spec(causal, lengths);
      spec.feature_map = "favor:7:11";
      spec.scale = scale;
      expect_matches(
          z, spec,
          [&](auto& q, auto& k, auto& v) { return quadratic(q, k, v, causal, lengths, phi); },
          DType::f64, 1e-11, 100);
    }
  }
}

TEST(LinearAttention, FavorProjectionIsOrthogonalInBlocks) {
  const int64_t M = 10, D = 4;
  std::vector<double> W(size_t(M * D)), W2(W.size());
  kernels::favor_projection<double>(M, D, 5, W.data());
  kernels::favor_projection<double>(M, D, 5, W2.data());
  EXPECT_EQ(W, W2);
  for (int64_t b0 = 0; b0 < M; b0 += D)
    for (int64_t i = b0; i < std::min(M, b0 + D); ++i)
      for (int64_t j = b0; j < i; ++j) {
        double dot = 0;
        for (int64_t c = 0; c < D; ++c) dot += W[size_t(i * D + c)] * W[size_t(j * D + c)];
        EXPECT_NEAR(dot, 0.0, 1e-12) << i << " " << j;
      }
  kernels::favor_projection<double>(M, D, 6, W2.data());
  EXPECT_NE(W, W2);
}

// With many features FAVOR+ estimates softmax attention (a statistical check, loose bound).
TEST(LinearAttention, FavorApproximatesSoftmaxAttention) {
  Inputs x = make_inputs({1, 6, 6, 1, 4, 3}, 120, DType::f64, 0.7);
  AttentionSpec dense;
  dense.causal = true;
  Tensor ref = attention(x.q, x.k, x.v, dense);
  AttentionSpec fav = linear_spec(true);
  fav.feature_map = "favor:4096:1";
  Tensor approx = attention(x.q, x.k, x.v, fav);
  EXPECT_LT(max_abs_diff(approx, ref), 0.03) << approx << ref;
}

TEST(LinearAttention, Errors) {
  Inputs x = make_inputs({1, 3, 3, 1, 2, 2}, 130);
  AttentionSpec spec = linear_spec(false);
  for (const char* bad : {"relu", "favor:0", "favor:x", "favor:4:", "favor:4:-1", "favor4"}) {
    spec.feature_map = bad;
    EXPECT_TG_ERROR(attention(x.q, x.k, x.v, spec),
                    "attention: linear: unknown feature_map '" + std::string(bad));
  }
  spec.feature_map = "favor";
  spec.scale = 0.0;
  EXPECT_TG_ERROR(attention(x.q, x.k, x.v, spec), "favor needs scale > 0");
  spec = linear_spec(false);
  spec.attn_mask = ones({3, 3}, DType::b8);
  EXPECT_TG_ERROR(attention(x.q, x.k, x.v, spec),
                  "linear takes causal and key padding masks, not attn_mask");
  spec = linear_spec(false);
  spec.dropout_p = 0.1;
  EXPECT_TG_ERROR(attention(x.q, x.k, x.v, spec), "linear has no attention weights to drop out");
  Tensor w;
  EXPECT_TG_ERROR(attention(x.q, x.k, x.v, linear_spec(false), &w),
                  "only the dense variant returns its weights");
}

}  // namespace
}  // namespace tg
