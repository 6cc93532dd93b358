// rope: Hugging Face Llama's rotary embedding (q * cos + rotate_half(q) * sin), its gradient,
// positions given or offset, rope_scaling's "linear" and "llama3" frequencies, rotating some
// heads of a fused projection only, and bad input.
#include <cmath>
#include <numbers>

#include "ops/rope.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::expect_gradcheck;
using testing::uniform;

// transformers' apply_rotary_pos_emb written out: emb = cat(freqs, freqs), rotate_half(x) =
// cat(-x2, x1), out = x * cos(emb) + rotate_half(x) * sin(emb); x [B, T, H, D], pos(b, t).
template <class Pos>
Tensor hf_rope(const Tensor& x, double theta, Pos pos) {
  const Shape& s = x.shape();
  const int64_t B = s[0], T = s[1], H = s[2], D = s[3], half = D / 2;
  std::vector<double> in = x.to_vector(), out(in.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t d = 0; d < D; ++d) {
          const int64_t base = ((b * T + t) * H + h) * D;
          const double freq = std::pow(theta, -2.0 * double(d % half) / double(D));
          const double angle = double(pos(b, t)) * freq;
          const double rotated_half = d < half ? -in[size_t(base + d + half)] : in[size_t(base + d - half)];
          out[size_t(base + d)] = in[size_t(base + d)] * std::cos(angle) + rotated_half * std::sin(angle);
        }
  return tensor(out, s, x.dtype());
}

TEST(Rope, MatchesTransformersFormula) {
  Tensor x = uniform({2, 5, 3, 8}, 1);
  expect_close(rope(x), hf_rope(x, 10000.0, [](int64_t, int64_t t) { return t; }), 1e-12, 1e-12);
  RopeOptions o;
  o.theta = 500000.0, o.position_offset = 7;  // Llama 3's theta, a cached decoding offset
  expect_close(rope(x, o), hf_rope(x, 500000.0, [](int64_t, int64_t t) { return 7 + t; }), 1e-12, 1e-12);
  Tensor xf = x.to(DType::f32);
  expect_close(rope(xf, o), hf_rope(xf, 500000.0, [](int64_t, int64_t t) { return 7 + t; }), 1e-5, 1e-6);
}

TEST(Rope, PositionsPerRowRestartForPackedDocuments) {
  Tensor x = uniform({2, 6, 2, 4}, 2);
  const std::vector<int64_t> pos = {0, 1, 2, 0, 1, 0, 5, 6, 7, 8, 9, 10};  // [B, T]
  RopeOptions o;
  o.positions = empty({2, 6}, DType::i64);
  std::copy(pos.begin(), pos.end(), o.positions.data<int64_t>());
  expect_close(rope(x, o), hf_rope(x, 10000.0, [&](int64_t b, int64_t t) { return pos[size_t(b * 6 + t)]; }), 1e-12,
               1e-12);
  RopeOptions shared;  // one row [T] for the whole batch
  shared.positions = empty({6}, DType::i64);
  std::copy(pos.begin(), pos.begin() + 6, shared.positions.data<int64_t>());
  expect_close(rope(x, shared), hf_rope(x, 10000.0, [&](int64_t, int64_t t) { return pos[size_t(t)]; }), 1e-12,
               1e-12);
}

// What RoPE is for: the score of a query at m and a key at n depends on m - n only.
TEST(Rope, ScoresDependOnRelativePositionOnly) {
  Tensor q = uniform({1, 1, 1, 16}, 3), k = uniform({1, 1, 1, 16}, 4);
  auto score = [&](int64_t m, int64_t n) {
    RopeOptions om, on;
    om.position_offset = m, on.position_offset = n;
    return sum(rope(q, om) * rope(k, on)).item();
  };
  EXPECT_NEAR(score(3, 1), score(12, 10), 1e-12);
  EXPECT_NEAR(score(0, 0), score(40, 40), 1e-12);
  EXPECT_GT(std::fabs(score(3, 1) - score(1, 3)), 1e-6);  // not symmetric: it knows the direction
}

TEST(Rope, Gradcheck) {
  RopeOptions o;
  o.position_offset = 3, o.theta = 100.0;
  expect_gradcheck([o](const std::vector<Tensor>& in) { return rope(in[0], o); }, {uniform({2, 3, 2, 6}, 5)});
  RopeOptions p;
  p.positions = empty({3}, DType::i64);
  for (int64_t t = 0; t < 3; ++t) p.positions.data<int64_t>()[t] = 4 - t;
  expect_gradcheck([p](const std::vector<Tensor>& in) { return rope(in[0], p) * in[0]; }, {uniform({1, 3, 2, 4}, 6)});
}

// transformers' _compute_llama3_parameters written out with its own names.
std::vector<double> llama3_frequencies(int64_t D, double base, double factor, double low_freq_factor,
                                       double high_freq_factor, double old_context_len) {
  std::vector<double> out;
  for (int64_t i = 0; i < D; i += 2) {
    const double inv_freq = 1.0 / std::pow(base, double(i) / double(D));
    const double wavelen = 2 * std::numbers::pi / inv_freq;
    const double low_freq_wavelen = old_context_len / low_freq_factor, high_freq_wavelen = old_context_len / high_freq_factor;
    double v = wavelen > low_freq_wavelen ? inv_freq / factor : inv_freq;
    const double smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
    const bool is_medium_freq = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    if (is_medium_freq) v = (1 - smooth_factor) * v / factor + smooth_factor * v;
    out.push_back(v);
  }
  return out;
}

TEST(Rope, Llama3ScalingKeepsScalesAndInterpolatesTheBands) {
  RopeScaling s;
  s.rope_type = "llama3", s.factor = 8, s.low_freq_factor = 1, s.high_freq_factor = 4;
  s.original_max_position_embeddings = 256;
  const std::vector<double> got = rope_inv_freq(8, 500000.0, s), want = llama3_frequencies(8, 500000.0, 8, 1, 4, 256);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-15 * want[i]) << i;
  // With this original context (bands at wavelengths 64 and 256) the three are all present: the
  // highest frequency (wavelength 6.3) kept, the lowest divided by the factor, one (167) between.
  const std::vector<double> plain = rope_inv_freq(8, 500000.0);
  EXPECT_EQ(got[0], plain[0]);
  EXPECT_NEAR(got[3], plain[3] / 8, 1e-18);
  EXPECT_TRUE(got[1] < plain[1] && got[1] > plain[1] / 8) << got[1] << " vs " << plain[1];
}

TEST(Rope, LinearScalingIsPositionsDividedByTheFactor) {
  Tensor x = uniform({1, 6, 2, 8}, 8);
  RopeOptions o;
  o.scaling.rope_type = "linear", o.scaling.factor = 4;
  expect_close(rope(x, o), hf_rope(x, 10000.0, [](int64_t, int64_t t) { return double(t) / 4; }), 1e-12, 1e-12);
}

TEST(Rope, RotatesTheFirstHeadsOnlyWhenAsked) {
  // A fused projection [B, T, H + 2·Hkv, D] with H = 2, Hkv = 1: q and k heads rotate, v passes.
  Tensor qkv = uniform({2, 3, 4, 6}, 9);
  RopeOptions o;
  o.rotated_heads = 3;
  Tensor got = rope(qkv, o), all = rope(qkv);
  for (int64_t h = 0; h < 4; ++h)
    expect_close(narrow(got, 2, h, 1), narrow(h < 3 ? all : qkv, 2, h, 1), 0, 0);
  expect_gradcheck([o](const std::vector<Tensor>& in) { return rope(in[0], o) * in[0]; }, {uniform({1, 2, 3, 4}, 10)});
}

TEST(Rope, BadInputNamesTheShapes) {
  EXPECT_TG_ERROR(rope(uniform({1, 2, 3, 5}, 7)), "rope: the head width D must be even, got x of shape [1, 2, 3, 5]");
  EXPECT_TG_ERROR(rope(uniform({2, 3, 4}, 7)), "rope: expected x of shape [B, T, H, D], got [2, 3, 4]");
  RopeOptions o;
  o.positions = empty({4}, DType::i64);
  EXPECT_TG_ERROR(rope(uniform({1, 3, 1, 4}, 7), o), "rope: positions must be i64 of shape [3] or [1, 3]");
  o = RopeOptions{};
  o.theta = 0;
  EXPECT_TG_ERROR(rope(uniform({1, 3, 1, 4}, 7), o), "rope: theta must be positive");
  o = RopeOptions{};
  o.rotated_heads = 2;
  EXPECT_TG_ERROR(rope(uniform({1, 3, 1, 4}, 7), o), "rope: rotated_heads must be -1 (all) or in [0, 1]");
  o = RopeOptions{};
  o.scaling.rope_type = "yarn";
  EXPECT_TG_ERROR(rope(uniform({1, 3, 1, 4}, 7), o), "rope: scaling: rope_type \"yarn\" is not supported");
  o.scaling.rope_type = "llama3", o.scaling.factor = 8, o.scaling.low_freq_factor = 4, o.scaling.high_freq_factor = 1;
  EXPECT_TG_ERROR(rope(uniform({1, 3, 1, 4}, 7), o), "llama3 needs 0 < low_freq_factor < high_freq_factor, got 4 and 1");
}

}  // namespace
}  // namespace tg
