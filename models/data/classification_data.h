#pragma once
// A dataset of token sequences with a class label each (ListOps, text classification), its
// padded batches, and the order batches are drawn in: shuffled epochs that a seed reproduces and
// that a resumed run can continue from (epoch, position).
#include <cstdint>
#include <span>
#include <vector>

#include "autograd/tensor.h"

namespace tg::data {

struct ClassificationExample {
  std::vector<int64_t> ids;  ///< token ids, length >= 1
  int64_t label = 0;         ///< class id >= 0
};

/// A batch padded to its longest sequence.
struct ClassificationBatch {
  Tensor ids;                    ///< [B, T] i64, T = max(lengths); positions >= length hold pad_id
  Tensor labels;                 ///< [B] i64
  std::vector<int64_t> lengths;  ///< B real lengths: attention's key_lengths, pooling's counts
};

class ClassificationDataset {
 public:
  ClassificationDataset() = default;
  /// tg::Error for an empty sequence or a negative label (naming the example).
  ClassificationDataset(std::vector<ClassificationExample> examples, int64_t pad_id);

  int64_t size() const { return static_cast<int64_t>(examples_.size()); }
  const ClassificationExample& operator[](int64_t i) const;
  int64_t pad_id() const { return pad_id_; }
  /// The longest sequence, in tokens.
  int64_t max_length() const;
  /// Largest label + 1.
  int64_t num_classes() const;
  /// Examples per label, for labels 0..n_classes-1 (tg::Error when a label is >= n_classes).
  std::vector<int64_t> label_counts(int64_t n_classes) const;
  /// The accuracy of always answering the most frequent label (the majority-class baseline).
  double majority_accuracy() const;
  /// Cuts sequences longer than max_len to their first max_len tokens, as LRA's input pipeline
  /// does; returns how many were cut.
  int64_t truncate(int64_t max_len);

  /// The examples at `indices`, padded with pad_id to the longest of them.
  ClassificationBatch batch(std::span<const int64_t> indices) const;

 private:
  std::vector<ClassificationExample> examples_;
  int64_t pad_id_ = 0;
};

/// The order of training batches: epoch e visits the examples in the permutation drawn from
/// Generator(seed) at offset e·N (randperm), or in file order without shuffling. A new epoch
/// starts when one is used up; (epoch, position) is the whole state, so a run can resume.
class EpochSampler {
 public:
  /// drop_last: skip an epoch's last batch when smaller than batch_size (never when that would
  /// leave an epoch empty).
  EpochSampler(int64_t dataset_size, int64_t batch_size, bool shuffle, uint64_t seed, bool drop_last = false);

  /// Indices of the next batch (at most batch_size, all from one epoch).
  std::vector<int64_t> next();
  int64_t epoch() const { return epoch_; }
  int64_t position() const { return position_; }  ///< examples of this epoch already drawn
  int64_t batches_per_epoch() const;
  /// Continues from a saved (epoch, position).
  void set_state(int64_t epoch, int64_t position);
  /// From the current epoch on, batches of similar lengths (length_buckets.h): each epoch's
  /// shuffled order is rearranged by bucket_by_length over pools of pool_batches batches.
  /// lengths[i] is example i's length (dataset_size of them).
  void bucket_by_length(std::vector<int64_t> lengths, int64_t pool_batches = 50);
  /// The current epoch's order (what next() hands out, batch_size at a time).
  const std::vector<int64_t>& epoch_order() const { return order_; }

 private:
  void start_epoch();
  int64_t n_, batch_size_;
  bool shuffle_, drop_last_;
  uint64_t seed_;
  int64_t epoch_ = 0, position_ = 0;
  std::vector<int64_t> order_;
  std::vector<int64_t> lengths_;  ///< empty: no bucketing
  int64_t pool_batches_ = 0;
};

/// Index batches covering 0..n-1 in order (for evaluation), the last one possibly smaller.
std::vector<std::vector<int64_t>> sequential_batches(int64_t n, int64_t batch_size);
/// One epoch's index batches in the order of randperm(n, gen) (n Philox blocks drawn from gen).
std::vector<std::vector<int64_t>> shuffled_batches(int64_t n, int64_t batch_size, Generator& gen,
                                                   bool drop_last = false);

}  // namespace tg::data
