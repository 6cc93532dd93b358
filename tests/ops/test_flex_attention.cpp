// flex_attention against the composed dense reference (tests/ops/flex_reference.h): every ready
// pattern (mask_mods and score_mods) gives the same output and gradients, captured tensors'
// included (f32 flex against the reference in f64: max|a - b| <= 1e-5 · max|ref| + 1e-7), and
// passes gradcheck in f64. Also: T != S and a query offset, grouped-query attention, rows that
// see no key, dropout against dense with the same seed, lse, flex causal = flash causal and flex
// sliding = sliding_window, every pattern in f64 to 1e-12, thread-count independence, and bad
// input.
#include <cmath>

#include "flex_reference.h"
#include "ops/attention.h"
#include "ops/flex_attention.h"
#include "ops/flex_patterns.h"
#include "ops/kernels/parallel.h"

namespace tg {
namespace {

using testing::DenseMask;
using testing::max_abs;
using testing::max_abs_diff;
using testing::ScoreFn;
using testing::uniform;

struct Dims {
  int64_t B, T, S, H, Hkv, D, Dv;
  int64_t block = 16, q_offset = 0;
};

std::string dims_str(const Dims& d) {
  return fmt::format("B {} T {} S {} H {} Hkv {} D {} Dv {} block {} q_offset {}", d.B, d.T, d.S, d.H, d.Hkv, d.D,
                     d.Dv, d.block, d.q_offset);
}

// A pattern: its mask (maybe undefined) and score_mod built from captured tensors, with the
// score_mod's reference as tensor ops on the same captured tensors.
struct Pattern {
  std::string name;
  std::function<MaskMod(const Dims&)> mask;  // null: no mask
  std::function<ScoreMod(const std::vector<Tensor>&)> score;  // null: none
  std::function<ScoreFn(const std::vector<Tensor>&, const Dims&)> ref;
  std::function<std::vector<Tensor>(const Dims&)> captured;  // f64 values; null: none
};

struct Inputs {
  Tensor q, k, v, dout;
  std::vector<Tensor> captured;
};

Inputs make_inputs(const Dims& d, const Pattern& p, uint64_t seed, DType dt) {
  Inputs in;
  in.q = uniform({d.B, d.T, d.H, d.D}, seed, -2, 2, dt).requires_grad_();
  in.k = uniform({d.B, d.S, d.Hkv, d.D}, seed + 1, -2, 2, dt).requires_grad_();
  in.v = uniform({d.B, d.S, d.Hkv, d.Dv}, seed + 2, -1, 1, dt).requires_grad_();
  in.dout = uniform({d.B, d.T, d.H, d.Dv}, seed + 3, -1, 1, dt);
  if (p.captured)
    for (Tensor& c : p.captured(d)) in.captured.push_back(c.to(dt).requires_grad_());
  return in;
}

Inputs to_f64(const Inputs& in) {
  Inputs r;
  r.q = in.q.detach().to(DType::f64).requires_grad_();
  r.k = in.k.detach().to(DType::f64).requires_grad_();
  r.v = in.v.detach().to(DType::f64).requires_grad_();
  r.dout = in.dout.to(DType::f64);
  for (const Tensor& c : in.captured) r.captured.push_back(c.detach().to(DType::f64).requires_grad_());
  return r;
}

struct Result {
  std::vector<Tensor> t;  // out, dq, dk, dv, d(captured)...
};

Result collect(Tensor out, Inputs& in) {
  backward(out, in.dout);
  Result r{{out, in.q.grad(), in.k.grad(), in.v.grad()}};
  for (Tensor& c : in.captured) r.t.push_back(c.grad());
  return r;
}

MaskMod mask_of(const Pattern& p, const Dims& d) { return p.mask ? p.mask(d) : MaskMod{}; }

Result run_flex(const Pattern& p, const Dims& d, Inputs in, FlexOptions o = {}) {
  MaskMod m = mask_of(p, d);
  BlockMask bm = m.defined() ? create_block_mask(m, d.B, d.H, d.T, d.S, d.block, d.q_offset)
                              : BlockMask::full(d.T, d.S, d.block, d.q_offset);
  ScoreMod sm = p.score ? p.score(in.captured) : ScoreMod{};
  o.enable_gqa = d.H != d.Hkv;
  return collect(flex_attention(in.q, in.k, in.v, sm, bm, o), in);
}

Result run_reference(const Pattern& p, const Dims& d, Inputs in) {
  DenseMask m = testing::materialise(mask_of(p, d), d.B, d.H, d.T, d.S, d.q_offset);
  ScoreFn f = p.ref ? p.ref(in.captured, d) : ScoreFn{};
  return collect(testing::flex_reference(in.q, in.k, in.v, m, f, 1.0 / std::sqrt(double(d.D))), in);
}

void expect_agree(const Result& a, const Result& ref, double rtol = 1e-5, double atol = 1e-7) {
  ASSERT_EQ(a.t.size(), ref.t.size());
  const char* names[] = {"out", "dq", "dk", "dv", "dcaptured0", "dcaptured1"};
  for (size_t i = 0; i < a.t.size(); ++i) {
    ASSERT_TRUE(a.t[i].defined() && ref.t[i].defined()) << names[i];
    double tol = rtol * max_abs(ref.t[i]) + atol;
    EXPECT_LE(max_abs_diff(a.t[i].to(DType::f64), ref.t[i]), tol) << names[i] << " max|ref| " << max_abs(ref.t[i]);
  }
}

Tensor doc_ids(int64_t S) {  // documents of lengths 7, 1, 13, 20, ... (the last cut at S)
  std::vector<double> ids;
  int64_t doc = 0, left = 7;
  for (int64_t s = 0; s < S; ++s) {
    if (left == 0) left = (++doc % 3 == 1) ? 1 : 13 + 7 * (doc % 2);
    ids.push_back(double(doc)), --left;
  }
  return tensor(ids, {S}, DType::i64);
}

std::vector<Pattern> mask_patterns() {
  auto simple = [](std::string name, std::function<MaskMod(const Dims&)> m) {
    return Pattern{std::move(name), std::move(m), nullptr, nullptr, nullptr};
  };
  std::vector<Pattern> p;
  p.push_back(simple("none", nullptr));
  p.push_back(simple("causal", [](const Dims&) { return causal_mask(); }));
  p.push_back(simple("sliding causal 5", [](const Dims&) { return sliding_window_mask(5); }));
  p.push_back(simple("sliding 4", [](const Dims&) { return sliding_window_mask(4, false); }));
  p.push_back(simple("prefix_lm 9", [](const Dims&) { return prefix_lm_mask(9); }));
  p.push_back(simple("document", [](const Dims& d) { return document_mask(doc_ids(d.S)); }));
  p.push_back(simple("causal & document",
                     [](const Dims& d) { return and_masks(causal_mask(), document_mask(doc_ids(d.S))); }));
  p.push_back(simple("key_padding", [](const Dims& d) {
    std::vector<double> pad;
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t s = 0; s < d.S; ++s) pad.push_back(b == 0 ? s >= d.S - 3 : s >= d.S / 3);
    return key_padding_mask(tensor(pad, {d.B, d.S}, DType::b8));
  }));
  p.push_back(simple("key_lengths, a batch with none",
                     [](const Dims& d) { return key_lengths_mask(d.B == 1 ? std::vector<int64_t>{d.S / 2}
                                                                          : std::vector<int64_t>{0, d.S / 2}); }));
  p.push_back(simple("bigbird", [](const Dims& d) { return bigbird_mask({8, 3, 1, 2, 7}, d.T, d.S); }));
  p.push_back(simple("longformer causal", [](const Dims& d) { return longformer_mask(8, 3, 1, d.T, d.S, true); }));
  p.push_back(simple("dilated 3x2", [](const Dims&) { return dilated_sliding_window_mask(3, 2, false); }));
  p.push_back(simple("sinks 4 + window 6", [](const Dims&) { return attention_sink_mask(6, 4); }));
  return p;
}

std::vector<Pattern> score_patterns() {
  std::vector<Pattern> p;
  p.push_back({"alibi (learned slopes) + causal", [](const Dims&) { return causal_mask(); },
               [](const std::vector<Tensor>& c) { return alibi(c[0]); },
               [](const std::vector<Tensor>& c, const Dims& d) {
                 return testing::alibi_reference(c[0], d.T, d.S, d.q_offset);
               },
               [](const Dims& d) { return std::vector<Tensor>{alibi_slopes(d.H, DType::f64) * 4.0}; }});
  p.push_back({"softcap 1.5", nullptr, [](const std::vector<Tensor>&) { return softcap(1.5); },
               [](const std::vector<Tensor>&, const Dims&) { return testing::softcap_reference(1.5); }, nullptr});
  p.push_back({"softcap 2 + sliding", [](const Dims&) { return sliding_window_mask(6); },
               [](const std::vector<Tensor>&) { return softcap(2.0); },
               [](const std::vector<Tensor>&, const Dims&) { return testing::softcap_reference(2.0); }, nullptr});
  // A user's score_mod written inline as two generic lambdas: a learned bias per (head, key),
  // table [H, S].
  p.push_back({"key bias (lambdas, learned) + prefix_lm", [](const Dims&) { return prefix_lm_mask(5); },
               [](const std::vector<Tensor>& c) {
                 const int64_t S = c[0].size(1);
                 return score_mod(
                     "key_bias",
                     [S](auto s, int64_t, int64_t h, int64_t, int64_t k, const auto& ctx) { return s + ctx[0][h * S + k]; },
                     [S](auto, auto g, int64_t, int64_t h, int64_t, int64_t k, const auto& ctx) {
                       if (auto* d = ctx.grad(0)) d[h * S + k] += g;
                       return g;
                     },
                     {c[0]});
               },
               [](const std::vector<Tensor>& c, const Dims& d) {
                 Tensor bias = c[0];
                 Shape shape = {1, d.H, 1, d.S};
                 return ScoreFn([bias, shape](const Tensor& s) { return s + reshape(bias, shape); });
               },
               [](const Dims& d) { return std::vector<Tensor>{uniform({d.H, d.S}, 78, -2, 2)}; }});
  for (bool bidirectional : {true, false})
    p.push_back({bidirectional ? "T5 bias (learned), bidirectional" : "T5 bias (learned) + causal",
                 bidirectional ? std::function<MaskMod(const Dims&)>{} : [](const Dims&) { return causal_mask(); },
                 [bidirectional](const std::vector<Tensor>& c) { return relative_position_bias(c[0], bidirectional, 20); },
                 [bidirectional](const std::vector<Tensor>& c, const Dims& d) {
                   return testing::relative_bias_reference(c[0], d.T, d.S, d.q_offset, bidirectional, 20);
                 },
                 [](const Dims& d) { return std::vector<Tensor>{uniform({d.H, 8}, 77, -1, 1)}; }});
  return p;
}

// T not a multiple of the block; T < S with a query offset; T > S; grouped-query heads; blocks
// of 64 rows, which the kernel runs in trimmed groups of 32 rows on partial tiles (the last group
// short, with and without a query offset). The last two have blocks of whole register tiles and
// D a multiple of the lanes, so without a score_mod they run on flash's tiled kernels
// (attention_flash_tiled.h): T and S not multiples of a tile, grouped heads, a query offset.
const std::vector<Dims> kDims = {{2, 37, 37, 2, 2, 8, 8, 16, 0},
                                 {2, 23, 50, 2, 1, 12, 8, 8, 9},
                                 {1, 45, 30, 4, 2, 8, 16, 16, 0},
                                 {1, 64, 64, 3, 3, 8, 8, 16, 0},
                                 {1, 100, 100, 2, 1, 4, 4, 64, 0},
                                 {1, 70, 90, 2, 2, 4, 4, 64, 13},
                                 {2, 150, 150, 2, 1, 16, 16, 64, 0},
                                 {1, 100, 200, 4, 2, 32, 32, 128, 37}};

TEST(FlexAttention, MaskPatternsAgreeWithDense) {
  for (const Dims& d : kDims)
    for (const Pattern& p : mask_patterns()) {
      if (p.name.starts_with("bigbird") || p.name.starts_with("longformer")) {
        if (d.q_offset != 0) continue;  // their layouts are laid out from query 0
      }
      if (p.name.find("document") != std::string::npos && d.q_offset + d.T > d.S) continue;  // doc ids cover S positions
      if (p.name.starts_with("key_lengths") && d.B == 1) continue;  // a whole batch with no key: own test
      SCOPED_TRACE(p.name + " " + dims_str(d));
      Inputs in = make_inputs(d, p, 100, DType::f32);
      expect_agree(run_flex(p, d, in), run_reference(p, d, to_f64(in)));
    }
}

TEST(FlexAttention, ScoreModsAgreeWithDense) {
  for (const Dims& d : kDims)
    for (const Pattern& p : score_patterns()) {
      SCOPED_TRACE(p.name + " " + dims_str(d));
      Inputs in = make_inputs(d, p, 200, DType::f32);
      expect_agree(run_flex(p, d, in), run_reference(p, d, to_f64(in)));
    }
}

// Every pattern in f64 against the f64 reference, to 1e-12 (T < S, a query offset, GQA).
TEST(FlexAttention, AgreesWithDenseInF64) {
  std::vector<Pattern> all = mask_patterns();
  for (const Pattern& p : score_patterns()) all.push_back(p);
  const Dims d = kDims[1];
  for (const Pattern& p : all) {
    if (p.name.starts_with("bigbird") || p.name.starts_with("longformer")) continue;  // q_offset 0 only
    SCOPED_TRACE(p.name);
    Inputs in = make_inputs(d, p, 250, DType::f64);
    expect_agree(run_flex(p, d, in), run_reference(p, d, to_f64(in)), 1e-12, 1e-14);
  }
}

// Every pattern, f64, gradients of q, k, v and captured tensors by finite differences.
TEST(FlexAttention, Gradcheck) {
  std::vector<Pattern> all = mask_patterns();
  for (const Pattern& p : score_patterns()) all.push_back(p);
  for (Dims d : {Dims{1, 11, 11, 2, 1, 3, 2, 4, 0}, Dims{2, 6, 13, 2, 2, 2, 3, 4, 5}}) {
    for (const Pattern& p : all) {
      if ((p.name.starts_with("bigbird") || p.name.starts_with("longformer")) && d.q_offset) continue;
      if (p.name.starts_with("key_lengths") && d.B == 1) continue;
      SCOPED_TRACE(p.name + " " + dims_str(d));
      Inputs in = make_inputs(d, p, 300, DType::f64);
      std::vector<Tensor> inputs = {in.q.detach(), in.k.detach(), in.v.detach()};
      for (const Tensor& c : in.captured) inputs.push_back(c.detach());
      Pattern pat = p;
      testing::expect_gradcheck(
          [pat, d](const std::vector<Tensor>& x) {
            MaskMod m = mask_of(pat, d);
            BlockMask bm = m.defined() ? create_block_mask(m, d.B, d.H, d.T, d.S, d.block, d.q_offset)
                                       : BlockMask::full(d.T, d.S, d.block, d.q_offset);
            std::vector<Tensor> cap(x.begin() + 3, x.end());
            ScoreMod sm = pat.score ? pat.score(cap) : ScoreMod{};
            FlexOptions o;
            o.enable_gqa = true;
            return flex_attention(x[0], x[1], x[2], sm, bm, o);
          },
          inputs);
    }
  }
}

TEST(FlexAttention, RowsThatSeeNoKeyGiveZeros) {
  Dims d{2, 20, 20, 2, 2, 4, 4, 8, 0};
  Pattern p{"lengths {0, 7}", [](const Dims&) { return key_lengths_mask({0, 7}); }, nullptr, nullptr, nullptr};
  Inputs in = make_inputs(d, p, 400, DType::f32);
  Result r = run_flex(p, d, in);
  for (const Tensor& t : r.t)
    for (double x : t.to_vector()) ASSERT_TRUE(std::isfinite(x));
  EXPECT_EQ(max_abs(narrow(r.t[0], 0, 0, 1)), 0.0);
  EXPECT_EQ(max_abs(narrow(r.t[1], 0, 0, 1)), 0.0);
  expect_agree(r, run_reference(p, d, to_f64(in)));
  // A row hidden by a mask that leaves others visible (query 0 under "k > q" sees nothing).
  Pattern above{"k > q", [](const Dims&) { return mask_mod("above", [](int64_t, int64_t, int64_t q, int64_t k) { return k > q; }); },
                nullptr, nullptr, nullptr};
  Dims d2{1, 20, 20, 1, 1, 4, 4, 8, 0};
  Inputs in2 = make_inputs(d2, above, 401, DType::f32);
  Tensor lse;
  BlockMask bm = create_block_mask(above.mask(d2), 1, 1, 20, 20, 8);
  Tensor out = flex_attention(in2.q, in2.k, in2.v, {}, bm, {}, &lse);
  EXPECT_EQ(lse.at({0, 0, 19}), -INFINITY);
  for (int64_t e = 0; e < 4; ++e) EXPECT_EQ(out.at({0, 19, 0, e}), 0.0);
  expect_agree(run_flex(above, d2, in2), run_reference(above, d2, to_f64(in2)));
}

TEST(FlexAttention, LseIsTheLogSumExpOfTheModdedScores) {
  Tensor q = uniform({1, 20, 2, 4}, 1, -2, 2), k = uniform({1, 30, 2, 4}, 2, -2, 2), v = uniform({1, 30, 2, 4}, 3);
  BlockMask bm = create_block_mask(causal_mask(), 1, 1, 20, 30, 8);
  Tensor lse;
  flex_attention(q, k, v, softcap(1.0), bm, {}, &lse);
  ASSERT_EQ(lse.shape(), Shape({1, 2, 20}));
  for (int64_t h = 0; h < 2; ++h)
    for (int64_t t = 0; t < 20; ++t) {
      double sum = 0;
      for (int64_t s = 0; s <= t; ++s) {
        double dot = 0;
        for (int64_t e = 0; e < 4; ++e) dot += q.at({0, t, h, e}) * k.at({0, s, h, e});
        sum += std::exp(std::tanh(dot / 2.0));
      }
      EXPECT_NEAR(lse.at({0, h, t}), std::log(sum), 1e-12);
    }
}

TEST(FlexAttention, DropoutAgreesWithDenseForTheSameSeed) {
  // The second on the register tiles (blocks of 64, D = 16), grouped heads. "shift" adds 0.5 to
  // every score, which softmax does not see: its forward runs on the tiles with the mod applied
  // there, its backward in flex's own kernel, and both must draw what dense draws.
  auto shift = [](const std::vector<Tensor>&) {
    return score_mod(
        "shift", [](auto s, int64_t, int64_t, int64_t, int64_t, const auto&) { return s + decltype(s)(0.5); },
        [](auto, auto g, int64_t, int64_t, int64_t, int64_t, const auto&) { return g; });
  };
  for (Dims d : {Dims{2, 37, 41, 2, 2, 8, 8, 16, 0}, Dims{2, 150, 130, 2, 1, 16, 16, 64, 0}})
  for (bool shifted : {false, true}) {
    SCOPED_TRACE(dims_str(d) + (shifted ? " shift" : ""));
    Pattern p{"causal", [](const Dims&) { return causal_mask(); }, nullptr, nullptr, nullptr};
    if (shifted) p.score = shift;
    Inputs in = make_inputs(d, p, 500, DType::f32);
    Generator g1(17), g2(17);
    FlexOptions o;
    o.dropout_p = 0.25, o.generator = &g1;
    Result flex = run_flex(p, d, in, o);
    AttentionSpec spec;
    spec.causal = true, spec.dropout_p = 0.25, spec.generator = &g2;
    Inputs in2 = in;
    in2.q.set_grad(Tensor()), in2.k.set_grad(Tensor()), in2.v.set_grad(Tensor());
    Result dense = collect(attention(in2.q, in2.k, in2.v, spec), in2);
    for (Tensor& t : dense.t) t = t.to(DType::f64);
    expect_agree(flex, dense);
  }
}

// flex causal equals flash causal; flex sliding equals the sliding_window variant (to rounding).
TEST(FlexAttention, EqualsFlashAndSlidingWindow) {
  Dims d{2, 70, 70, 2, 2, 16, 16, kFlexDefaultBlock, 0};
  for (bool sliding : {false, true}) {
    Pattern p{sliding ? "sliding 9" : "causal",
              [sliding](const Dims&) { return sliding ? sliding_window_mask(9) : causal_mask(); }, nullptr,
              nullptr, nullptr};
    SCOPED_TRACE(p.name);
    Inputs in = make_inputs(d, p, 600, DType::f32);
    for (int64_t block : {int64_t(16), kFlexDefaultBlock}) {
      Dims db = d;
      db.block = block;
      Result flex = run_flex(p, db, in);
      AttentionSpec spec;
      spec.causal = true;
      spec.variant = sliding ? AttentionVariant::sliding_window : AttentionVariant::flash;
      spec.window = 9;
      Inputs in2 = in;
      in2.q.set_grad(Tensor()), in2.k.set_grad(Tensor()), in2.v.set_grad(Tensor());
      Result ref = collect(attention(in2.q, in2.k, in2.v, spec), in2);
      for (Tensor& t : ref.t) t = t.to(DType::f64);
      expect_agree(flex, ref, 2e-6, 1e-7);
      in.q.set_grad(Tensor()), in.k.set_grad(Tensor()), in.v.set_grad(Tensor());
    }
  }
}

// The same bits with 1 and 2 threads: captured gradients are summed in fixed slots (T5 bias);
// with one kv head, 1 thread takes the one-pass backward and 2 threads the two-pass one (softcap).
// The same on the register tiles (a mask without score_mod, blocks of 64, D = 16), with one kv
// head and B = 1 (one pass and two) and with two.
TEST(FlexAttention, ResultsDoNotDependOnThreads) {
  Pattern doc{"causal & document",
              [](const Dims& d) { return and_masks(causal_mask(), document_mask(doc_ids(d.S))); }, nullptr, nullptr,
              nullptr};
  const std::vector<std::pair<Pattern, Dims>> cases = {{score_patterns()[4], Dims{2, 40, 40, 2, 1, 8, 8, 8, 0}},
                                                       {score_patterns()[2], Dims{1, 40, 40, 2, 1, 8, 8, 8, 0}},
                                                       {doc, Dims{1, 200, 200, 2, 1, 16, 16, 64, 0}},
                                                       {doc, Dims{2, 200, 200, 4, 2, 16, 16, 64, 0}}};
  for (const auto& [p, d] : cases) {
    SCOPED_TRACE(p.name + " " + dims_str(d));
    int saved = get_num_threads();
    std::vector<Result> r;
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      Inputs in = make_inputs(d, p, 700, DType::f32);
      r.push_back(run_flex(p, d, in));
    }
    set_num_threads(saved);
    for (size_t i = 0; i < r[0].t.size(); ++i) EXPECT_EQ(max_abs_diff(r[0].t[i], r[1].t[i]), 0.0) << i;
  }
}

// Grouped-query heads read their kv head in place: the forward allocates its output and lse
// only (an expanded k and v would add 2 · B·S·H·D elements); the backward returns kv-shaped dk, dv.
TEST(FlexAttention, GroupedQueryHeadsDoNotCopyKeysAndValues) {
  const int64_t B = 1, T = 96, H = 8, Hkv = 2, D = 16;
  Tensor q = uniform({B, T, H, D}, 1, -1, 1, DType::f32).requires_grad_();
  Tensor k = uniform({B, T, Hkv, D}, 2, -1, 1, DType::f32).requires_grad_();
  Tensor v = uniform({B, T, Hkv, D}, 3, -1, 1, DType::f32).requires_grad_();
  BlockMask bm = create_block_mask(causal_mask(), 1, 1, T, T, 32);
  FlexOptions o;
  o.enable_gqa = true;
  reset_peak_memory_stats();
  const int64_t before = memory_allocated();
  Tensor out = flex_attention(q, k, v, {}, bm, o);
  const int64_t out_bytes = int64_t(out.nbytes()) + B * H * T * 4;  // out and lse
  EXPECT_LE(max_memory_allocated() - before, out_bytes + 2 * 64);     // 64-byte rounding
  backward(sum(out));
  EXPECT_EQ(k.grad().shape(), k.shape());
  EXPECT_EQ(v.grad().shape(), v.shape());
}

// Empty axes: no batch, no queries, no keys (every row sees nothing: zeros).
TEST(FlexAttention, EmptyAxes) {
  for (Dims d : {Dims{0, 3, 4, 2, 2, 3, 3, 4, 0}, Dims{1, 0, 4, 2, 2, 3, 3, 4, 0}, Dims{1, 3, 0, 2, 1, 3, 2, 4, 0}}) {
    SCOPED_TRACE(dims_str(d));
    Pattern p{"none", nullptr, nullptr, nullptr, nullptr};
    Inputs in = make_inputs(d, p, 900, DType::f32);
    Result r = run_flex(p, d, in);
    expect_agree(r, run_reference(p, d, to_f64(in)));
    if (d.S == 0) {
      EXPECT_EQ(max_abs(r.t[0]) + max_abs(r.t[1]), 0.0);
    }
  }
}

// A captured tensor computed by other ops passes its gradient on (table = 2 · param).
TEST(FlexAttention, CapturedGradientReachesTheTensorsItCameFrom) {
  Tensor q = uniform({1, 9, 2, 4}, 1, -1, 1), k = uniform({1, 9, 2, 4}, 2, -1, 1), v = uniform({1, 9, 2, 4}, 3);
  Tensor param = uniform({2, 8}, 4, -1, 1).requires_grad_();
  Tensor table = (param.detach() * 2.0).requires_grad_();  // the same values, as a leaf
  BlockMask bm = create_block_mask(causal_mask(), 1, 1, 9, 9, 4);
  backward(sum(flex_attention(q, k, v, relative_position_bias(param * 2.0, true, 16), bm)));
  backward(sum(flex_attention(q, k, v, relative_position_bias(table, true, 16), bm)));
  EXPECT_GT(max_abs(table.grad()), 0.0);
  EXPECT_LE(max_abs_diff(param.grad(), table.grad() * 2.0), 1e-15);
}

// A captured tensor changed in place between forward and backward: backward refuses, naming it.
TEST(FlexAttention, CapturedTensorModifiedInPlaceIsRefused) {
  Tensor q = uniform({1, 6, 2, 4}, 1, -1, 1).requires_grad_(), k = uniform({1, 6, 2, 4}, 2, -1, 1);
  Tensor table = uniform({2, 8}, 3, -1, 1).requires_grad_();
  Tensor out = flex_attention(q, k, k, relative_position_bias(table, true, 16));
  table.set({0, 0}, 5.0);
  EXPECT_TG_ERROR(backward(sum(out)), "flex_attention backward: the tensor saved as 'captured0' (shape [2, 8])");
}

TEST(FlexAttention, BadInputIsNamed) {
  Tensor q = uniform({1, 8, 4, 4}, 1, -1, 1, DType::f32), k = uniform({1, 8, 4, 4}, 2, -1, 1, DType::f32);
  Tensor k3 = uniform({1, 8, 3, 4}, 2, -1, 1, DType::f32), k2 = uniform({1, 8, 2, 4}, 2, -1, 1, DType::f32);
  MaskMod nothing = mask_mod("nothing", [](int64_t, int64_t, int64_t, int64_t) { return false; });
  EXPECT_TG_ERROR(create_block_mask(nothing, 1, 1, 8, 8, 4), "create_block_mask: mask_mod nothing hides every");
  EXPECT_TG_ERROR(create_block_mask(causal_mask(), 1, 1, 8, 8, 0), "create_block_mask: block size must be positive");
  EXPECT_TG_ERROR(create_block_mask(causal_mask(), 1, 1, 8, 8, -3), "block size must be positive, got -3");
  EXPECT_TG_ERROR(create_block_mask(document_mask(doc_ids(7)), 1, 1, 8, 8, 4), "document_mask: doc_ids [7]");
  EXPECT_TG_ERROR(create_block_mask(causal_mask(), 1, 1, 8, 8, 4, 9), "query offset 9 is beyond the keys");
  EXPECT_TG_ERROR(flex_attention(q, k3, k3), "kv heads (3) must divide the query heads (4)");
  EXPECT_TG_ERROR(flex_attention(q, k2, k2), "grouped-query attention needs enable_gqa");
  EXPECT_TG_ERROR(flex_attention(q, k, k, alibi(alibi_slopes(5))), "alibi's slopes [5] must be [H] = [4]");
  EXPECT_TG_ERROR(flex_attention(q, k, k, alibi(alibi_slopes(4, DType::f64))), "captured tensor 0 must be f32");
  EXPECT_TG_ERROR(flex_attention(q, k, k, relative_position_bias(zeros({3, 8}))), "table [3, 8] must be [H = 4");
  EXPECT_TG_ERROR(flex_attention(q, k, k, {}, create_block_mask(causal_mask(), 1, 1, 7, 8, 4)),
                  "block mask built for [B, H, T, S] = [1, 1, 7, 8] does not fit");
  EXPECT_TG_ERROR(flex_attention(q, narrow(k, 1, 0, 5), k), "flex_attention: shapes q [1, 8, 4, 4], k [1, 5, 4, 4]");
  EXPECT_TG_ERROR(key_padding_mask(zeros({1, 8})), "key_padding_mask: padding must be b8 [B, S]");
  EXPECT_TG_ERROR(create_block_mask(key_lengths_mask({3, 4}), 1, 1, 8, 8, 4), "2 lengths for a batch of 1");
  EXPECT_TG_ERROR(softcap(0.0), "softcap: cap must be positive");
}

}  // namespace
}  // namespace tg
