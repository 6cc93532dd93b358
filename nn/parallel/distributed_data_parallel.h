#pragma once
// DistributedDataParallel: data-parallel training over the ranks of the process group, as
// torch.nn.parallel.DistributedDataParallel. Every rank holds the whole model and trains on its
// own batches; wrapping makes every rank start from rank 0's parameters and makes each
// backward() leave in every parameter's grad() the mean of all ranks' gradients (all-reduced in
// buckets while backward still runs, see reducer.h), so identical optimizer steps keep the
// parameters identical. Call the wrapped module's forward as usual; keep the wrapper alive for
// as long as it should synchronise (its destructor removes the hooks).
#include <memory>

#include "nn/module.h"
#include "nn/parallel/process_group.h"
#include "nn/parallel/reducer.h"

namespace tg::nn::parallel {

struct DistributedDataParallelOptions {
  double bucket_cap_mb = 25.0;  ///< bucket size (MB of gradients), DDP's default
  double timeout_s = distributed::kDefaultTimeoutSeconds;  ///< bound on every wait for other ranks
  bool broadcast_parameters = true;  ///< start from rank 0's parameters
};

class DistributedDataParallel {
 public:
  /// tg::Error when no process group is initialised (distributed::init_process_group()).
  explicit DistributedDataParallel(Module& module, const DistributedDataParallelOptions& options = {});

  Module& module() { return module_; }
  const Reducer& reducer() const { return *reducer_; }

 private:
  Module& module_;
  std::unique_ptr<Reducer> reducer_;
};

}  // namespace tg::nn::parallel
