// rope: Hugging Face Llama's rotary embedding (q * cos + rotate_half(q) * sin), its gradient,
// positions given or offset, and bad input.
#include <cmath>

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

TEST(Rope, BadInputNamesTheShapes) {
  EXPECT_TG_ERROR(rope(uniform({1, 2, 3, 5}, 7)), "rope: the head width D must be even, got x of shape [1, 2, 3, 5]");
  EXPECT_TG_ERROR(rope(uniform({2, 3, 4}, 7)), "rope: expected x of shape [B, T, H, D], got [2, 3, 4]");
  RopeOptions o;
  o.positions = empty({4}, DType::i64);
  EXPECT_TG_ERROR(rope(uniform({1, 3, 1, 4}, 7), o), "rope: positions must be i64 of shape [3] or [1, 3]");
  o = RopeOptions{};
  o.theta = 0;
  EXPECT_TG_ERROR(rope(uniform({1, 3, 1, 4}, 7), o), "rope: theta must be positive");
}

}  // namespace
}  // namespace tg
