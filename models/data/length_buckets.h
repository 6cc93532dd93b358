#pragma once
// Length-bucketed batches (EncoderTrainOptions::bucket_by_length): an epoch's shuffled order
// rearranged so that each batch holds examples of similar length, which cuts the padding of
// batches padded to their longest example (ListOps at LRA's lengths, 500-2000 tokens: about 40%
// of the tokens are padding with random batches). As torchtext's BucketIterator and fairseq's
// batching do: the shuffled order is cut into pools of `pool_batches` batches, each pool sorted by
// length and cut into batches, and the batches of the whole epoch shuffled, so that every batch
// is still a random draw of similar lengths and the long ones do not all come last.
#include <cstdint>
#include <span>
#include <vector>

#include "autograd/random.h"

namespace tg::data {

/// order: an epoch's indices (a permutation of some examples); lengths[i]: example i's length.
/// -> the same indices, rearranged: every run of batch_size consecutive indices (the last one
/// possibly shorter, and it stays last) is one batch of similar lengths. The batches' order is
/// drawn from gen. Deterministic for the same order, lengths and generator state.
std::vector<int64_t> bucket_by_length(std::span<const int64_t> order, std::span<const int64_t> lengths,
                                      int64_t batch_size, int64_t pool_batches, Generator& gen);

/// Share of padding in batches of the given index runs: sum over batches of (size · longest −
/// total length) over sum of size · longest.
double padding_share(std::span<const int64_t> order, std::span<const int64_t> lengths, int64_t batch_size);

}  // namespace tg::data
