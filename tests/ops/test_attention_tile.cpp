// The register-blocked tile pieces of the f32 flash kernels (ops/kernels/attention_tile.h):
// tile_gemm against plain loops for every register-block remainder, strided and transposed A,
// accumulate and overwrite; softmax_exp against std::exp; the dropout scales against
// AttnDropout::keep; transpose_tile with its zero padding; transpose_matrix at every shape.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "ops/kernels/attention_mask.h"
#include "ops/kernels/attention_tile.h"
#include "ops/kernels/transpose_matrix.h"

namespace tg {
namespace {

using kernels::kTileLanes;
using kernels::kTileMinN;

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> x(n);
  for (float& e : x) e = u(gen);
  return x;
}

TEST(AttentionTile, TileGemmMatchesPlainLoops) {
  // M across the register blocks (6 rows with 8 lanes; 6 on strips of four vectors and 8 on the
  // rest with 16) and their remainders; N one or several strips of one, two and (16 lanes) four
  // vectors, and (16 lanes) a last strip of 8.
  for (int64_t M : {1, 5, 6, 7, 8, 9, 12, 13, 17, 64})
    for (int64_t N : {kTileMinN, kTileLanes, kTileLanes + kTileMinN, 2 * kTileLanes, 3 * kTileLanes,
                      3 * kTileLanes + kTileMinN, int64_t(64), 7 * kTileLanes + kTileMinN})
      for (int64_t K : {0, 1, 9, 64})
        for (bool transposed_a : {false, true})
          for (bool accumulate : {false, true}) {
            SCOPED_TRACE(::testing::Message() << "M " << M << " N " << N << " K " << K << " transposed "
                                              << transposed_a << " accumulate " << accumulate);
            const int64_t lda = (transposed_a ? M : K) + 3, ldb = N + 5, ldc = N + 8;
            const int64_t a_ms = transposed_a ? 1 : lda, a_ks = transposed_a ? lda : 1;
            std::vector<float> a = random_floats(size_t((transposed_a ? K : M) * lda + 1), 1);
            std::vector<float> b = random_floats(size_t(K * ldb + 1), 2);
            std::vector<float> c = random_floats(size_t(M * ldc), 3);
            std::vector<double> want(c.begin(), c.end());
            for (int64_t m = 0; m < M; ++m)
              for (int64_t n = 0; n < N; ++n) {
                double sum = accumulate ? want[size_t(m * ldc + n)] : 0.0;
                for (int64_t k = 0; k < K; ++k) sum += double(a[size_t(m * a_ms + k * a_ks)]) * b[size_t(k * ldb + n)];
                want[size_t(m * ldc + n)] = sum;
              }
            std::vector<float> before = c;
            kernels::tile_gemm(accumulate, M, N, K, a.data(), a_ms, a_ks, b.data(), ldb, c.data(), ldc);
            for (int64_t m = 0; m < M; ++m)
              for (int64_t n = 0; n < ldc; ++n) {
                const size_t i = size_t(m * ldc + n);
                if (n < N)
                  EXPECT_NEAR(c[i], want[i], 1e-5 * (K + 1)) << "m " << m << " n " << n;
                else
                  EXPECT_EQ(c[i], before[i]) << "wrote past N at m " << m << " n " << n;
              }
          }
}

TEST(AttentionTile, SoftmaxExpIsCloseToExpAndExactlyZeroWhenMasked) {
  // Within 2 ulp plus the rounding of x · log2(e), which grows with |x|.
  const double eps = std::numeric_limits<float>::epsilon();
  double worst = 0;
  for (float x = -87.0f; x <= 10.0f; x += 0.0137f) {
    kernels::TileVec e = kernels::softmax_exp(kernels::splat_value(x));
    const double want = std::exp(double(x));
    worst = std::max(worst, std::fabs(e[0] - want) / want / ((2 + std::fabs(x)) * eps));
    for (int64_t l = 1; l < kTileLanes; ++l) ASSERT_EQ(e[l], e[0]);
  }
  EXPECT_LE(worst, 1.0);
  EXPECT_NEAR(kernels::softmax_exp(kernels::splat_value(-1.0f))[0], std::exp(-1.0), 2 * eps * std::exp(-1.0));
  const float inf = std::numeric_limits<float>::infinity();
  kernels::TileVec special = kernels::softmax_exp(kernels::TileVec{-inf, -200.0f, -88.5f, 0.0f, -0.0f, 1.0f,
                                                                   std::numeric_limits<float>::quiet_NaN(), -1.0f});
  EXPECT_EQ(special[0], 0.0f);
  EXPECT_EQ(special[1], 0.0f);
  EXPECT_EQ(special[2], 0.0f);
  EXPECT_EQ(special[3], 1.0f);
  EXPECT_EQ(special[4], 1.0f);
  EXPECT_NEAR(special[5], std::exp(1.0f), 4e-7);
  EXPECT_TRUE(std::isnan(special[6]));
  EXPECT_NEAR(special[7], std::exp(-1.0f), 1e-7);
}

// The tile's dropout scales are AttnDropout::keep's draws, at any alignment of the tile's first
// element to the Philox blocks (two elements a block) and any tile size.
TEST(AttentionTile, DropoutKeepTileDrawsWhatKeepDraws) {
  kernels::AttnDims d;
  d.B = 2, d.H = 3, d.T = 37, d.S = 53;
  kernels::AttnDropout dropout;
  dropout.p = 0.3, dropout.seed = 12345, dropout.offset = 77;
  const int64_t tile = 16;
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h)
      for (int64_t t0 = 0; t0 < d.T; t0 += tile)
        for (int64_t s0 = 0; s0 < d.S; s0 += tile) {
          const int64_t rows = std::min(tile, d.T - t0), cols = std::min(tile, d.S - s0);
          std::vector<float> keep(size_t(tile * cols), -1.0f);
          const uint64_t index0 = uint64_t(((b * d.H + h) * d.T + t0) * d.S + s0);
          kernels::dropout_keep_tile(dropout.seed, dropout.offset, dropout.p, 2.0f, index0, uint64_t(d.S), rows, cols,
                                     keep.data(), tile);
          for (int64_t r = 0; r < tile; ++r)
            for (int64_t c = 0; c < cols; ++c) {
              const float want = r < rows && dropout.keep(d, b, h, t0 + r, s0 + c) ? 2.0f : 0.0f;
              ASSERT_EQ(keep[size_t(c * tile + r)], want) << b << " " << h << " " << t0 + r << " " << s0 + c;
            }
        }
}

TEST(AttentionTile, TransposeTileScalesAndZeroPads) {
  const int64_t rows = 5, cols = 3, lds = 7, pad = 8;
  std::vector<float> src = random_floats(size_t(rows * lds), 4);
  std::vector<float> dst(size_t(cols * pad), 42.0f);
  kernels::transpose_tile(src.data(), lds, rows, cols, 0.5f, dst.data(), pad);
  for (int64_t c = 0; c < cols; ++c)
    for (int64_t r = 0; r < pad; ++r)
      EXPECT_EQ(dst[size_t(c * pad + r)], r < rows ? 0.5f * src[size_t(r * lds + c)] : 0.0f) << r << " " << c;
}

// transpose_matrix's 16 x 16 (AVX-512) and 8 x 8 (AVX) register blocks and its scalar edges, at
// every shape up to 40 x 40 with padded strides: every element in its place, nothing written
// past a column's `rows`.
TEST(AttentionTile, TransposeMatrixMatchesPlainLoopsAtEveryShape) {
  for (int64_t rows = 0; rows <= 40; ++rows)
    for (int64_t cols = 0; cols <= 40; ++cols) {
      const int64_t ld = cols + 3, ldo = rows + 5;
      std::vector<float> in = random_floats(size_t(rows * ld), uint32_t(rows * 41 + cols));
      std::vector<float> out(size_t(cols * ldo), 42.0f);
      kernels::transpose_matrix(in.data(), rows, cols, ld, out.data(), ldo);
      for (int64_t c = 0; c < cols; ++c)
        for (int64_t r = 0; r < ldo; ++r)
          ASSERT_EQ(out[size_t(c * ldo + r)], r < rows ? in[size_t(r * ld + c)] : 42.0f)
              << rows << " x " << cols << ": " << r << " " << c;
    }
}

}  // namespace
}  // namespace tg
