// The all-reduce of data-parallel training on its own: under mpirun, the time to average one
// step's gradients of a GPT over the ranks, in DistributedDataParallel's buckets (25 MB by
// default), without any compute to overlap with. Configs: nanoGPT's baby GPT (L4 H4 C128 T64)
// and shakespeare_char (L6 H6 C384 T256), vocabulary 65 (tiny Shakespeare's characters).
//   mpirun -np 2 build/bench_allreduce [reps=50] [bucket_cap_mb=25]
// Prints, on rank 0, the gradient bytes per step, buckets, and the median and minimum time.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "autograd/autograd.h"
#include "models/gpt/gpt.h"
#include "nn/parallel/process_group.h"

namespace {

using namespace tg;

struct Config {
  const char* name;
  int64_t n_layer, n_head, n_embd, block_size;
};

int64_t gradient_elements(const Config& c) {
  models::GPTConfig g;
  g.vocab_size = 65, g.n_positions = c.block_size, g.n_layer = c.n_layer, g.n_head = c.n_head, g.n_embd = c.n_embd;
  Generator init(1);
  models::GPT model(g, init);
  return model.num_parameters();
}

}  // namespace

int main(int argc, char** argv) {
  const int reps = argc > 1 ? std::stoi(argv[1]) : 50;
  const double cap_mb = argc > 2 ? std::stod(argv[2]) : 25.0;
  try {
    distributed::init_process_group();
    const int rank = distributed::get_rank(), world = distributed::get_world_size();
    set_num_threads(1);
    if (rank == 0)
      fmt::print("| config | gradient MB per step | buckets ({} MB cap) | all-reduce median ms | min ms | ranks |\n"
                 "|---|---:|---:|---:|---:|---:|\n",
                 cap_mb);
    for (const Config& c : {Config{"baby GPT (L4 H4 C128 T64)", 4, 4, 128, 64},
                            Config{"shakespeare_char (L6 H6 C384 T256)", 6, 6, 384, 256}}) {
      const int64_t n = gradient_elements(c);
      const int64_t cap = std::max<int64_t>(1, int64_t(cap_mb * 1024 * 1024 / 4));
      std::vector<Tensor> buckets;
      for (int64_t at = 0; at < n; at += cap) buckets.push_back(full({std::min(cap, n - at)}, 1.0));
      std::vector<double> ms;
      for (int r = 0; r < reps + 3; ++r) {
        distributed::barrier();  // start together: time the collective, not the skew
        auto t0 = std::chrono::steady_clock::now();
        std::vector<distributed::Work> work;
        for (Tensor& b : buckets) work.push_back(distributed::all_reduce_async(b));
        for (size_t i = 0; i < work.size(); ++i) work[i].wait(distributed::kDefaultTimeoutSeconds, "bench all-reduce");
        double t = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        if (r >= 3) ms.push_back(t);  // the first few set up connections
      }
      std::sort(ms.begin(), ms.end());
      if (rank == 0)
        fmt::print("| {} | {:.2f} | {} | {:.3f} | {:.3f} | {} |\n", c.name, double(n) * 4 / 1e6, buckets.size(),
                   ms[ms.size() / 2], ms.front(), world);
    }
    distributed::destroy_process_group();
  } catch (const tg::Error& e) {
    fmt::print(stderr, "bench_allreduce: {}\n", e.what());
    return 1;
  }
  return 0;
}
