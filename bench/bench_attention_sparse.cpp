// sliding_window and sparse (BigBird) attention against dense, forward + backward, at the sizes
// of the attention targets: B = 1, H = 8, D = 64, causal, f32; sliding_window(256) at T = 2K, 4K,
// 8K (time should grow linearly); sparse at block 64, window 3, global 2, random 3 against dense
// at T = 8K. Before timing, each variant is checked against dense with its pattern as attn_mask.
// Run: build/bench_attention_sparse --benchmark_filter=. (dense at 8K takes ~10 s per iteration)
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "ops/attention.h"
#include "tapegrad.h"

namespace {

using tg::AttentionSpec;
using tg::AttentionVariant;
using tg::Tensor;

constexpr int64_t kB = 1, kH = 8, kD = 64;

Tensor input(int64_t T, uint64_t seed) {
  tg::Generator gen(seed);
  return tg::randn({kB, T, kH, kD}, gen);
}

AttentionSpec spec_of(AttentionVariant variant) {
  AttentionSpec spec;
  spec.variant = variant;
  spec.causal = true;
  spec.window = 256;
  spec.sparse = {64, 3, 2, 3, 0};
  return spec;
}

// out and the three gradients of `spec` and of dense with `mask`, at T = 1024; exits on a
// mismatch beyond 1e-5 of the magnitude.
void check_against_dense(AttentionVariant variant, const Tensor& mask) {
  const int64_t T = 1024;
  Tensor dout = input(T, 9);
  auto run = [&](const AttentionSpec& spec) {
    Tensor q = input(T, 1).requires_grad_(), k = input(T, 2).requires_grad_(),
           v = input(T, 3).requires_grad_();
    Tensor out = tg::attention(q, k, v, spec);
    tg::backward(out, dout);
    return std::vector<Tensor>{out.detach(), q.grad(), k.grad(), v.grad()};
  };
  AttentionSpec dense = spec_of(AttentionVariant::dense);
  dense.attn_mask = mask;
  std::vector<Tensor> a = run(spec_of(variant)), b = run(dense);
  for (size_t i = 0; i < a.size(); ++i) {
    std::vector<double> x = a[i].to_vector(), y = b[i].to_vector();
    double diff = 0, mag = 0;
    for (size_t j = 0; j < x.size(); ++j)
      diff = std::max(diff, std::fabs(x[j] - y[j])), mag = std::max(mag, std::fabs(y[j]));
    if (!(diff <= 1e-5 * mag + 1e-7)) {
      std::fprintf(stderr, "%s differs from dense: tensor %zu max diff %g (max %g)\n",
                   tg::attention_variant_name(variant).c_str(), i, diff, mag);
      std::exit(1);
    }
  }
}

void check_once() {
  static bool done = false;
  if (done) return;
  done = true;
  const int64_t T = 1024;
  Tensor band = tg::zeros({T, T}, tg::DType::b8);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = std::max<int64_t>(0, t - 255); s <= t; ++s)
      band.data<bool>()[t * T + s] = true;
  check_against_dense(AttentionVariant::sliding_window, band);
  check_against_dense(AttentionVariant::sparse,
                      tg::sparse_layout_mask(spec_of(AttentionVariant::sparse).sparse, T, T, true));
}

// Arg 0 is T, arg 1 (when given) the thread count.
void set_threads(benchmark::State& state) {
  static const int all = tg::get_num_threads();
  tg::set_num_threads(state.range(1) > 0 ? int(state.range(1)) : all);
}

void run_fwd_bwd(benchmark::State& state, AttentionVariant variant) {
  check_once();
  set_threads(state);
  const int64_t T = state.range(0);
  Tensor q = input(T, 1).requires_grad_(), k = input(T, 2).requires_grad_(),
         v = input(T, 3).requires_grad_();
  Tensor dout = input(T, 4);
  AttentionSpec spec = spec_of(variant);
  for (auto _ : state) {
    Tensor out = tg::attention(q, k, v, spec);
    tg::backward(out, dout);
    q.set_grad(Tensor()), k.set_grad(Tensor()), v.set_grad(Tensor());
  }
}

void run_fwd(benchmark::State& state, AttentionVariant variant) {
  set_threads(state);
  const int64_t T = state.range(0);
  Tensor q = input(T, 1), k = input(T, 2), v = input(T, 3);
  AttentionSpec spec = spec_of(variant);
  for (auto _ : state) benchmark::DoNotOptimize(tg::attention(q, k, v, spec).raw_data());
}

void BM_sliding256_fwdbwd(benchmark::State& s) { run_fwd_bwd(s, AttentionVariant::sliding_window); }
void BM_sparse_fwdbwd(benchmark::State& s) { run_fwd_bwd(s, AttentionVariant::sparse); }
void BM_dense_fwdbwd(benchmark::State& s) { run_fwd_bwd(s, AttentionVariant::dense); }
void BM_sliding256_fwd(benchmark::State& s) { run_fwd(s, AttentionVariant::sliding_window); }
void BM_sparse_fwd(benchmark::State& s) { run_fwd(s, AttentionVariant::sparse); }
void BM_dense_fwd(benchmark::State& s) { run_fwd(s, AttentionVariant::dense); }

// Thread count 0 = all cores.
BENCHMARK(BM_sliding256_fwdbwd)
    ->ArgsProduct({{2048, 4096, 8192}, {0, 1}})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_sparse_fwdbwd)
    ->ArgsProduct({{2048, 4096, 8192}, {0, 1}})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_dense_fwdbwd)
    ->ArgsProduct({{2048, 8192}, {0}})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(2);
BENCHMARK(BM_sliding256_fwd)->ArgsProduct({{2048, 4096, 8192}, {0}})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_sparse_fwd)->ArgsProduct({{8192}, {0}})->Unit(benchmark::kMillisecond);
BENCHMARK(BM_dense_fwd)->ArgsProduct({{8192}, {0}})->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace

BENCHMARK_MAIN();
