// Attention variants, forward + backward, B=1 H=8 D=64 causal, at a few sequence lengths.
// Each variant is checked against attention_reference (dense with the variant's pattern) before
// it is timed. The full sweep with memory, CSV and picture is `tapegrad bench attention`.
// Run: build/bench_attention --benchmark_repetitions=3
//
// BM_linear_attention: the chunked linear kernel at B=1 H=8 D=64, forward or forward+backward,
// causal or not, with its useful FLOP rate (kernels::linear_attention_flops for the forward, 3x
// that for forward+backward), beside BM_sgemm_peak, the rate of a square sgemm on all threads in
// the same run: build/bench_attention --benchmark_filter='linear|sgemm'
#include <benchmark/benchmark.h>

#include "bench/bench_main.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "ops/kernels/attention_linear.h"

#include "ops/attention_reference.h"
#include "tapegrad.h"

namespace {

using tg::Tensor;

const char* kVariants[] = {"dense", "flash", "sliding:256", "sparse", "linear"};

void BM_attention(benchmark::State& state) {
  const char* name = kVariants[state.range(0)];
  int64_t T = state.range(1);
  tg::AttentionSpec spec;
  spec.variant = tg::parse_attention_variant(name, &spec);
  spec.causal = true;
  tg::Generator gen(7);
  Tensor q = tg::randn({1, T, 8, 64}, gen), k = tg::randn({1, T, 8, 64}, gen), v = tg::randn({1, T, 8, 64}, gen);
  Tensor dout = tg::randn({1, T, 8, 64}, gen);
  {
    tg::NoGradGuard no_grad;
    std::vector<double> a = tg::attention(q, k, v, spec).to_vector();
    std::vector<double> b = tg::attention_reference(q, k, v, spec).to_vector();
    double err = 0, mag = 0;
    for (size_t i = 0; i < a.size(); ++i) err = std::max(err, std::fabs(a[i] - b[i])), mag = std::max(mag, std::fabs(b[i]));
    err /= mag;
    if (!(err < 1e-4)) throw std::runtime_error(std::string("bench_attention: ") + name + " disagrees with its reference");
  }
  q.requires_grad_(), k.requires_grad_(), v.requires_grad_();
  for (auto _ : state) {
    Tensor out = tg::attention(q, k, v, spec);
    tg::backward(out, dout);
    q.set_grad(Tensor()), k.set_grad(Tensor()), v.set_grad(Tensor());
  }
  state.SetLabel(name);
}

BENCHMARK(BM_attention)
    ->ArgsProduct({{0, 1, 2, 3, 4}, {1024, 2048, 4096}})
    ->ArgNames({"variant", "T"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Linear attention against its dense reference at T = 256 (the reference's [T, T] weights would not
// fit at the timed lengths), before anything is timed.
void check_linear(bool causal) {
  tg::AttentionSpec spec;
  spec.variant = tg::AttentionVariant::linear;
  spec.causal = causal;
  tg::Generator gen(3);
  Tensor q = tg::randn({1, 256, 8, 64}, gen), k = tg::randn({1, 256, 8, 64}, gen), v = tg::randn({1, 256, 8, 64}, gen);
  tg::NoGradGuard no_grad;
  std::vector<double> a = tg::attention(q, k, v, spec).to_vector();
  std::vector<double> b = tg::attention_reference(q, k, v, spec).to_vector();
  double err = 0, mag = 0;
  for (size_t i = 0; i < a.size(); ++i) err = std::max(err, std::fabs(a[i] - b[i])), mag = std::max(mag, std::fabs(b[i]));
  if (!(err < 1e-4 * mag)) throw std::runtime_error("bench_attention: linear disagrees with its reference");
}

void BM_linear_attention(benchmark::State& state) {
  const int64_t T = state.range(0);
  const bool causal = state.range(1) != 0, backward = state.range(2) != 0;
  check_linear(causal);
  tg::AttentionSpec spec;
  spec.variant = tg::AttentionVariant::linear;
  spec.causal = causal;
  tg::Generator gen(7);
  Tensor q = tg::randn({1, T, 8, 64}, gen), k = tg::randn({1, T, 8, 64}, gen), v = tg::randn({1, T, 8, 64}, gen);
  Tensor dout = tg::randn({1, T, 8, 64}, gen);
  if (backward) q.requires_grad_(), k.requires_grad_(), v.requires_grad_();
  for (auto _ : state) {
    Tensor out = tg::attention(q, k, v, spec);
    if (backward) {
      tg::backward(out, dout);
      q.set_grad(Tensor()), k.set_grad(Tensor()), v.set_grad(Tensor());
    }
    benchmark::DoNotOptimize(out.raw_data());
  }
  tg::kernels::AttnDims d;
  d.B = 1, d.T = T, d.S = T, d.H = 8, d.D = 64, d.Dv = 64;
  double flops = tg::kernels::linear_attention_flops(d, causal, 64) * (backward ? 3.0 : 1.0);
  state.counters["GFLOP/s"] = benchmark::Counter(flops * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  // The count in the output: useful FLOPs per iteration (attention_linear.h says which).
  char label[96];
  std::snprintf(label, sizeof label, "%s%s, %.4g FLOP/iter (linear_attention_flops%s)", causal ? "causal " : "",
                backward ? "fwdbwd" : "fwd", flops, backward ? " x3" : "");
  state.SetLabel(label);
}

BENCHMARK(BM_linear_attention)
    ->ArgsProduct({{2048, 4096, 16384}, {0, 1}, {0, 1}})
    ->ArgNames({"T", "causal", "bwd"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The peak the linear kernel is measured against: a square sgemm (tg::matmul, split over the
// threads as every large product is).
void BM_sgemm_peak(benchmark::State& state) {
  const int64_t n = state.range(0);
  tg::Generator gen(1);
  Tensor a = tg::randn({n, n}, gen), b = tg::randn({n, n}, gen);
  tg::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(tg::matmul(a, b).raw_data());
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n * n * n * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

BENCHMARK(BM_sgemm_peak)->Arg(1024)->ArgName("n")->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

TAPEGRAD_BENCHMARK_MAIN()
