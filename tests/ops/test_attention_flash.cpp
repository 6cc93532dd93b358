// Flash attention against the dense reference (f32, max|a - b| <= 1e-5 · max|dense| + 1e-7, for
// the output and dq, dk, dv): every mask combination, causal or not, T < S and T > S, D != Dv,
// shapes not multiples of the tile, fully masked rows, dropout with the same seed and offset.
// Also: what the node saves (q, k, v, out and an lse checked against a naive log-sum-exp, no
// weights), memory far below one [B, H, T, S] matrix, bitwise equality between 1 and 2 threads.
#include <cmath>
#include <limits>

#include "ops/attention.h"
#include "ops/kernels/attention_flash.h"
#include "ops/kernels/attention_flash_tiled.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::max_abs;
using testing::max_abs_diff;
using testing::uniform;

constexpr double kInf = std::numeric_limits<double>::infinity();

struct Dims {
  int64_t B, T, S, H, D, Dv;
};

std::string dims_str(const Dims& d) {
  return "B " + std::to_string(d.B) + " T " + std::to_string(d.T) + " S " + std::to_string(d.S) +
         " H " + std::to_string(d.H) + " D " + std::to_string(d.D) + " Dv " + std::to_string(d.Dv);
}

// The spec of a mask configuration. Padding leaves batch 0 one padded key and batch 1 a third
// of its keys, so whole key tiles are padding; "empty_row" gives batch 0 no key at all
// (lengths) and "masked_row" fully masks row 1 of head 0 through -inf additive entries.
AttentionSpec make_spec(const std::string& kind, const Dims& d, uint64_t seed, DType dt) {
  AttentionSpec spec;
  spec.causal = kind.starts_with("causal");
  std::vector<int64_t> len(size_t(d.B));
  for (int64_t b = 0; b < d.B; ++b)
    len[size_t(b)] = b == 0 ? std::max<int64_t>(1, d.S - 1) : std::max<int64_t>(1, d.S / 3);
  if (kind == "lengths") spec.key_lengths = len;
  if (kind == "empty_row") {
    spec.key_lengths = len;
    spec.key_lengths[0] = 0;
  }
  if (kind == "padding" || kind == "causal+padding") {
    std::vector<double> pad(size_t(d.B * d.S));
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t s = 0; s < d.S; ++s) pad[size_t(b * d.S + s)] = s >= len[size_t(b)];
    spec.key_padding_mask = tensor(pad, {d.B, d.S}, DType::b8);
  }
  if (kind == "bool") {  // [B, 1, T, S], broadcast over heads
    std::vector<double> allow = uniform({d.B * d.T * d.S}, seed, 0, 1).to_vector();
    for (double& x : allow) x = x < 0.7;
    spec.attn_mask = tensor(allow, {d.B, 1, d.T, d.S}, DType::b8);
  }
  if (kind == "additive" || kind == "causal+additive")
    spec.attn_mask = uniform({d.H, d.T, d.S}, seed, -2, 2, dt);
  if (kind == "masked_row") {
    std::vector<double> a = uniform({d.B, d.H, d.T, d.S}, seed, -2, 2).to_vector();
    for (size_t i = 0; i < a.size(); i += 5) a[i] = -kInf;
    for (int64_t s = 0; s < d.S; ++s) a[size_t(std::min<int64_t>(1, d.T - 1) * d.S + s)] = -kInf;
    spec.attn_mask = tensor(a, {d.B, d.H, d.T, d.S}, dt);
  }
  return spec;
}

const std::vector<std::string> kKinds = {
    "none",     "causal",         "lengths",         "padding",    "bool",
    "additive", "causal+padding", "causal+additive", "masked_row", "empty_row"};

// Square within one tile; T < S over three key tiles with D != Dv; T > S over two query
// tiles; exact tile multiples; tiny.
constexpr int64_t kR = kernels::kFlashRows, kC = kernels::kFlashCols;
const std::vector<Dims> kDims = {{2, 70, 70, 2, 16, 16},
                                 {2, 50, 2 * kC + 5, 2, 8, 12},
                                 {2, kR + 22, 70, 1, 12, 8},
                                 {1, 2 * kR, 2 * kC, 2, 16, 16},
                                 // f32 with Dv = D, a multiple of 8: the register-blocked tiles
                                 // (attention_flash_tiled.h), several tiles each way, partial ones
                                 {2, 2 * kernels::kTiledRows + 9, 3 * kernels::kTiledCols - 5, 2, 32, 32},
                                 // D = 24: on AVX-512 a 16-lane strip and an 8-lane one
                                 {1, kernels::kTiledRows + 3, 2 * kernels::kTiledCols + 1, 2, 24, 24},
                                 {2, 5, 3, 2, 4, 4}};

struct Grads {
  Tensor out, dq, dk, dv;
};

struct Inputs {
  Tensor q, k, v, dout;
};

Inputs make_inputs(const Dims& d, uint64_t seed, DType dt) {
  Inputs in;
  in.q = uniform({d.B, d.T, d.H, d.D}, seed, -2, 2, dt).requires_grad_();
  in.k = uniform({d.B, d.S, d.H, d.D}, seed + 1, -2, 2, dt).requires_grad_();
  in.v = uniform({d.B, d.S, d.H, d.Dv}, seed + 2, -1, 1, dt).requires_grad_();
  in.dout = uniform({d.B, d.T, d.H, d.Dv}, seed + 3, -1, 1, dt);
  return in;
}

// Forward and backward of `variant`; a fresh generator of `seed` per call, so dropout draws the
// same (seed, offset) in each.
Grads run(Inputs& in, AttentionSpec spec, AttentionVariant variant, uint64_t seed = 5) {
  Generator gen(seed);
  spec.variant = variant;
  spec.generator = &gen;
  Grads g;
  g.out = attention(in.q, in.k, in.v, spec);
  backward(g.out, in.dout);
  g.dq = in.q.grad(), g.dk = in.k.grad(), g.dv = in.v.grad();
  in.q.set_grad(Tensor()), in.k.set_grad(Tensor()), in.v.set_grad(Tensor());
  return g;
}

void expect_agree(const Grads& flash, const Grads& dense, double rtol = 1e-5, double atol = 1e-7) {
  const char* names[] = {"out", "dq", "dk", "dv"};
  const Tensor* f[] = {&flash.out, &flash.dq, &flash.dk, &flash.dv};
  const Tensor* r[] = {&dense.out, &dense.dq, &dense.dk, &dense.dv};
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(f[i]->shape(), r[i]->shape()) << names[i];
    double tol = rtol * max_abs(*r[i]) + atol;
    EXPECT_LE(max_abs_diff(*f[i], *r[i]), tol) << names[i] << " max|dense| " << max_abs(*r[i]);
  }
}

TEST(AttentionFlash, AgreesWithDenseForEveryMask) {
  for (const Dims& d : kDims)
    for (const std::string& kind : kKinds) {
      SCOPED_TRACE(kind + " " + dims_str(d));
      Inputs in = make_inputs(d, 100, DType::f32);
      AttentionSpec spec = make_spec(kind, d, 7, DType::f32);
      Grads dense = run(in, spec, AttentionVariant::dense);
      Grads flash = run(in, spec, AttentionVariant::flash);
      expect_agree(flash, dense);
    }
}

// Padded positions get no upstream gradient (a masked loss or pooling ignores them): the tiled
// backward skips a query tile whose dO rows are all zero. The gradients still equal dense's.
TEST(AttentionFlash, ZeroUpstreamRowsAgreeWithDense) {
  const int64_t tr = kernels::kTiledRows;
  Dims d{2, 3 * tr + 7, 2 * tr + 30, 2, 16, 16};
  for (const std::string kind : {"none", "causal+padding"}) {
    SCOPED_TRACE(kind);
    Inputs in = make_inputs(d, 150, DType::f32);
    std::vector<double> dout = in.dout.to_vector();
    // Batch 0: the second query tile and the partial last one; batch 1: everything past row 10.
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t t = 0; t < d.T; ++t)
        if ((b == 0 && (t / tr == 1 || t >= 3 * tr)) || (b == 1 && t > 10))
          for (int64_t x = 0; x < d.H * d.Dv; ++x) dout[size_t((b * d.T + t) * d.H * d.Dv + x)] = 0.0;
    in.dout = tensor(dout, in.dout.shape(), DType::f32);
    AttentionSpec spec = make_spec(kind, d, 7, DType::f32);
    expect_agree(run(in, spec, AttentionVariant::flash), run(in, spec, AttentionVariant::dense));
  }
}

TEST(AttentionFlash, AgreesWithDenseWithDropout) {
  for (const Dims& d : {kDims[0], kDims[1], kDims[2]})
    for (std::string kind : {"none", "causal+padding", "causal+additive", "masked_row"}) {
      SCOPED_TRACE(kind + " " + dims_str(d));
      Inputs in = make_inputs(d, 200, DType::f32);
      AttentionSpec spec = make_spec(kind, d, 8, DType::f32);
      spec.dropout_p = 0.2;
      Grads dense = run(in, spec, AttentionVariant::dense, 31);
      Grads flash = run(in, spec, AttentionVariant::flash, 31);
      expect_agree(flash, dense);
      // A different seed drops other weights: the agreement above is not vacuous.
      Grads other = run(in, spec, AttentionVariant::flash, 32);
      EXPECT_GT(max_abs_diff(other.out, dense.out), 1e-3);
    }
}

TEST(AttentionFlash, AgreesWithDenseInF64) {
  Dims d{2, 70, 90, 2, 5, 7};
  for (std::string kind : {"causal+padding", "causal+additive", "empty_row"}) {
    SCOPED_TRACE(kind);
    Inputs in = make_inputs(d, 300, DType::f64);
    AttentionSpec spec = make_spec(kind, d, 9, DType::f64);
    spec.dropout_p = 0.1;
    expect_agree(run(in, spec, AttentionVariant::flash), run(in, spec, AttentionVariant::dense),
                 1e-12, 1e-14);
  }
}

// Empty axes: no queries, no keys (every row fully masked: zeros), no batch.
TEST(AttentionFlash, EmptyAxesAgreeWithDense) {
  for (const Dims& d : {Dims{1, 0, 4, 2, 3, 3}, Dims{1, 3, 0, 2, 3, 2}, Dims{0, 3, 4, 2, 3, 3}})
    for (bool causal : {false, true}) {
      SCOPED_TRACE(dims_str(d) + (causal ? " causal" : ""));
      Inputs in = make_inputs(d, 800, DType::f32);
      AttentionSpec spec;
      spec.causal = causal;
      Grads flash = run(in, spec, AttentionVariant::flash);
      expect_agree(flash, run(in, spec, AttentionVariant::dense));
      if (d.S == 0) {
        EXPECT_EQ(max_abs(flash.out) + max_abs(flash.dq), 0.0);
      }
    }
}

TEST(AttentionFlash, FullyMaskedRowsGiveZerosNotNaN) {
  Dims d{2, 70, 80, 2, 8, 8};
  for (std::string kind : {"empty_row", "masked_row"}) {
    SCOPED_TRACE(kind);
    Inputs in = make_inputs(d, 400, DType::f32);
    AttentionSpec spec = make_spec(kind, d, 10, DType::f32);
    spec.dropout_p = 0.3;
    Grads g = run(in, spec, AttentionVariant::flash);
    for (const Tensor* t : {&g.out, &g.dq, &g.dk, &g.dv})
      for (double x : t->to_vector()) ASSERT_TRUE(std::isfinite(x));
    if (kind == "empty_row") {
      EXPECT_EQ(max_abs(narrow(g.out, 0, 0, 1)), 0.0);
      EXPECT_EQ(max_abs(narrow(g.dq, 0, 0, 1)), 0.0);
      EXPECT_EQ(max_abs(narrow(g.dk, 0, 0, 1)), 0.0);
    } else {  // row t = 1 of head 0 in batch 0
      for (int64_t e = 0; e < d.Dv; ++e) EXPECT_EQ(g.out.at({0, 1, 0, e}), 0.0);
      for (int64_t e = 0; e < d.D; ++e) EXPECT_EQ(g.dq.at({0, 1, 0, e}), 0.0);
    }
  }
}

// lse[b, h, t] = log sum_s exp(scale · q·k + bias) over visible keys (-inf for none), naively.
TEST(AttentionFlash, SavesOnlyInputsOutputAndLse) {
  Dims d{2, 70, 75, 2, 6, 5};
  Inputs in = make_inputs(d, 500, DType::f64);
  AttentionSpec spec = make_spec("empty_row", d, 11, DType::f64);
  spec.causal = true;
  spec.variant = AttentionVariant::flash;
  spec.scale = 0.3;
  Tensor out = attention(in.q, in.k, in.v, spec);
  ASSERT_NE(out.grad_fn(), nullptr);
  Node& n = *out.grad_fn();
  EXPECT_STREQ(n.name(), "attention_flash");
  EXPECT_TG_ERROR(n.saved("weights"), "nothing was saved as 'weights'");
  EXPECT_EQ(n.saved("out").shape(), out.shape());
  Tensor lse = n.saved("lse");
  ASSERT_EQ(lse.shape(), Shape({d.B, d.H, d.T}));
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h)
      for (int64_t t = 0; t < d.T; ++t) {
        double m = -kInf, sum = 0;
        std::vector<double> sc;
        for (int64_t s = 0; s < d.S && s < spec.key_lengths[size_t(b)] && s <= t; ++s) {
          double x = 0;
          for (int64_t e = 0; e < d.D; ++e) x += in.q.at({b, t, h, e}) * in.k.at({b, s, h, e});
          sc.push_back(0.3 * x);
          m = std::max(m, 0.3 * x);
        }
        for (double x : sc) sum += std::exp(x - m);
        double want = sc.empty() ? -kInf : m + std::log(sum);
        double got = lse.at({b, h, t});
        if (sc.empty())
          EXPECT_EQ(got, -kInf);
        else
          EXPECT_NEAR(got, want, 1e-12) << b << " " << h << " " << t;
      }
}

TEST(AttentionFlash, MemoryFarBelowOneWeightMatrix) {
  Dims d{1, 1024, 1024, 2, 16, 16};
  Inputs in = make_inputs(d, 600, DType::f32);
  int64_t matrix = d.B * d.H * d.T * d.S * 4;  // one [B, H, T, S] f32 matrix: 8 MiB
  auto peak_of = [&](AttentionVariant variant) {
    AttentionSpec spec;
    spec.causal = true;
    spec.variant = variant;
    reset_peak_memory_stats();
    int64_t base = memory_allocated();
    {
      Tensor out = attention(in.q, in.k, in.v, spec);
      backward(out, in.dout);
    }
    in.q.set_grad(Tensor()), in.k.set_grad(Tensor()), in.v.set_grad(Tensor());
    return max_memory_allocated() - base;
  };
  int64_t flash = peak_of(AttentionVariant::flash), dense = peak_of(AttentionVariant::dense);
  EXPECT_LT(flash, matrix / 8) << "flash peak " << flash << " bytes, dense " << dense;
  EXPECT_GE(dense, matrix) << "flash peak " << flash << " bytes, dense " << dense;
}

// B·H = 6 runs one task per head with 1 and 2 threads; B·H = 1 runs per head with 1 thread and
// as two passes over tiles with 2: the same products in the same order, so the same bits. Dv != D
// runs the BLAS tiles; Dv = D the register-blocked ones.
TEST(AttentionFlash, BitwiseEqualForOneAndTwoThreads) {
  int saved = get_num_threads();
  const int64_t tr = kernels::kTiledRows, tc = kernels::kTiledCols;
  for (const Dims& d : {Dims{2, kR + 22, kC + 72, 3, 16, 8}, Dims{1, kR + 72, kC + 22, 1, 16, 8},
                        Dims{2, 2 * tr + 5, tc + 22, 3, 16, 16}, Dims{1, 2 * tr + 22, 3 * tc + 5, 1, 32, 32}})
    for (std::string kind : {"causal+padding", "additive"}) {
      SCOPED_TRACE(kind + " " + dims_str(d));
      Inputs in = make_inputs(d, 700, DType::f32);
      AttentionSpec spec = make_spec(kind, d, 12, DType::f32);
      spec.dropout_p = 0.1;
      set_num_threads(1);
      Grads one = run(in, spec, AttentionVariant::flash);
      set_num_threads(2);
      Grads two = run(in, spec, AttentionVariant::flash);
      EXPECT_EQ(max_abs_diff(one.out, two.out), 0.0);
      EXPECT_EQ(max_abs_diff(one.dq, two.dq), 0.0);
      EXPECT_EQ(max_abs_diff(one.dk, two.dk), 0.0);
      EXPECT_EQ(max_abs_diff(one.dv, two.dv), 0.0);
    }
  set_num_threads(saved);
}

TEST(AttentionFlash, Errors) {
  Tensor q = uniform({1, 3, 2, 4}, 1), k = uniform({1, 5, 2, 4}, 2), v = uniform({1, 5, 2, 3}, 3);
  AttentionSpec spec;
  spec.variant = AttentionVariant::flash;
  Tensor w;
  EXPECT_TG_ERROR(attention(q, k, v, spec, &w),
                  "only the dense variant returns its weights (asked of flash)");
  spec.attn_mask = ones({2, 3, 4}, DType::b8);
  EXPECT_TG_ERROR(attention(q, k, v, spec), "attn_mask of shape [2, 3, 4] does not broadcast");
  EXPECT_EQ(parse_attention_variant("flash"), AttentionVariant::flash);
}

}  // namespace
}  // namespace tg
