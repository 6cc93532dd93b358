// Dense attention, the reference of every other variant, checked against a naive composition of
// existing ops (permute, matmul, softmax, masked_fill) in f64: forward, returned weights and
// gradients for each mask (causal, key padding by lengths and by a b8 mask, bool and additive
// attn_mask, broadcast masks, combinations), T != S, D != Dv, fully masked rows (zeros, not
// NaN); dropout (same seed -> same output, the dropped fraction near p, the weights dropped are
// AttnDropout::keep's); f32 against f64; the errors users get.
#include <cmath>
#include <limits>

#include "ops/attention.h"
#include "ops/kernels/attention_mask.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::max_abs_diff;
using testing::uniform;

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Dims {
  int64_t B, T, S, H, D, Dv;
};

// A mask configuration: the spec it sets, and what it means, written out here from the API's
// documentation (not from the kernels): bias(b, h, t, s) = -inf where masked, else the additive
// value (0 without one).
struct Masked {
  AttentionSpec spec;
  std::vector<double> bias;  // [B, H, T, S]
};

// kind: "none", "causal", "lengths", "padding", "bool", "additive", "causal+padding",
// "causal+additive", "bool_broadcast" ([T, S] b8), "additive_neg_inf" (additive with -inf
// entries and a fully masked row).
Masked make_mask(const std::string& kind, const Dims& d, uint64_t seed) {
  Masked m;
  m.bias.assign(size_t(d.B * d.H * d.T * d.S), 0.0);
  auto at = [&](int64_t b, int64_t h, int64_t t, int64_t s) -> double& {
    return m.bias[size_t(((b * d.H + h) * d.T + t) * d.S + s)];
  };
  auto each = [&](auto fn) {
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t h = 0; h < d.H; ++h)
        for (int64_t t = 0; t < d.T; ++t)
          for (int64_t s = 0; s < d.S; ++s) fn(b, h, t, s);
  };
  bool causal = kind.starts_with("causal");
  if (causal) {
    m.spec.causal = true;
    each([&](int64_t b, int64_t h, int64_t t, int64_t s) {
      if (s > t) at(b, h, t, s) = -kInf;
    });
  }
  if (kind == "lengths" || kind == "padding" || kind == "causal+padding") {
    std::vector<int64_t> len(size_t(d.B));
    for (int64_t b = 0; b < d.B; ++b) len[size_t(b)] = std::max<int64_t>(1, d.S - 1 - 2 * b);
    std::vector<double> pad(size_t(d.B * d.S));
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t s = 0; s < d.S; ++s) pad[size_t(b * d.S + s)] = s >= len[size_t(b)];
    if (kind == "lengths")
      m.spec.key_lengths = len;
    else
      m.spec.key_padding_mask = tensor(pad, {d.B, d.S}, DType::b8);
    each([&](int64_t b, int64_t h, int64_t t, int64_t s) {
      if (s >= len[size_t(b)]) at(b, h, t, s) = -kInf;
    });
  }
  if (kind == "bool" || kind == "bool_broadcast") {
    // [B, 1, T, S] or [T, S]; every row keeps its first key so no row is fully masked.
    bool bc = kind == "bool_broadcast";
    int64_t nb = bc ? 1 : d.B;
    std::vector<double> u = uniform({nb * d.T * d.S}, seed, 0, 1).to_vector(), allow(u.size());
    for (size_t i = 0; i < u.size(); ++i) allow[i] = u[i] < 0.6 || int64_t(i) % d.S == 0;
    m.spec.attn_mask =
        bc ? tensor(allow, {d.T, d.S}, DType::b8) : tensor(allow, {d.B, 1, d.T, d.S}, DType::b8);
    each([&](int64_t b, int64_t h, int64_t t, int64_t s) {
      if (!allow[size_t(((bc ? 0 : b) * d.T + t) * d.S + s)]) at(b, h, t, s) = -kInf;
    });
  }
  if (kind == "additive" || kind == "causal+additive" || kind == "additive_neg_inf") {
    // [B, H, T, S] values in [-2, 2]; with -inf entries, row 1 of (0, 0) is fully masked.
    std::vector<double> a = uniform({d.B, d.H, d.T, d.S}, seed, -2, 2).to_vector();
    if (kind == "additive_neg_inf") {
      for (size_t i = 0; i < a.size(); i += 3) a[i] = -kInf;
      for (int64_t s = 0; s < d.S; ++s) a[size_t(d.S + s)] = -kInf;
    }
    m.spec.attn_mask = tensor(a, {d.B, d.H, d.T, d.S}, DType::f64);
    for (size_t i = 0; i < a.size(); ++i) m.bias[i] += a[i];
  }
  return m;
}

const std::vector<std::string> kKinds = {
    "none",           "causal",   "lengths",        "padding",         "bool",
    "bool_broadcast", "additive", "causal+padding", "causal+additive", "additive_neg_inf"};

// softmax(scale · Q Kᵀ + bias) V by composition, with zero weights for fully masked rows:
// such rows get a finite fill (any value) and are then multiplied by 0. `keep` scales the
// weights after softmax (dropout), `weights` receives them before.
Tensor composed(const Tensor& q, const Tensor& k, const Tensor& v, double scale,
                const std::vector<double>& bias, const std::vector<double>* keep = nullptr,
                Tensor* weights = nullptr) {
  int64_t B = q.size(0), T = q.size(1), H = q.size(2), S = k.size(1);
  std::vector<double> finite(bias.size()), masked(bias.size()), rowvalid(size_t(B * H * T), 0.0);
  for (size_t r = 0; r < rowvalid.size(); ++r)
    for (int64_t s = 0; s < S; ++s)
      rowvalid[r] = rowvalid[r] || bias[r * size_t(S) + size_t(s)] > -kInf;
  for (size_t i = 0; i < bias.size(); ++i) {
    finite[i] = bias[i] > -kInf ? bias[i] : 0.0;
    masked[i] = bias[i] == -kInf && rowvalid[i / size_t(S)];
  }
  Tensor qp = permute(q, {0, 2, 1, 3}), kt = permute(k, {0, 2, 3, 1}),
         vp = permute(v, {0, 2, 1, 3});
  Tensor sc = matmul(qp, kt) * scale + tensor(finite, {B, H, T, S}, q.dtype());
  sc = masked_fill(sc, tensor(masked, {B, H, T, S}, DType::b8), -kInf);
  Tensor p = softmax(sc, -1) * tensor(rowvalid, {B, H, T, 1}, q.dtype());
  if (weights) *weights = p.detach();
  if (keep) p = p * tensor(*keep, {B, H, T, S}, q.dtype());
  return permute(matmul(p, vp), {0, 2, 1, 3});
}

struct Grads {
  Tensor out, dq, dk, dv;
};

// Forward, then backward with upstream gradient dout; the leaves' gradients are taken and reset.
template <class F>
Grads run(F f, Tensor& q, Tensor& k, Tensor& v, const Tensor& dout) {
  Grads g;
  g.out = f();
  backward(g.out, dout);
  g.dq = q.grad(), g.dk = k.grad(), g.dv = v.grad();
  q.set_grad(Tensor()), k.set_grad(Tensor()), v.set_grad(Tensor());
  return g;
}

struct Inputs {
  Tensor q, k, v, dout;
};

Inputs make_inputs(const Dims& d, uint64_t seed, DType dt = DType::f64) {
  Inputs in;
  in.q = uniform({d.B, d.T, d.H, d.D}, seed, -1, 1, dt).requires_grad_();
  in.k = uniform({d.B, d.S, d.H, d.D}, seed + 1, -1, 1, dt).requires_grad_();
  in.v = uniform({d.B, d.S, d.H, d.Dv}, seed + 2, -1, 1, dt).requires_grad_();
  in.dout = uniform({d.B, d.T, d.H, d.Dv}, seed + 3, -1, 1, dt);
  return in;
}

void expect_grads_close(const Grads& a, const Grads& b, double rtol, double atol) {
  {
    SCOPED_TRACE("out");
    expect_close(a.out, b.out, rtol, atol);
  }
  {
    SCOPED_TRACE("dq");
    expect_close(a.dq, b.dq, rtol, atol);
  }
  {
    SCOPED_TRACE("dk");
    expect_close(a.dk, b.dk, rtol, atol);
  }
  {
    SCOPED_TRACE("dv");
    expect_close(a.dv, b.dv, rtol, atol);
  }
}

const std::vector<Dims> kDims = {{2, 5, 5, 2, 3, 3}, {2, 3, 6, 2, 4, 2}, {1, 6, 4, 3, 2, 5}};

TEST(AttentionDense, MatchesComposedOps) {
  for (const Dims& d : kDims)
    for (const std::string& kind : kKinds) {
      SCOPED_TRACE(kind + " T " + std::to_string(d.T) + " S " + std::to_string(d.S));
      Inputs in = make_inputs(d, 10);
      Masked m = make_mask(kind, d, 77);
      double scale = 1 / std::sqrt(double(d.D));
      Grads ref =
          run([&] { return composed(in.q, in.k, in.v, scale, m.bias); }, in.q, in.k, in.v, in.dout);
      Grads got =
          run([&] { return attention(in.q, in.k, in.v, m.spec); }, in.q, in.k, in.v, in.dout);
      expect_grads_close(got, ref, 1e-12, 1e-13);
      ASSERT_NE(got.out.grad_fn(), nullptr);
      EXPECT_STREQ(got.out.grad_fn()->name(), "attention_dense");
    }
}

TEST(AttentionDense, ReturnsWeightsAfterMaskBeforeDropout) {
  Dims d{2, 4, 6, 2, 3, 3};
  for (std::string kind : {"causal+padding", "bool", "additive_neg_inf"}) {
    SCOPED_TRACE(kind);
    Inputs in = make_inputs(d, 20);
    Masked m = make_mask(kind, d, 5);
    m.spec.scale = 0.7;
    Tensor ref_w, w;
    composed(in.q, in.k, in.v, 0.7, m.bias, nullptr, &ref_w);
    attention(in.q, in.k, in.v, m.spec, &w);
    EXPECT_EQ(w.shape(), Shape({d.B, d.H, d.T, d.S}));
    expect_close(w, ref_w, 1e-12, 1e-14);
    m.spec.dropout_p = 0.5;
    Tensor w_drop;
    attention(in.q, in.k, in.v, m.spec, &w_drop);
    expect_close(w_drop, ref_w, 1e-12, 1e-14);
  }
}

TEST(AttentionDense, FullyMaskedRowsGiveZerosNotNaN) {
  Dims d{2, 3, 4, 2, 3, 2};
  Inputs in = make_inputs(d, 30);
  AttentionSpec spec;
  spec.key_lengths = {0, 4};  // batch 0 sees no key at all
  Grads g = run([&] { return attention(in.q, in.k, in.v, spec); }, in.q, in.k, in.v, in.dout);
  for (const Tensor& t : {g.out, g.dq, g.dk, g.dv})
    for (double x : t.to_vector()) ASSERT_TRUE(std::isfinite(x));
  EXPECT_EQ(testing::max_abs(narrow(g.out, 0, 0, 1)), 0.0);
  EXPECT_EQ(testing::max_abs(narrow(g.dq, 0, 0, 1)), 0.0);
  EXPECT_EQ(testing::max_abs(narrow(g.dk, 0, 0, 1)), 0.0);
  EXPECT_GT(testing::max_abs(narrow(g.out, 0, 1, 1)), 0.0);
}

// Dropout with keep(b, h, t, s) as the test's own tensor of 0 and 1/(1-p).
std::vector<double> keep_scales(const Dims& d, double p, uint64_t seed, uint64_t offset) {
  kernels::AttnDims ad{d.B, d.T, d.S, d.H, d.D, d.Dv};
  kernels::AttnDropout drop{p, seed, offset};
  std::vector<double> keep(size_t(d.B * d.H * d.T * d.S));
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h)
      for (int64_t t = 0; t < d.T; ++t)
        for (int64_t s = 0; s < d.S; ++s)
          keep[size_t(((b * d.H + h) * d.T + t) * d.S + s)] =
              drop.keep(ad, b, h, t, s) ? 1 / (1 - p) : 0.0;
  return keep;
}

TEST(AttentionDense, DropoutMatchesComposedWithTheSameKeepMask) {
  Dims d{2, 5, 6, 2, 3, 4};
  for (std::string kind : {"none", "causal+padding"}) {
    SCOPED_TRACE(kind);
    Inputs in = make_inputs(d, 40);
    Masked m = make_mask(kind, d, 6);
    Generator gen(123);
    gen.set_offset(7);
    m.spec.dropout_p = 0.3;
    m.spec.generator = &gen;
    std::vector<double> keep = keep_scales(d, 0.3, 123, 7);
    double scale = 1 / std::sqrt(3.0);
    Grads ref = run([&] { return composed(in.q, in.k, in.v, scale, m.bias, &keep); }, in.q, in.k,
                    in.v, in.dout);
    Grads got = run([&] { return attention(in.q, in.k, in.v, m.spec); }, in.q, in.k, in.v, in.dout);
    expect_grads_close(got, ref, 1e-12, 1e-13);
  }
}

// Causal heads longer than one row block (32 rows up to T = 128, 64 rows beyond) skip the score
// blocks above the diagonal in forward and backward; with T != S the skipped keys differ (S > T: keys no query sees get zero
// gradients). Checked against the composition, with masks and with dropout.
TEST(AttentionDense, CausalBlocksMatchComposedOpsPastOneRowBlock) {
  // Odd S puts rows at odd flat indices: dropout's Philox pairs then straddle rows.
  const std::vector<Dims> dims = {{1, 150, 150, 2, 4, 3}, {2, 130, 201, 1, 3, 2}, {1, 200, 99, 1, 3, 2},
                                  {2, 64, 64, 2, 4, 4},   {1, 70, 75, 1, 3, 2}};
  for (const Dims& d : dims)
    for (std::string kind : {"causal", "causal+padding", "causal+additive"})
      for (double p : {0.0, 0.25}) {
        SCOPED_TRACE(kind + " T " + std::to_string(d.T) + " S " + std::to_string(d.S) + " p " + std::to_string(p));
        Inputs in = make_inputs(d, 60);
        Masked m = make_mask(kind, d, 8);
        Generator gen(321);
        gen.set_offset(5);
        std::vector<double> keep;
        if (p > 0) {
          m.spec.dropout_p = p;
          m.spec.generator = &gen;
          keep = keep_scales(d, p, 321, 5);
        }
        double scale = 1 / std::sqrt(double(d.D));
        Grads ref = run([&] { return composed(in.q, in.k, in.v, scale, m.bias, p > 0 ? &keep : nullptr); },
                        in.q, in.k, in.v, in.dout);
        Grads got = run([&] { return attention(in.q, in.k, in.v, m.spec); }, in.q, in.k, in.v, in.dout);
        expect_grads_close(got, ref, 1e-12, 1e-13);
      }
}

TEST(AttentionDense, DropoutSameSeedSameOutputAndFractionNearP) {
  // v = identity over keys (Dv = S), so out[b, t, h, s] = dropped weight (b, h, t, s).
  Dims d{2, 64, 64, 2, 8, 64};
  Tensor q = uniform({d.B, d.T, d.H, d.D}, 50), k = uniform({d.B, d.S, d.H, d.D}, 51);
  std::vector<double> eye(size_t(d.B * d.S * d.H * d.S), 0.0);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t s = 0; s < d.S; ++s)
      for (int64_t h = 0; h < d.H; ++h) eye[size_t(((b * d.S + s) * d.H + h) * d.S + s)] = 1;
  Tensor v = tensor(eye, {d.B, d.S, d.H, d.S}, DType::f64);
  for (double p : {0.1, 0.5}) {
    SCOPED_TRACE(p);
    AttentionSpec spec;
    spec.dropout_p = p;
    Generator g1(9), g2(9), g3(10);
    spec.generator = &g1;
    Tensor a = attention(q, k, v, spec), a2 = attention(q, k, v, spec);  // g1 advances
    spec.generator = &g2;
    Tensor b = attention(q, k, v, spec);
    spec.generator = &g3;
    Tensor c = attention(q, k, v, spec);
    EXPECT_EQ(max_abs_diff(a, b), 0.0);
    EXPECT_GT(max_abs_diff(a, a2), 0.0);
    EXPECT_GT(max_abs_diff(a, c), 0.0);
    std::vector<double> va = a.to_vector();
    int64_t zeros = 0;
    for (double x : va) zeros += x == 0.0;  // softmax weights are > 0, so 0 means dropped
    EXPECT_NEAR(double(zeros) / double(va.size()), p, 0.02);
  }
}

TEST(AttentionDense, F32MatchesF64) {
  Dims d{2, 7, 9, 2, 4, 3};
  for (std::string kind : {"causal+additive", "padding"}) {
    SCOPED_TRACE(kind);
    Inputs in = make_inputs(d, 60);
    Masked m = make_mask(kind, d, 8);
    Tensor q32 = in.q.detach().to(DType::f32).requires_grad_(),
           k32 = in.k.detach().to(DType::f32).requires_grad_(),
           v32 = in.v.detach().to(DType::f32).requires_grad_();
    Grads g64 = run([&] { return attention(in.q, in.k, in.v, m.spec); }, in.q, in.k, in.v, in.dout);
    Grads g32 = run([&] { return attention(q32, k32, v32, m.spec); }, q32, k32, v32,
                    in.dout.to(DType::f32));
    EXPECT_EQ(g32.out.dtype(), DType::f32);
    expect_close(g32.out.to(DType::f64), g64.out, 1e-5, 1e-6);
    expect_close(g32.dq.to(DType::f64), g64.dq, 1e-5, 1e-6);
    expect_close(g32.dk.to(DType::f64), g64.dk, 1e-5, 1e-6);
    expect_close(g32.dv.to(DType::f64), g64.dv, 1e-5, 1e-6);
  }
}

TEST(AttentionDense, Errors) {
  Tensor q = uniform({1, 3, 2, 4}, 1), k = uniform({1, 5, 2, 4}, 2), v = uniform({1, 5, 2, 3}, 3);
  EXPECT_TG_ERROR(attention(q, uniform({1, 5, 2, 3}, 4), v), "do not fit [B, T, H, D]");
  EXPECT_TG_ERROR(attention(uniform({3, 2, 4}, 1), k, v), "must be [B, T, H, D]");
  EXPECT_TG_ERROR(attention(q, k.to(DType::f32), v), "share one floating dtype");
  AttentionSpec spec;
  spec.attn_mask = ones({4, 5}, DType::b8);
  EXPECT_TG_ERROR(attention(q, k, v, spec),
                  "attn_mask of shape [4, 5] does not broadcast to [B, H, T, S] = [1, 2, 3, 5]");
  spec = {};
  spec.key_lengths = {2, 3};
  EXPECT_TG_ERROR(attention(q, k, v, spec), "key_lengths has 2 entries for a batch of 1");
  spec.key_lengths = {6};
  EXPECT_TG_ERROR(attention(q, k, v, spec), "key_lengths[0] = 6 is outside [0, S=5]");
  spec.key_padding_mask = zeros({1, 5}, DType::b8);
  EXPECT_TG_ERROR(attention(q, k, v, spec), "not both");
  spec = {};
  spec.key_padding_mask = zeros({1, 4}, DType::b8);
  EXPECT_TG_ERROR(attention(q, k, v, spec), "key_padding_mask must be b8 [B, S] = [1, 5]");
  spec = {};
  spec.dropout_p = 1.5;
  EXPECT_TG_ERROR(attention(q, k, v, spec), "dropout_p must be in [0, 1]");
}

}  // namespace
}  // namespace tg
