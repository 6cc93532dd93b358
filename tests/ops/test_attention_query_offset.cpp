// The attention op's query_offset (queries at key positions query_offset + t, as cached
// decoding places them) and grouped kv heads (k, v with Hkv < H heads), for every variant,
// against the composed reference (ops/attention_reference.h): outputs and the gradients of q,
// k and v; the packed projection with kv heads; cache_write_; the errors users get.
#include <array>
#include <string>

#include "ops/attention.h"
#include "ops/attention_reference.h"
#include "ops/binary.h"
#include "ops/cache_write.h"
#include "ops/kernels/parallel.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::uniform;

struct Grads {
  Tensor out, dq, dk, dv;
};

// out = f(q, k, v), loss = sum(out · r) with a fixed random r.
template <class F>
Grads run(F f, const Tensor& q0, const Tensor& k0, const Tensor& v0) {
  Tensor q = q0.detach().clone().requires_grad_(), k = k0.detach().clone().requires_grad_(),
         v = v0.detach().clone().requires_grad_();
  Grads g;
  g.out = f(q, k, v);
  backward(sum(mul(g.out, uniform(g.out.shape(), 9, -1, 1, g.out.dtype()))));
  g.dq = q.grad(), g.dk = k.grad(), g.dv = v.grad();
  return g;
}

void expect_same(const Grads& got, const Grads& want, double tol) {
  expect_close(got.out, want.out, tol, tol);
  expect_close(got.dq, want.dq, tol, tol);
  expect_close(got.dk, want.dk, tol, tol);
  expect_close(got.dv, want.dv, tol, tol);
}

// The variants, with settings small enough to give each a real pattern at S = 7.
std::vector<AttentionSpec> variants() {
  std::vector<AttentionSpec> specs;
  for (AttentionVariant v : {AttentionVariant::dense, AttentionVariant::flash, AttentionVariant::sliding_window,
                             AttentionVariant::sparse, AttentionVariant::linear}) {
    AttentionSpec s;
    s.variant = v;
    s.window = 2;
    s.sparse = {2, 1, 1, 1, 3};
    specs.push_back(s);
  }
  return specs;
}

TEST(AttentionQueryOffset, EveryVariantMatchesTheReference) {
  Tensor q = uniform({2, 3, 2, 4}, 1), k = uniform({2, 7, 2, 4}, 2), v = uniform({2, 7, 2, 3}, 3);
  for (AttentionSpec spec : variants()) {
    for (bool causal : {true, false}) {
      SCOPED_TRACE(attention_variant_name(spec.variant) + (causal ? " causal" : ""));
      spec.causal = causal;
      spec.query_offset = 4;  // queries at key positions 4, 5, 6
      Grads got = run([&](auto& a, auto& b, auto& c) { return attention(a, b, c, spec); }, q, k, v);
      Grads want = run([&](auto& a, auto& b, auto& c) { return attention_reference(a, b, c, spec); }, q, k, v);
      expect_same(got, want, 1e-10);
    }
  }
}

// Causal with an offset equals the rows offset.. of the causal attention of all S positions.
TEST(AttentionQueryOffset, CausalRowsOfTheFullAttention) {
  Tensor k = uniform({1, 9, 2, 3}, 4), v = uniform({1, 9, 2, 3}, 5), qall = uniform({1, 9, 2, 3}, 6);
  for (AttentionSpec spec : variants()) {
    SCOPED_TRACE(attention_variant_name(spec.variant));
    spec.causal = true;
    Tensor full = attention(qall, k, v, spec);
    for (int64_t offset : {5, 8}) {  // 8: one query at the last key
      spec.query_offset = offset;
      Tensor rows = attention(narrow(qall, 1, offset, 9 - offset).clone(), k, v, spec);
      expect_close(rows, narrow(full, 1, offset, 9 - offset), 1e-12, 1e-12);
    }
  }
}

// Flash over several tiles (128 x 128): a query tile starting mid-way through the keys.
TEST(AttentionQueryOffset, FlashAcrossTiles) {
  Tensor q = uniform({1, 70, 1, 4}, 7), k = uniform({1, 200, 1, 4}, 8), v = uniform({1, 200, 1, 4}, 9);
  AttentionSpec spec;
  spec.variant = AttentionVariant::flash;
  spec.causal = true;
  spec.query_offset = 100;
  Grads got = run([&](auto& a, auto& b, auto& c) { return attention(a, b, c, spec); }, q, k, v);
  spec.variant = AttentionVariant::dense;
  Grads want = run([&](auto& a, auto& b, auto& c) { return attention(a, b, c, spec); }, q, k, v);
  expect_same(got, want, 1e-10);
}

// Linear attention's causal chunks (64 rows) after a prefix state, forward and gradients.
TEST(AttentionQueryOffset, LinearAcrossChunks) {
  Tensor q = uniform({1, 70, 2, 3}, 14), k = uniform({1, 150, 2, 3}, 15), v = uniform({1, 150, 2, 2}, 16);
  AttentionSpec spec;
  spec.variant = AttentionVariant::linear;
  spec.causal = true;
  spec.key_lengths = {140};
  for (int64_t offset : {0, 5, 70, 80}) {
    SCOPED_TRACE(offset);
    spec.query_offset = offset;
    Grads got = run([&](auto& a, auto& b, auto& c) { return attention(a, b, c, spec); }, q, k, v);
    Grads want = run([&](auto& a, auto& b, auto& c) { return attention_reference(a, b, c, spec); }, q, k, v);
    expect_same(got, want, 1e-10);
  }
}

// k, v [B, S, Hkv, D] repeated by hand: head h reads kv head h / (H / Hkv).
Tensor repeat_by_hand(const Tensor& x, int64_t H) {
  const int64_t B = x.size(0), S = x.size(1), Hkv = x.size(2), D = x.size(3);
  std::vector<double> src = x.to_vector(), dst(size_t(B * S * H * D));
  for (int64_t i = 0; i < B * S; ++i)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t d = 0; d < D; ++d) dst[size_t((i * H + h) * D + d)] = src[size_t((i * Hkv + h / (H / Hkv)) * D + d)];
  return tensor(dst, {B, S, H, D}, x.dtype());
}

TEST(AttentionKvHeads, EveryVariantEqualsRepeatedHeads) {
  Tensor q = uniform({2, 5, 4, 3}, 11), k = uniform({2, 5, 2, 3}, 12), v = uniform({2, 5, 2, 3}, 13);
  Tensor kr = repeat_by_hand(k, 4), vr = repeat_by_hand(v, 4);
  for (AttentionSpec spec : variants()) {
    SCOPED_TRACE(attention_variant_name(spec.variant));
    spec.causal = true;
    Tensor got = attention(q, k, v, spec), want = attention(q, kr, vr, spec);
    expect_close(got, want, 1e-12, 1e-12);
    expect_close(attention_reference(q, k, v, spec), want, 1e-10, 1e-10);
  }
}

// The variants that read grouped kv heads, each as its op decides (dense and flash always;
// sliding_window and sparse in place on the f32 register tiles, through repeated heads in f64).
const AttentionVariant kGroupedVariants[] = {AttentionVariant::dense, AttentionVariant::flash,
                                             AttentionVariant::sliding_window, AttentionVariant::sparse};

// Grouped kv heads give the outputs and gradients of the heads repeated, with and without
// dropout, causal or not, over more than one row block (flash: its 128-row f64 tiles and 64-row
// f32 register tiles, D = 16), with enough kv heads to run a task per kv head and too few
// (flash's two-pass backward on 2 threads), on 1 and 2 threads (sliding_window and sparse, on
// flash's tiles: 2 threads, the first shape), and through the packed projection.
TEST(AttentionKvHeads, GroupedHeadsEqualRepeatedHeads) {
  const int saved_threads = get_num_threads();
  for (AttentionVariant variant : kGroupedVariants)
    for (DType dt : {DType::f64, DType::f32})
      for (std::array<int64_t, 3> shape : {std::array<int64_t, 3>{2, 6, 2}, std::array<int64_t, 3>{1, 4, 1}})
        for (int threads : {1, 2})
          for (bool causal : {true, false})
            for (double dropout : {0.0, 0.25}) {
              // Sliding window and sparse share flash's tiles and their threading: one setting each.
              const bool tiles_alone = variant == AttentionVariant::sliding_window || variant == AttentionVariant::sparse;
              if (tiles_alone && (threads == 1 || shape[0] == 1)) continue;
              const int64_t B = shape[0], H = shape[1], Hkv = shape[2];  // batch, heads, kv heads
              SCOPED_TRACE(::testing::Message() << attention_variant_name(variant) << " " << dtype_name(dt) << " B " << B
                                                << " H " << H << " Hkv " << Hkv << " threads " << threads
                                                << (causal ? " causal" : "") << " dropout " << dropout);
              set_num_threads(threads);
              const double tol = dt == DType::f64 ? 1e-12 : 1e-4;
              Tensor q = uniform({B, 140, H, 16}, 31, -1, 1, dt), k = uniform({B, 140, Hkv, 16}, 32, -1, 1, dt),
                     v = uniform({B, 140, Hkv, 16}, 33, -1, 1, dt);
              AttentionSpec spec;
              spec.variant = variant;
              spec.causal = causal;
              spec.dropout_p = dropout;
              spec.window = 40;
              auto with_gen = [spec](auto&& f) {
                Generator gen(41);
                AttentionSpec s = spec;
                s.generator = &gen;
                return f(s);
              };
              Grads got = run(
                  [&](auto& a, auto& b, auto& c) { return with_gen([&](auto& s) { return attention(a, b, c, s); }); },
                  q, k, v);
              Grads want = run(
                  [&](auto& a, auto& b, auto& c) {
                    return with_gen([&](auto& s) {
                      return attention(a, repeat_kv_heads(b, H / Hkv), repeat_kv_heads(c, H / Hkv), s);
                    });
                  },
                  q, k, v);
              expect_same(got, want, tol);
            }
  set_num_threads(saved_threads);
  const int64_t H = 6, Hkv = 2;
  for (AttentionVariant variant : kGroupedVariants)
  for (DType dt : {DType::f64, DType::f32}) {
    SCOPED_TRACE(attention_variant_name(variant) + " packed " + std::string(dtype_name(dt)));
    Tensor qkv = uniform({2, 140, H + 2 * Hkv, 8}, 34, -1, 1, dt);
    AttentionSpec spec;
    spec.variant = variant;
    spec.causal = true;
    spec.window = 40;
    const double tol = dt == DType::f64 ? 1e-12 : 1e-5;
    Tensor x = qkv.detach().clone().requires_grad_(), y = qkv.detach().clone().requires_grad_();
    Tensor packed = attention_qkv(x, Hkv, spec);
    Tensor split = attention(narrow(y, 2, 0, H), repeat_kv_heads(narrow(y, 2, H, Hkv), H / Hkv),
                             repeat_kv_heads(narrow(y, 2, H + Hkv, Hkv), H / Hkv), spec);
    expect_close(packed, split, tol, tol);
    Tensor r = uniform(packed.shape(), 9, -1, 1, packed.dtype());
    backward(sum(mul(packed, r)));
    backward(sum(mul(split, r)));
    expect_close(x.grad(), y.grad(), tol, tol);
  }
}

TEST(AttentionKvHeads, GradcheckF64) {
  for (AttentionVariant variant : kGroupedVariants) {
    AttentionSpec spec;
    spec.variant = variant;
    spec.causal = true;
    spec.query_offset = 1;
    spec.window = 2;
    testing::expect_gradcheck([spec](const std::vector<Tensor>& in) { return attention(in[0], in[1], in[2], spec); },
                              {uniform({1, 2, 4, 2}, 21), uniform({1, 3, 2, 2}, 22), uniform({1, 3, 2, 2}, 23)});
  }
}

// A packed projection [B, T, H + 2·Hkv, D] equals its three pieces.
TEST(AttentionKvHeads, PackedProjectionEqualsItsPieces) {
  const int64_t H = 4;
  for (int64_t Hkv : {4, 2})  // each variant reads the packed rows in place or repeats the kv heads
  for (AttentionSpec spec : variants()) {
    SCOPED_TRACE(attention_variant_name(spec.variant) + " kv heads " + std::to_string(Hkv));
    Tensor qkv0 = uniform({2, 5, H + 2 * Hkv, 3}, 31);
    spec.causal = true;
    Tensor a = qkv0.clone().requires_grad_(), b = qkv0.clone().requires_grad_();
    Tensor packed = attention_qkv(a, Hkv, spec);
    Tensor split = attention(narrow(b, 2, 0, H), narrow(b, 2, H, Hkv), narrow(b, 2, H + Hkv, Hkv), spec);
    expect_close(packed, split, 1e-12, 1e-12);
    Tensor r = uniform(packed.shape(), 3);
    backward(sum(mul(packed, r)));
    backward(sum(mul(split, r)));
    expect_close(a.grad(), b.grad(), 1e-12, 1e-12);
  }
  // Across flash's 128-row tiles and several sliding / sparse block-rows, read in place.
  for (AttentionSpec spec : variants()) {
    SCOPED_TRACE(attention_variant_name(spec.variant) + ", T = 140");
    spec.causal = true;
    spec.window = 40;
    spec.sparse = {16, 3, 1, 1, 2};
    Tensor qkv0 = uniform({1, 140, 3, 2}, 33);
    Tensor a = qkv0.clone().requires_grad_(), b = qkv0.clone().requires_grad_();
    Tensor packed = attention_qkv(a, 1, spec);
    Tensor split = attention(narrow(b, 2, 0, 1), narrow(b, 2, 1, 1), narrow(b, 2, 2, 1), spec);
    expect_close(packed, split, 1e-12, 1e-12);
    Tensor r = uniform(packed.shape(), 4);
    backward(sum(mul(packed, r)));
    backward(sum(mul(split, r)));
    expect_close(a.grad(), b.grad(), 1e-12, 1e-12);
  }
  // Hkv = H is the old packed [B, T, 3, H, D] layout.
  Tensor qkv = uniform({1, 4, 3, 2, 2}, 32);
  AttentionSpec causal;
  causal.causal = true;
  expect_close(attention_qkv(reshape(qkv, {1, 4, 6, 2}), 2, causal), attention_qkv(qkv, causal), 0, 0);
}

TEST(AttentionQueryOffset, Errors) {
  Tensor q = uniform({1, 3, 4, 2}, 1), k = uniform({1, 5, 2, 2}, 2), v = uniform({1, 5, 2, 2}, 3);
  AttentionSpec spec;
  spec.query_offset = 3;
  EXPECT_TG_ERROR(attention(q, k, v, spec), "query_offset 3 puts the T = 3 queries beyond the S = 5 keys");
  spec.query_offset = -1;
  EXPECT_TG_ERROR(attention(q, k, v, spec), "query_offset -1");
  EXPECT_TG_ERROR(attention(q, uniform({1, 5, 3, 2}, 2), uniform({1, 5, 3, 2}, 3)),
                  "the kv heads Hkv = 3 of k [1, 5, 3, 2] must divide the query heads H = 4");
  EXPECT_TG_ERROR(attention_qkv(uniform({1, 3, 7, 2}, 1), 2), "Hkv = 2 leaves H = 3, which Hkv must divide");
}

TEST(CacheWrite, WritesHeadsAtAPosition) {
  Tensor cache = zeros({2, 4, 1, 2});
  Tensor src = uniform({2, 2, 3, 2}, 1, -1, 1, DType::f32);  // heads 0..2; write head 2
  const uint64_t version = cache.version();
  cache_write_(cache, 1, src, 2);
  EXPECT_GT(cache.version(), version);
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t p = 0; p < 4; ++p)
      for (int64_t d = 0; d < 2; ++d) {
        double want = p >= 1 && p < 3 ? src.at({b, p - 1, 2, d}) : 0.0;
        EXPECT_EQ(cache.at({b, p, 0, d}), want) << b << " " << p << " " << d;
      }
  EXPECT_TG_ERROR(cache_write_(cache, 3, src, 2), "holds 4 positions; cannot write positions 3..4");
  EXPECT_TG_ERROR(cache_write_(cache, 0, src, 3), "cannot take heads 3..3 of src");
  Tensor grad_src = src.clone().requires_grad_();
  EXPECT_TG_ERROR(cache_write_(cache, 0, grad_src, 0), "run it under NoGradGuard");
}

}  // namespace
}  // namespace tg

namespace tg {
namespace {

// Only the inputs that need a gradient get one, and it equals the one computed with all three.
TEST(AttentionNeedsGrad, OnlyTheInputsThatNeedIt) {
  Tensor q0 = testing::uniform({2, 5, 2, 3}, 41), k0 = testing::uniform({2, 7, 2, 3}, 42),
         v0 = testing::uniform({2, 7, 2, 3}, 43);
  for (AttentionSpec spec : variants())
  for (double dropout : {0.0, 0.3}) {
    if (spec.variant == AttentionVariant::linear && dropout > 0) continue;
    spec.causal = true;
    spec.query_offset = 2;
    spec.dropout_p = dropout;
    Generator gen(5);
    spec.generator = &gen;  // the same dropout mask for every run: reset before each
    Grads all = run([&](auto& a, auto& b, auto& c) { return attention(a, b, c, spec); }, q0, k0, v0);
    for (int wanted : {1, 2, 4, 6}) {  // bits: q, k, v
      SCOPED_TRACE(attention_variant_name(spec.variant) + " dropout " + std::to_string(dropout) + " wanted " +
                   std::to_string(wanted));
      gen.manual_seed(5);
      gen.set_offset(0);
      Tensor q = q0.clone(), k = k0.clone(), v = v0.clone();
      if (wanted & 1) q.requires_grad_();
      if (wanted & 2) k.requires_grad_();
      if (wanted & 4) v.requires_grad_();
      Tensor out = attention(q, k, v, spec);
      backward(sum(mul(out, testing::uniform(out.shape(), 9, -1, 1, out.dtype()))));
      EXPECT_EQ(q.grad().defined(), bool(wanted & 1));
      EXPECT_EQ(k.grad().defined(), bool(wanted & 2));
      EXPECT_EQ(v.grad().defined(), bool(wanted & 4));
      if (wanted & 1) expect_close(q.grad(), all.dq, 1e-12, 1e-12);
      if (wanted & 2) expect_close(k.grad(), all.dk, 1e-12, 1e-12);
      if (wanted & 4) expect_close(v.grad(), all.dv, 1e-12, 1e-12);
    }
  }
}

}  // namespace
}  // namespace tg
