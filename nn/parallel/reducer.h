#pragma once
// Reducer: averages the gradients of a set of parameters over all ranks while backward() runs,
// as PyTorch's DDP Reducer. Parameters go into buckets of about bucket_cap_bytes in reverse
// order (backward produces the last layers' gradients first); a post-accumulate-grad hook per
// parameter counts the bucket's ready gradients, and a full bucket starts its all-reduce
// (MPI_Iallreduce) at once, so communication overlaps the rest of backward. Buckets start in
// index order on every rank (collectives must match). When backward ends, a queued callback
// starts what is left (a parameter backward did not reach counts as a zero gradient), waits for
// every bucket (bounded: tg::Error naming the bucket and rank), and writes each parameter's
// gradient back as the mean over ranks.
#include <cstdint>
#include <vector>

#include "autograd/grad_hooks.h"
#include "autograd/tensor.h"
#include "nn/parallel/process_group.h"

namespace tg::nn::parallel {

struct ReducerStats {
  int64_t num_buckets = 0;
  int64_t bytes_per_step = 0;       ///< gradient bytes all-reduced per backward
  int64_t backward_passes = 0;
  double last_wait_seconds = 0;     ///< time the last backward spent blocked on all-reduces at its end
  double total_wait_seconds = 0;
  int64_t buckets_started_in_backward = 0;  ///< over all passes: buckets launched before backward ended
};

class Reducer {
 public:
  /// `params`: leaves requiring grad (duplicates, e.g. tied weights, count once).
  Reducer(const std::vector<Tensor>& params, int64_t bucket_cap_bytes, double timeout_s);
  ~Reducer();
  Reducer(const Reducer&) = delete;
  Reducer& operator=(const Reducer&) = delete;

  /// Makes every rank's parameter values rank `src`'s (bucket by bucket, bounded waits).
  void broadcast_parameters(int src = 0);
  const ReducerStats& stats() const { return stats_; }
  /// Parameter indices (into the deduplicated `params`) of each bucket, for tests and benches.
  std::vector<std::vector<size_t>> bucket_indices() const;

 private:
  struct Bucket {
    std::vector<size_t> params;    // indices into params_, in the order they fill `flat`
    std::vector<int64_t> offsets;  // element offset of each in `flat`
    Tensor flat;                   // [numel] the bucket's gradients, reduced in place
    size_t ready = 0;
    bool launched = false;
    distributed::Work work;
  };
  void on_grad_ready(size_t param);
  void launch_ready_buckets();
  void launch(Bucket& b);
  void poll();
  void finalize();  // end of backward
  std::string describe(size_t bucket) const;

  std::vector<Tensor> params_;
  std::vector<size_t> bucket_of_;  // param index -> bucket index
  std::vector<Bucket> buckets_;
  std::vector<RemovableHandle> hooks_;
  std::vector<bool> ready_;
  size_t next_bucket_ = 0;  // the first bucket not launched yet in this backward
  bool in_backward_ = false;
  double timeout_s_;
  ReducerStats stats_;
};

}  // namespace tg::nn::parallel
