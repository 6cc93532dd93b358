#include "models/data/length_buckets.h"

#include <algorithm>

#include "autograd/error.h"
#include "models/data/token_data.h"

namespace tg::data {

std::vector<int64_t> bucket_by_length(std::span<const int64_t> order, std::span<const int64_t> lengths,
                                      int64_t batch_size, int64_t pool_batches, Generator& gen) {
  TG_CHECK(batch_size >= 1 && pool_batches >= 1,
           "bucket_by_length: batch_size ({}) and pool_batches ({}) must be positive", batch_size, pool_batches);
  const int64_t n = static_cast<int64_t>(order.size());
  for (int64_t i : order)
    TG_CHECK(i >= 0 && i < static_cast<int64_t>(lengths.size()), "bucket_by_length: index {} is outside the {} lengths",
             i, lengths.size());
  auto length_of = [&](int64_t i) { return lengths[size_t(i)]; };
  // Pools of the shuffled order, each sorted by length (stable: ties keep the shuffled order).
  std::vector<int64_t> sorted(order.begin(), order.end());
  const int64_t pool = batch_size * pool_batches;
  for (int64_t start = 0; start < n; start += pool) {
    auto first = sorted.begin() + start, last = sorted.begin() + std::min(n, start + pool);
    std::stable_sort(first, last, [&](int64_t a, int64_t b) { return length_of(a) < length_of(b); });
  }
  // The full batches in a drawn order; a short remainder stays last, as an unbucketed epoch's.
  const int64_t full = n / batch_size;
  std::vector<int64_t> batch_order = randperm(full, gen);
  std::vector<int64_t> out;
  out.reserve(size_t(n));
  for (int64_t b : batch_order)
    out.insert(out.end(), sorted.begin() + b * batch_size, sorted.begin() + (b + 1) * batch_size);
  out.insert(out.end(), sorted.begin() + full * batch_size, sorted.end());
  return out;
}

double padding_share(std::span<const int64_t> order, std::span<const int64_t> lengths, int64_t batch_size) {
  TG_CHECK(batch_size >= 1, "padding_share: batch_size must be positive, got {}", batch_size);
  double padded = 0, real = 0;
  for (size_t start = 0; start < order.size(); start += size_t(batch_size)) {
    size_t stop = std::min(order.size(), start + size_t(batch_size));
    int64_t longest = 0;
    for (size_t i = start; i < stop; ++i) {
      longest = std::max(longest, lengths[size_t(order[i])]);
      real += double(lengths[size_t(order[i])]);
    }
    padded += double(longest) * double(stop - start);
  }
  return padded > 0 ? (padded - real) / padded : 0.0;
}

}  // namespace tg::data
