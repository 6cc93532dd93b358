#include "nn/parallel/reducer.h"

#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <unordered_set>

#include "autograd/error.h"

namespace tg::nn::parallel {
namespace {

template <class T>
void scale_into(T* dst, const T* src, int64_t n, double factor) {
  const T f = static_cast<T>(factor);
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * f;
}

}  // namespace

Reducer::Reducer(const std::vector<Tensor>& params, int64_t bucket_cap_bytes, double timeout_s)
    : timeout_s_(timeout_s) {
  TG_CHECK(bucket_cap_bytes > 0, "DistributedDataParallel: bucket_cap_mb must be positive");
  TG_CHECK(timeout_s > 0, "DistributedDataParallel: the timeout must be positive, got {} s", timeout_s);
  std::unordered_set<const detail::TensorImpl*> seen;
  for (const Tensor& p : params) {
    TG_CHECK(p.defined() && p.is_leaf(), "DistributedDataParallel: parameters must be leaf tensors");
    if (!p.requires_grad() || !seen.insert(p.impl()).second) continue;
    TG_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64,
             "DistributedDataParallel: a parameter of shape {} is {}; gradients are all-reduced in f32 or f64",
             shape_str(p.shape()), p.dtype());
    params_.push_back(p);
  }
  // Reverse order: the gradients backward produces first fill the first bucket.
  bucket_of_.resize(params_.size());
  std::vector<int64_t> numels;  // per bucket
  std::vector<DType> dtypes;
  int64_t bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k];
    bool fits = !buckets_.empty() && dtypes.back() == p.dtype() && bytes + int64_t(p.nbytes()) <= bucket_cap_bytes;
    if (!fits) {
      buckets_.emplace_back();
      numels.push_back(0), dtypes.push_back(p.dtype());
      bytes = 0;
    }
    Bucket& b = buckets_.back();
    b.params.push_back(k);
    b.offsets.push_back(numels.back());
    numels.back() += p.numel();
    bucket_of_[k] = buckets_.size() - 1;
    bytes += int64_t(p.nbytes());
    stats_.bytes_per_step += int64_t(p.nbytes());
  }
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i].flat = empty({numels[i]}, dtypes[i]);
  stats_.num_buckets = int64_t(buckets_.size());
  ready_.assign(params_.size(), false);
  for (size_t k = 0; k < params_.size(); ++k)
    hooks_.push_back(register_post_accumulate_grad_hook(params_[k], [this, k](const Tensor&) { on_grad_ready(k); }));
}

Reducer::~Reducer() {
  for (RemovableHandle& h : hooks_) h.remove();
}

std::vector<std::vector<size_t>> Reducer::bucket_indices() const {
  std::vector<std::vector<size_t>> out;
  for (const Bucket& b : buckets_) out.push_back(b.params);
  return out;
}

std::string Reducer::describe(size_t i) const {
  const Bucket& b = buckets_[i];
  const double bytes = double(b.flat.nbytes());
  return fmt::format("the all-reduce of gradient bucket {} of {} ({} parameters, {})", i, buckets_.size(),
                     b.params.size(), bytes >= 1e6 ? fmt::format("{:.1f} MB", bytes / 1e6) : fmt::format("{:.1f} KB", bytes / 1e3));
}

void Reducer::broadcast_parameters(int src) {
  for (size_t i = 0; i < buckets_.size(); ++i) {
    Bucket& b = buckets_[i];
    auto* flat = static_cast<char*>(b.flat.raw_data());
    const size_t elem = element_size(b.flat.dtype());
    for (size_t j = 0; j < b.params.size(); ++j)
      std::memcpy(flat + b.offsets[j] * elem, params_[b.params[j]].raw_data(), params_[b.params[j]].nbytes());
    distributed::broadcast_async(b.flat, src)
        .wait(timeout_s_, fmt::format("the broadcast of parameter bucket {} of {}", i, buckets_.size()));
    for (size_t j = 0; j < b.params.size(); ++j)
      std::memcpy(params_[b.params[j]].raw_data(), flat + b.offsets[j] * elem, params_[b.params[j]].nbytes());
  }
}

void Reducer::on_grad_ready(size_t k) {
  if (!in_backward_) {  // the first gradient of a backward: reset, and have backward's end call finalize
    in_backward_ = true;
    std::fill(ready_.begin(), ready_.end(), false);
    for (Bucket& b : buckets_) b.ready = 0, b.launched = false;
    next_bucket_ = 0;
    queue_callback([this] { finalize(); });
  }
  if (ready_[k]) return;
  ready_[k] = true;
  ++buckets_[bucket_of_[k]].ready;
  launch_ready_buckets();
  poll();
}

void Reducer::launch_ready_buckets() {
  while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].ready == buckets_[next_bucket_].params.size()) {
    launch(buckets_[next_bucket_++]);
    ++stats_.buckets_started_in_backward;
  }
}

void Reducer::launch(Bucket& b) {
  auto* flat = static_cast<char*>(b.flat.raw_data());
  const size_t elem = element_size(b.flat.dtype());
  for (size_t j = 0; j < b.params.size(); ++j) {
    const Tensor& p = params_[b.params[j]];
    Tensor g = p.grad();
    if (g.defined())
      std::memcpy(flat + b.offsets[j] * elem, g.raw_data(), g.nbytes());
    else  // backward did not reach it on this rank: it contributes zeros
      std::memset(flat + b.offsets[j] * elem, 0, p.nbytes());
  }
  b.work = distributed::all_reduce_async(b.flat, distributed::ReduceOp::SUM);
  b.launched = true;
}

void Reducer::poll() {
  // MPI progresses non-blocking collectives only inside MPI calls: test the ones in flight.
  for (size_t i = 0; i < next_bucket_; ++i) buckets_[i].work.is_completed();
}

void Reducer::finalize() {
  in_backward_ = false;
  while (next_bucket_ < buckets_.size()) launch(buckets_[next_bucket_++]);
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i].work.wait(timeout_s_, describe(i));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  stats_.last_wait_seconds = waited;
  stats_.total_wait_seconds += waited;
  ++stats_.backward_passes;
  const double inv_world = 1.0 / double(distributed::get_world_size());
  for (Bucket& b : buckets_) {
    const size_t elem = element_size(b.flat.dtype());
    const auto* flat = static_cast<const char*>(b.flat.raw_data());
    for (size_t j = 0; j < b.params.size(); ++j) {
      Tensor& p = params_[b.params[j]];
      Tensor g = p.grad();
      if (!g.defined()) {
        g = empty(p.shape(), p.dtype());
        p.set_grad(g);
      }
      const void* src = flat + b.offsets[j] * elem;
      if (g.dtype() == DType::f32)
        scale_into(g.data<float>(), static_cast<const float*>(src), g.numel(), inv_world);
      else
        scale_into(g.data<double>(), static_cast<const double*>(src), g.numel(), inv_world);
    }
  }
}

}  // namespace tg::nn::parallel
