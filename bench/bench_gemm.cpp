// GEMM: tapegrad's matmul against a direct cblas_sgemm call on the same buffers, square sizes,
// 1 and 2 threads. Target: matmul within 5% of cblas_sgemm (the op adds only its bookkeeping).
// Results are checked before timing. Run: build/bench_gemm --benchmark_repetitions=5
//
// BM_train_linear_gemms: every product the linear layers of one training step of bench/compare's
// GPT and encoder workloads run, at their shapes, as a rate: what the GEMMs alone reach on this
// machine, the ceiling of a train step's model FLOPs per second (bench/README.md, "What issue 5's
// training targets need").
#include <benchmark/benchmark.h>

#include "bench/bench_main.h"
#include <cblas.h>

#include <cmath>
#include <stdexcept>

#include "bench/train_linear_gemms.h"
#include "tapegrad.h"

namespace {

using tg::Tensor;

Tensor random_matrix(int64_t n, uint64_t seed) {
  tg::Generator gen(seed);
  return tg::randn({n, n}, gen);
}

// matmul and a direct sgemm must agree before either is timed.
void check_same(const Tensor& a, const Tensor& b) {
  int64_t n = a.size(0);
  Tensor c = tg::matmul(a, b);
  Tensor ref = tg::empty({n, n});
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(n), int(n), int(n), 1.0f,
              a.data<float>(), int(n), b.data<float>(), int(n), 0.0f, ref.data<float>(), int(n));
  const float* x = c.data<float>();
  const float* y = ref.data<float>();
  for (int64_t i = 0; i < n * n; ++i)
    if (std::fabs(x[i] - y[i]) > 1e-3f * (1.0f + std::fabs(y[i])))
      throw std::runtime_error("bench_gemm: matmul disagrees with cblas_sgemm");
}

void set_flops(benchmark::State& state, int64_t n) {
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}

void BM_matmul(benchmark::State& state) {
  int64_t n = state.range(0);
  tg::set_num_threads(int(state.range(1)));
  Tensor a = random_matrix(n, 1), b = random_matrix(n, 2);
  check_same(a, b);
  tg::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(tg::matmul(a, b).raw_data());
  set_flops(state, n);
}

void BM_cblas_sgemm(benchmark::State& state) {
  int64_t n = state.range(0);
  tg::set_num_threads(int(state.range(1)));
  Tensor a = random_matrix(n, 1), b = random_matrix(n, 2);
  for (auto _ : state) {
    // Allocates its output as matmul does, so both pay the same for memory.
    Tensor c = tg::empty({n, n});
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(n), int(n), int(n), 1.0f,
                a.data<float>(), int(n), b.data<float>(), int(n), 0.0f, c.data<float>(), int(n));
    benchmark::DoNotOptimize(c.raw_data());
  }
  set_flops(state, n);
}

void sizes(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2})
    for (int n : {256, 512, 1024}) b->Args({n, threads});
  b->ArgNames({"n", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK(BM_matmul)->Apply(sizes);
BENCHMARK(BM_cblas_sgemm)->Apply(sizes);

// bench/compare's training workloads (bench/compare_py/workloads.py).
const tg::bench::TrainShapes kTrainShapes[] = {
    {12 * 64, 128, 4, 65},   // gpt_baby_train: B12 T64 C128 L4, 65 characters
    {16 * 256, 384, 6, 65},  // gpt_shakespeare_train: B16 T256 C384 L6
    {8 * 50, 128, 2, 0},     // encoder_train: B8 T50 C128 L2
};

void BM_train_linear_gemms(benchmark::State& state) {
  const tg::bench::TrainShapes& t = kTrainShapes[state.range(0)];
  tg::set_num_threads(int(state.range(1)));
  tg::bench::TrainLinearGemms gemms(t);
  for (auto _ : state) {
    gemms.run();
    benchmark::DoNotOptimize(gemms.result());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(t.flops() * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_train_linear_gemms)
    ->ArgsProduct({{0, 1, 2}, {1, 2}})
    ->ArgNames({"workload", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

TAPEGRAD_BENCHMARK_MAIN()
