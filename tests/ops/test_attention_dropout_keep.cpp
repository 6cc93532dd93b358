// dropout_keep_draws / dropout_keep_run (ops/kernels/attention_dropout_keep.h), the attention
// kernels' fast draws, against AttnDropout::keep one weight at a time: every run start (even and
// odd flat index), lengths across the eight-block batches and their remainders, p at 0, 1 and
// between, seeds and offsets that carry into the counter's high word.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "ops/kernels/attention_dropout_keep.h"

namespace tg {
namespace {

using kernels::AttnDims;
using kernels::AttnDropout;

TEST(AttentionDropoutKeep, RunsMatchKeepWeightByWeight) {
  AttnDims d;
  d.B = 2, d.H = 3, d.T = 5, d.S = 41, d.D = 4, d.Dv = 4;
  for (AttnDropout dropout : {AttnDropout{0.1, 1337, 0}, AttnDropout{0.5, 7, 12345},
                              AttnDropout{0.9, 0xDEADBEEFCAFEull, (uint64_t(1) << 32) - 3}}) {
    int64_t kept = 0, drawn = 0;
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t h = 0; h < d.H; ++h)
        for (int64_t t = 0; t < d.T; ++t)
          for (int64_t s0 = 0; s0 < d.S; ++s0)
            for (int64_t n = 0; s0 + n <= d.S; n += 1 + n / 4) {
              std::vector<uint8_t> keep(size_t(n) + 1, 2);  // 2: not written
              kernels::dropout_keep_run(d, dropout, b, h, t, s0, n, keep.data());
              for (int64_t c = 0; c < n; ++c) {
                ASSERT_EQ(keep[size_t(c)], dropout.keep(d, b, h, t, s0 + c) ? 1 : 0)
                    << "p " << dropout.p << " b " << b << " h " << h << " t " << t << " s " << s0 + c;
                kept += keep[size_t(c)];
                ++drawn;
              }
              ASSERT_EQ(keep[size_t(n)], 2) << "wrote past the run of " << n;
            }
    EXPECT_NEAR(double(kept) / double(drawn), 1.0 - dropout.p, 0.02);
  }
}

TEST(AttentionDropoutKeep, ProbabilitiesZeroAndOne) {
  std::vector<uint8_t> keep(100);
  kernels::dropout_keep_draws(AttnDropout{0.0, 3, 0}, 11, 100, keep.data());
  for (uint8_t k : keep) EXPECT_EQ(k, 1);
  kernels::dropout_keep_draws(AttnDropout{1.0, 3, 0}, 11, 100, keep.data());
  for (uint8_t k : keep) EXPECT_EQ(k, 0);
}

}  // namespace
}  // namespace tg
