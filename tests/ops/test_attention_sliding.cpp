// sliding_window attention: a plain-loop reference; agreement with dense (no mask when the window
// covers everything, else an explicit band attn_mask) for output and gradients, causal and
// bidirectional, with key padding, T != S, dropout, f64; thread-count independence; the saved
// weights stay O(T · window); errors.
#include <cstdlib>

#include "attention_agreement.h"
#include "ops/kernels/attention_sliding.h"

namespace tg {
namespace {

using testing::AttentionRun;
using testing::expect_runs_close;
using testing::run_attention;
using testing::uniform;

struct Inputs {
  Tensor q, k, v, dout;
};

Inputs make_inputs(int64_t B, int64_t T, int64_t S, int64_t H, int64_t D, uint64_t seed,
                   DType dt = DType::f32) {
  return {uniform({B, T, H, D}, seed, -2, 2, dt), uniform({B, S, H, D}, seed + 1, -2, 2, dt),
          uniform({B, S, H, D}, seed + 2, -1, 1, dt), uniform({B, T, H, D}, seed + 3, -1, 1, dt)};
}

// The keys query t sees in sliding_window(w), written out.
bool in_band(int64_t t, int64_t s, int64_t w, bool causal) {
  return causal ? (s <= t && s >= t - w + 1) : std::llabs(t - s) <= w;
}

AttentionSpec sliding(int64_t w, bool causal) {
  AttentionSpec spec;
  spec.variant = AttentionVariant::sliding_window;
  spec.window = w;
  spec.causal = causal;
  return spec;
}

// The dense spec computing what `spec` (a sliding one) computes: the band as a bool attn_mask.
AttentionSpec dense_with_band(const AttentionSpec& spec, int64_t T, int64_t S) {
  AttentionSpec d = spec;
  d.variant = AttentionVariant::dense;
  int64_t w = spec.window;
  bool causal = spec.causal;
  d.attn_mask =
      testing::bool_mask(T, S, [&](int64_t t, int64_t s) { return in_band(t, s, w, causal); });
  return d;
}

void expect_matches_dense(const Inputs& in, const AttentionSpec& spec) {
  int64_t T = in.q.size(1), S = in.k.size(1);
  AttentionRun a = run_attention(in.q, in.k, in.v, spec, in.dout);
  AttentionRun ref = run_attention(in.q, in.k, in.v, dense_with_band(spec, T, S), in.dout);
  expect_runs_close(a, ref);
}

TEST(AttentionSliding, MatchesPlainLoops) {
  // f64, T = 21 spans several query blocks (window 3 -> blocks of 8), last one partial.
  Inputs in = make_inputs(2, 21, 21, 2, 4, 10, DType::f64);
  for (bool causal : {true, false}) {
    int64_t w = 3;
    Tensor out = attention(in.q, in.k, in.v, sliding(w, causal));
    Tensor ref = testing::naive_attention(
        in.q, in.k, in.v, 0.5,
        [&](int64_t, int64_t t, int64_t s) { return in_band(t, s, w, causal); });
    testing::expect_close(out, ref, 1e-12, 1e-12);
  }
}

TEST(AttentionSliding, WideWindowEqualsDense) {
  Inputs in = make_inputs(2, 70, 70, 3, 16, 20);
  for (bool causal : {true, false})
    for (int64_t w : {int64_t(70), int64_t(100), int64_t(1) << 62}) {
      SCOPED_TRACE(::testing::Message() << "causal " << causal << " window " << w);
      AttentionSpec spec = sliding(w, causal);
      AttentionSpec dense = spec;
      dense.variant = AttentionVariant::dense;
      expect_runs_close(run_attention(in.q, in.k, in.v, spec, in.dout),
                        run_attention(in.q, in.k, in.v, dense, in.dout));
    }
}

TEST(AttentionSliding, NarrowWindowEqualsDenseWithBandMask) {
  Inputs in = make_inputs(2, 150, 150, 2, 16, 30);
  for (bool causal : {true, false})
    for (int64_t w : {1, 5, 20, 64, 65, 100}) {
      SCOPED_TRACE(::testing::Message() << "causal " << causal << " window " << w);
      expect_matches_dense(in, sliding(w, causal));
    }
}

// At T >= 4096 a narrow band's forward prefetches each task's rows during the task before it
// (attention_flash_tiled_forward.cpp); H = 3 heads and 64 query tiles split over the threads put
// task boundaries at every head.
TEST(AttentionSliding, LongSequenceEqualsDenseWithBandMask) {
  Inputs in = make_inputs(1, 4096, 4096, 3, 16, 35);
  for (bool causal : {true, false}) {
    SCOPED_TRACE(::testing::Message() << "causal " << causal);
    expect_matches_dense(in, sliding(100, causal));
  }
}

TEST(AttentionSliding, KeyPadding) {
  // Batch 1's keys past 30 are padding: with window 10 bidirectional, its queries t > 40 see no
  // key at all and must give zeros, as dense does.
  Inputs in = make_inputs(2, 90, 90, 2, 8, 40);
  for (bool causal : {true, false}) {
    SCOPED_TRACE(::testing::Message() << "causal " << causal);
    AttentionSpec spec = sliding(10, causal);
    spec.key_lengths = {75, 30};
    expect_matches_dense(in, spec);
    Tensor out = attention(in.q, in.k, in.v, spec);
    for (int64_t t = 41; t < 90; ++t)
      for (int64_t h = 0; h < 2; ++h) EXPECT_EQ(out.at({1, t, h, 0}), 0.0) << t;
  }
  // A padding mask too (not only lengths): every other key padded.
  AttentionSpec spec = sliding(7, true);
  spec.key_padding_mask =
      testing::bool_mask(2, 90, [](int64_t b, int64_t s) { return (s + b) % 2 == 1; });
  expect_matches_dense(in, spec);
}

TEST(AttentionSliding, DifferentQueryAndKeyLengths) {
  for (auto [T, S] : {std::pair<int64_t, int64_t>{50, 130}, {130, 50}}) {
    Inputs in = make_inputs(1, T, S, 2, 8, 50);
    for (bool causal : {true, false})
      for (int64_t w : {4, 33}) {
        SCOPED_TRACE(::testing::Message()
                     << "T " << T << " S " << S << " causal " << causal << " w " << w);
        expect_matches_dense(in, sliding(w, causal));
      }
  }
}

TEST(AttentionSliding, DropoutDropsWhatDenseDrops) {
  Inputs in = make_inputs(2, 80, 80, 2, 8, 60);
  for (bool causal : {true, false}) {
    Generator g1(7), g2(7);
    AttentionSpec spec = sliding(12, causal);
    spec.dropout_p = 0.3;
    spec.generator = &g1;
    AttentionSpec dense = dense_with_band(spec, 80, 80);
    dense.generator = &g2;
    expect_runs_close(run_attention(in.q, in.k, in.v, spec, in.dout),
                      run_attention(in.q, in.k, in.v, dense, in.dout));
  }
}

TEST(AttentionSliding, F64MatchesDenseTightly) {
  Inputs in = make_inputs(1, 100, 100, 2, 8, 70, DType::f64);
  for (bool causal : {true, false}) {
    AttentionSpec spec = sliding(30, causal);
    expect_runs_close(run_attention(in.q, in.k, in.v, spec, in.dout),
                      run_attention(in.q, in.k, in.v, dense_with_band(spec, 100, 100), in.dout),
                      1e-12, 1e-14);
  }
}

TEST(AttentionSliding, ResultsDoNotDependOnThreadCount) {
  Inputs in = make_inputs(2, 300, 300, 4, 32, 80);
  int saved = get_num_threads();
  for (double p : {0.1, 0.0})
  for (bool causal : {true, false}) {
    SCOPED_TRACE(::testing::Message() << "dropout " << p << " causal " << causal);
    AttentionSpec spec = sliding(40, causal);
    spec.dropout_p = p;
    Generator g1(3), g2(3);
    spec.generator = &g1;
    set_num_threads(1);
    AttentionRun one = run_attention(in.q, in.k, in.v, spec, in.dout);
    set_num_threads(2);
    spec.generator = &g2;
    AttentionRun two = run_attention(in.q, in.k, in.v, spec, in.dout);
    testing::expect_runs_equal(one, two);
  }
  set_num_threads(saved);
}

// f32 (D a multiple of 8) runs flash's register-blocked tiles over the band: the node saves the
// log-sum-exp [B, H, T] and no weights (recomputed in backward). f64 runs the
// block-sparse kernels, which save the band's weights: O(T · window) either way, far below T · S.
TEST(AttentionSliding, RecordsItsNodeAndSavesOnlyTheBand) {
  int64_t B = 1, T = 1000, H = 2, w = 50;
  for (DType dt : {DType::f32, DType::f64}) {
    Inputs in = make_inputs(B, T, T, H, 16, 90, dt);  // D a multiple of the lanes: f32 runs on the tiles
    Tensor q = in.q.detach().clone().requires_grad_();
    for (bool causal : {true, false}) {
      SCOPED_TRACE(std::string(dt == DType::f32 ? "f32" : "f64") + (causal ? " causal" : ""));
      Tensor out = attention(q, in.k, in.v, sliding(w, causal));
      ASSERT_TRUE(out.grad_fn());
      EXPECT_STREQ(out.grad_fn()->name(), "attention_sliding_window");
      if (dt == DType::f32) {
        EXPECT_EQ(out.grad_fn()->saved("lse").shape(), Shape({B, H, T}));
        EXPECT_TG_ERROR(out.grad_fn()->saved("weights"), "nothing was saved as 'weights'");
        continue;
      }
      // Each query block stores its rows against the key span they need: the band plus at most
      // one block of keys.
      int64_t band = causal ? w : 2 * w + 1;
      int64_t block = kernels::sliding_window_block(w, causal);
      Tensor weights = out.grad_fn()->saved("weights");
      EXPECT_LE(weights.numel(), B * H * T * (band + block - 1));
      EXPECT_GE(weights.numel(), B * H * (T - 2 * w) * band);
    }
  }
}

TEST(AttentionSliding, EmptyAxes) {
  // No keys: every query sees nothing and gets zeros, and so does its gradient. No queries: an
  // empty output and zero key gradients.
  for (auto [T, S] : {std::pair<int64_t, int64_t>{5, 0}, {0, 5}}) {
    Inputs in = make_inputs(2, T, S, 2, 4, 120);
    AttentionRun r = run_attention(in.q, in.k, in.v, sliding(2, true), in.dout);
    EXPECT_EQ(r.out.shape(), Shape({2, T, 2, 4}));
    EXPECT_EQ(testing::max_abs(r.out), 0.0);
    EXPECT_EQ(testing::max_abs(r.dq), 0.0);
    EXPECT_EQ(testing::max_abs(r.dk), 0.0);
    EXPECT_EQ(r.dk.shape(), Shape({2, S, 2, 4}));
  }
}

TEST(AttentionSliding, Errors) {
  Inputs in = make_inputs(1, 6, 6, 1, 4, 100);
  EXPECT_TG_ERROR(attention(in.q, in.k, in.v, sliding(0, true)),
                  "sliding_window needs window >= 1, got 0");
  AttentionSpec spec = sliding(2, false);
  spec.attn_mask = ones({6, 6}, DType::b8);
  EXPECT_TG_ERROR(attention(in.q, in.k, in.v, spec),
                  "sliding_window takes causal and key padding masks, not attn_mask");
  Tensor weights;
  EXPECT_TG_ERROR(attention(in.q, in.k, in.v, sliding(2, false), &weights),
                  "only the dense variant returns its weights (asked of sliding_window)");
}

}  // namespace
}  // namespace tg
