#include "nn/parallel/distributed_data_parallel.h"

#include "autograd/error.h"

namespace tg::nn::parallel {

DistributedDataParallel::DistributedDataParallel(Module& module, const DistributedDataParallelOptions& o)
    : module_(module) {
  TG_CHECK(distributed::is_initialized(),
           "DistributedDataParallel: no process group; call tg::distributed::init_process_group() first (under "
           "mpirun)");
  TG_CHECK(o.bucket_cap_mb > 0, "DistributedDataParallel: bucket_cap_mb must be positive, got {}", o.bucket_cap_mb);
  reducer_ = std::make_unique<Reducer>(module.parameters(), int64_t(o.bucket_cap_mb * 1024 * 1024), o.timeout_s);
  if (o.broadcast_parameters) reducer_->broadcast_parameters(0);
}

}  // namespace tg::nn::parallel
