#include "models/data/classification_data.h"

#include <algorithm>

#include "autograd/error.h"
#include "models/data/length_buckets.h"
#include "models/data/token_data.h"

namespace tg::data {

ClassificationDataset::ClassificationDataset(std::vector<ClassificationExample> examples, int64_t pad_id)
    : examples_(std::move(examples)), pad_id_(pad_id) {
  for (size_t i = 0; i < examples_.size(); ++i) {
    TG_CHECK(!examples_[i].ids.empty(), "ClassificationDataset: example {} has no tokens", i);
    TG_CHECK(examples_[i].label >= 0, "ClassificationDataset: example {} has a negative label {}", i,
             examples_[i].label);
  }
}

const ClassificationExample& ClassificationDataset::operator[](int64_t i) const {
  TG_CHECK(i >= 0 && i < size(), "ClassificationDataset: index {} is outside [0, {})", i, size());
  return examples_[static_cast<size_t>(i)];
}

int64_t ClassificationDataset::max_length() const {
  int64_t m = 0;
  for (const auto& e : examples_) m = std::max(m, static_cast<int64_t>(e.ids.size()));
  return m;
}

int64_t ClassificationDataset::num_classes() const {
  int64_t m = -1;
  for (const auto& e : examples_) m = std::max(m, e.label);
  return m + 1;
}

std::vector<int64_t> ClassificationDataset::label_counts(int64_t n_classes) const {
  std::vector<int64_t> counts(static_cast<size_t>(std::max<int64_t>(n_classes, 0)), 0);
  for (size_t i = 0; i < examples_.size(); ++i) {
    int64_t label = examples_[i].label;
    TG_CHECK(label < n_classes, "ClassificationDataset: example {} has label {}, not below n_classes={}", i,
             label, n_classes);
    ++counts[static_cast<size_t>(label)];
  }
  return counts;
}

double ClassificationDataset::majority_accuracy() const {
  if (examples_.empty()) return 0.0;
  std::vector<int64_t> counts = label_counts(num_classes());
  return double(*std::max_element(counts.begin(), counts.end())) / double(size());
}

int64_t ClassificationDataset::truncate(int64_t max_len) {
  TG_CHECK(max_len >= 1, "ClassificationDataset: truncate needs max_len >= 1, got {}", max_len);
  int64_t cut = 0;
  for (auto& e : examples_) {
    if (static_cast<int64_t>(e.ids.size()) > max_len) {
      e.ids.resize(static_cast<size_t>(max_len));
      ++cut;
    }
  }
  return cut;
}

ClassificationBatch ClassificationDataset::batch(std::span<const int64_t> indices) const {
  TG_CHECK(!indices.empty(), "ClassificationDataset: a batch needs at least one index");
  int64_t B = static_cast<int64_t>(indices.size()), T = 0;
  ClassificationBatch out;
  for (int64_t i : indices) {
    out.lengths.push_back(static_cast<int64_t>((*this)[i].ids.size()));
    T = std::max(T, out.lengths.back());
  }
  out.ids = full({B, T}, static_cast<double>(pad_id_), DType::i64);
  out.labels = empty({B}, DType::i64);
  int64_t* ids = out.ids.data<int64_t>();
  int64_t* labels = out.labels.data<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    const ClassificationExample& e = examples_[static_cast<size_t>(indices[size_t(b)])];
    std::copy(e.ids.begin(), e.ids.end(), ids + b * T);
    labels[b] = e.label;
  }
  return out;
}

EpochSampler::EpochSampler(int64_t dataset_size, int64_t batch_size, bool shuffle, uint64_t seed, bool drop_last)
    : n_(dataset_size), batch_size_(batch_size), shuffle_(shuffle), drop_last_(drop_last), seed_(seed) {
  TG_CHECK(dataset_size >= 1, "EpochSampler: the dataset is empty");
  TG_CHECK(batch_size >= 1, "EpochSampler: batch_size must be positive, got {}", batch_size);
  start_epoch();
}

int64_t EpochSampler::batches_per_epoch() const {
  if (drop_last_ && n_ >= batch_size_) return n_ / batch_size_;
  return (n_ + batch_size_ - 1) / batch_size_;
}

void EpochSampler::start_epoch() {
  if (shuffle_) {
    Generator gen(seed_);
    // Bucketing draws up to n more blocks per epoch (the batches' order): epochs 2n apart.
    const uint64_t per_epoch = static_cast<uint64_t>(n_) * (lengths_.empty() ? 1 : 2);
    gen.set_offset(static_cast<uint64_t>(epoch_) * per_epoch);
    order_ = randperm(n_, gen);
    if (!lengths_.empty()) order_ = data::bucket_by_length(order_, lengths_, batch_size_, pool_batches_, gen);
  } else if (static_cast<int64_t>(order_.size()) != n_) {
    order_.resize(static_cast<size_t>(n_));
    for (int64_t i = 0; i < n_; ++i) order_[size_t(i)] = i;
  }
}

std::vector<int64_t> EpochSampler::next() {
  int64_t end = batches_per_epoch() * batch_size_;  // drop_last stops before a short batch
  if (position_ >= std::min(end, n_)) {
    ++epoch_;
    position_ = 0;
    start_epoch();
  }
  int64_t stop = std::min(position_ + batch_size_, n_);
  std::vector<int64_t> out(order_.begin() + position_, order_.begin() + stop);
  position_ = stop;
  return out;
}

void EpochSampler::set_state(int64_t epoch, int64_t position) {
  TG_CHECK(epoch >= 0 && position >= 0 && position <= n_,
           "EpochSampler: state (epoch {}, position {}) is outside a dataset of {}", epoch, position, n_);
  epoch_ = epoch;
  position_ = position;
  start_epoch();
}

void EpochSampler::bucket_by_length(std::vector<int64_t> lengths, int64_t pool_batches) {
  TG_CHECK(static_cast<int64_t>(lengths.size()) == n_, "EpochSampler: {} lengths for a dataset of {}", lengths.size(),
           n_);
  TG_CHECK(shuffle_, "EpochSampler: bucketing by length needs a shuffled sampler");
  TG_CHECK(pool_batches >= 1, "EpochSampler: pool_batches must be positive, got {}", pool_batches);
  lengths_ = std::move(lengths);
  pool_batches_ = pool_batches;
  start_epoch();
}

std::vector<std::vector<int64_t>> sequential_batches(int64_t n, int64_t batch_size) {
  TG_CHECK(batch_size >= 1, "sequential_batches: batch_size must be positive, got {}", batch_size);
  std::vector<std::vector<int64_t>> out;
  for (int64_t start = 0; start < n; start += batch_size) {
    std::vector<int64_t> b;
    for (int64_t i = start; i < std::min(n, start + batch_size); ++i) b.push_back(i);
    out.push_back(std::move(b));
  }
  return out;
}

std::vector<std::vector<int64_t>> shuffled_batches(int64_t n, int64_t batch_size, Generator& gen, bool drop_last) {
  TG_CHECK(batch_size >= 1, "shuffled_batches: batch_size must be positive, got {}", batch_size);
  std::vector<int64_t> order = randperm(n, gen);
  std::vector<std::vector<int64_t>> out;
  for (int64_t start = 0; start < n; start += batch_size) {
    int64_t stop = std::min(n, start + batch_size);
    if (drop_last && stop - start < batch_size && start > 0) break;
    out.emplace_back(order.begin() + start, order.begin() + stop);
  }
  return out;
}

}  // namespace tg::data
