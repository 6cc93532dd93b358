// Length-bucketed batches (models/data/length_buckets.h) and the EpochSampler that draws them.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "models/data/classification_data.h"
#include "models/data/length_buckets.h"
#include "models/data/token_data.h"

namespace tg::data {
namespace {

// Lengths spread as ListOps' at LRA's settings: 500..2000.
std::vector<int64_t> listops_like_lengths(int64_t n) {
  std::vector<int64_t> lengths;
  for (int64_t i = 0; i < n; ++i) lengths.push_back(500 + (i * 7919) % 1501);
  return lengths;
}

TEST(LengthBuckets, RearrangesTheSameIndicesIntoBatchesOfSimilarLength) {
  const int64_t n = 3000, batch = 32;
  std::vector<int64_t> lengths = listops_like_lengths(n);
  Generator gen(1);
  std::vector<int64_t> order = randperm(n, gen);
  std::vector<int64_t> bucketed = bucket_by_length(order, lengths, batch, 50, gen);

  std::vector<int64_t> a = order, b = bucketed;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a, b);  // a permutation of the same examples

  double random = padding_share(order, lengths, batch), bucketed_share = padding_share(bucketed, lengths, batch);
  EXPECT_GT(random, 0.3);  // uniform 500..2000 in random batches of 32: about 40%
  EXPECT_LT(bucketed_share, 0.05);
  // The remainder (3000 = 93·32 + 24) is the last batch, of the last pool's indices.
  std::set<int64_t> tail(bucketed.end() - 24, bucketed.end());
  std::vector<int64_t> sorted_tail_pool(order.begin() + 1600, order.end());  // pool 2: 1600..2999
  for (int64_t i : tail) EXPECT_TRUE(std::count(sorted_tail_pool.begin(), sorted_tail_pool.end(), i) == 1);
}

TEST(LengthBuckets, BatchOrderIsDrawnNotSortedAndReproducible) {
  const int64_t n = 640, batch = 32;
  std::vector<int64_t> lengths = listops_like_lengths(n);
  Generator g1(3), g2(3);
  std::vector<int64_t> order = randperm(n, g1);
  (void)randperm(n, g2);
  std::vector<int64_t> x = bucket_by_length(order, lengths, batch, 50, g1);
  std::vector<int64_t> y = bucket_by_length(order, lengths, batch, 50, g2);
  EXPECT_EQ(x, y);
  // One pool (640 < 50·32): sorted by length, but the batches come in a drawn order.
  std::vector<int64_t> first_of_batch;
  for (int64_t b = 0; b < n / batch; ++b) first_of_batch.push_back(lengths[size_t(x[size_t(b * batch)])]);
  EXPECT_FALSE(std::is_sorted(first_of_batch.begin(), first_of_batch.end()));
}

TEST(LengthBuckets, BadArgumentsAreClearErrors) {
  std::vector<int64_t> lengths{5, 6}, order{0, 1, 2};
  Generator gen(0);
  EXPECT_THROW(bucket_by_length(order, lengths, 2, 1, gen), Error);  // index 2 has no length
  EXPECT_THROW(bucket_by_length(order, lengths, 0, 1, gen), Error);
  EpochSampler s(3, 2, /*shuffle=*/true, 0);
  EXPECT_THROW(s.bucket_by_length({1, 2}), Error);  // 2 lengths for 3 examples
  EpochSampler unshuffled(2, 2, /*shuffle=*/false, 0);
  EXPECT_THROW(unshuffled.bucket_by_length({1, 2}), Error);
}

TEST(LengthBuckets, SamplerEpochsDifferAndResumeExactly) {
  const int64_t n = 200, batch = 16;
  EpochSampler s(n, batch, /*shuffle=*/true, 7);
  s.bucket_by_length(listops_like_lengths(n));
  std::vector<std::vector<int64_t>> batches;
  for (int i = 0; i < 30; ++i) batches.push_back(s.next());  // 13 batches per epoch: crosses two epochs
  EXPECT_LT(padding_share(s.epoch_order(), listops_like_lengths(n), batch), 0.1);

  EpochSampler resumed(n, batch, /*shuffle=*/true, 7);
  resumed.bucket_by_length(listops_like_lengths(n));
  EpochSampler probe(n, batch, /*shuffle=*/true, 7);
  probe.bucket_by_length(listops_like_lengths(n));
  for (int i = 0; i < 17; ++i) probe.next();
  resumed.set_state(probe.epoch(), probe.position());
  for (int i = 17; i < 30; ++i) EXPECT_EQ(resumed.next(), batches[size_t(i)]) << "batch " << i;
  EXPECT_NE(std::vector<int64_t>(batches[0]), batches[13]);  // epoch 1 is another draw
}

}  // namespace
}  // namespace tg::data
