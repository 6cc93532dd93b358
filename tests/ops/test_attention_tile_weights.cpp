// tile_softmax_weights (ops/kernels/attention_tile_weights.h), the forward's fused scores and
// weights of a whole tile, against the online-softmax step computed in double: whatever running
// maximum it keeps, its weights, normaliser and output scale must describe the same sums.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "ops/kernels/attention_tile_weights.h"

namespace tg {
namespace {

using kernels::kTiledCols;
using kernels::kTiledRows;
using kernels::kTileLanes;
constexpr float kInf = std::numeric_limits<float>::infinity();

struct Case {
  int64_t D = 16, ldk = 16;
  std::vector<float> k, qT, m, l;  // [kTiledCols, ldk], [D, kTiledRows], [kTiledRows] x 2
};

// Random K and scale · Qᵀ (scores of about ±spread), and lanes in every state a forward meets:
// no key seen yet (m = -inf, l = 0), a maximum far below the tile's scores, near them, above them.
Case random_case(int64_t D, int64_t ldk, float spread, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Case c;
  c.D = D, c.ldk = ldk;
  c.k.resize(size_t(kTiledCols * ldk));
  c.qT.resize(size_t(D * kTiledRows));
  for (float& x : c.k) x = u(gen);
  for (float& x : c.qT) x = u(gen) * spread / std::sqrt(float(D));
  c.m.resize(kTiledRows);
  c.l.resize(kTiledRows);
  for (int64_t r = 0; r < kTiledRows; ++r) {
    const int64_t kind = r % 4;
    c.m[size_t(r)] = kind == 0 ? -kInf : kind == 1 ? -30.0f : kind == 2 ? u(gen) : 30.0f;
    c.l[size_t(r)] = kind == 0 ? 0.0f : 1.0f + 3.0f * std::fabs(u(gen));
  }
  return c;
}

// Runs the kernel on c and checks it against double sums: for every lane,
// l' · e^m' = l · e^m + Σ_c e^{s_c} (the normaliser's meaning), weights e^{s_c - m'}, the output
// scale alpha = e^{m - m'}, no weight above e^8, and a strip's bit clear only where nothing moved.
void check_case(const Case& c) {
  std::vector<float> pT(size_t(kTiledCols * kTiledRows), std::nanf("")), m = c.m, l = c.l, alpha(kTiledRows, -1.0f);
  const uint32_t strips =
      kernels::tile_softmax_weights(c.D, c.k.data(), c.ldk, c.qT.data(), pT.data(), m.data(), l.data(), alpha.data());
  for (int64_t r = 0; r < kTiledRows; ++r) {
    SCOPED_TRACE("lane " + std::to_string(r));
    const size_t lane = size_t(r);
    double top = -kInf, sum_exp = 0;  // over the tile's scores, in double, relative to m'
    for (int64_t col = 0; col < kTiledCols; ++col) {
      const float got = pT[size_t(col * kTiledRows + r)];
      double s = 0;
      for (int64_t e = 0; e < c.D; ++e) s += double(c.k[size_t(col * c.ldk + e)]) * c.qT[size_t(e * kTiledRows + r)];
      top = std::max(top, s);
      const double want = std::exp(s - m[lane]);
      EXPECT_NEAR(got, want, 2e-5 * want + 1e-30) << "key " << col;
      sum_exp += want;
    }
    EXPECT_GE(m[lane], c.m[lane]);
    EXPECT_LE(top - m[lane], kernels::kWeightHeadroom + 1e-4);
    EXPECT_LE(m[lane], std::max<double>(c.m[lane], top) + 1e-4);
    const double want_alpha = c.m[lane] == -kInf ? 0.0 : std::exp(double(c.m[lane]) - m[lane]);
    // softmax_exp's error: 2 ulp and |x| · 2^-23 (the moves multiply at most a few such factors).
    if (want_alpha == 0)
      EXPECT_EQ(alpha[lane], 0.0f);
    else
      EXPECT_NEAR(alpha[lane], want_alpha, (1e-6 + 3e-7 * std::fabs(double(c.m[lane]) - m[lane])) * want_alpha);
    const double want_l = c.l[lane] * want_alpha + sum_exp;
    EXPECT_NEAR(l[lane], want_l, 2e-5 * want_l);
    if (!(strips >> (r / kTileLanes) & 1)) {
      EXPECT_EQ(alpha[lane], 1.0f);
      EXPECT_EQ(m[lane], c.m[lane]);
    }
  }
}

TEST(AttentionTileWeights, AreTheOnlineSoftmaxStepInEveryLaneState) {
  for (int64_t D : {16, 32, 64, 128})
    for (float spread : {1.0f, 12.0f}) {
      SCOPED_TRACE("D " + std::to_string(D) + " spread " + std::to_string(spread));
      check_case(random_case(D, 3 * D, spread, uint32_t(D) + uint32_t(spread)));
    }
}

// A key whose scores pass every earlier one by far, last in the tile: the maximum moves in the
// last block, and the tile's earlier weights are rescaled to it (else they would be e^40).
TEST(AttentionTileWeights, RescaleTheirEarlierWeightsWhenALateKeyPassesTheMaximum) {
  for (int64_t D : {16, 64}) {
    Case c = random_case(D, D, 1.0f, 7);
    for (int64_t col = 0; col < kTiledCols; ++col) c.k[size_t(col * D)] = 0.0f;
    for (int64_t e = 0; e < D; ++e) c.k[size_t((kTiledCols - 1) * D + e)] = e == 0 ? 1.0f : 0.0f;
    for (int64_t r = 0; r < kTiledRows; ++r) c.qT[size_t(r)] = 40.0f;  // s = 40 for the last key
    check_case(c);
  }
}

}  // namespace
}  // namespace tg
