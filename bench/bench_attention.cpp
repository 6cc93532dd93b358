// Attention variants, forward + backward, B=1 H=8 D=64 causal, at a few sequence lengths.
// Each variant is checked against attention_reference (dense with the variant's pattern) before
// it is timed. The full sweep with memory, CSV and picture is `tapegrad bench attention`.
// Run: build/bench_attention --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include "bench/bench_main.h"

#include <cmath>
#include <stdexcept>

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

}  // namespace

TAPEGRAD_BENCHMARK_MAIN()
