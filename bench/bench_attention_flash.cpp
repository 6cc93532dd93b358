// Flash against dense attention, forward + backward, causal, B = 1, H = 8, D = 64 (f32), at
// T = S = 1024, 2048, 4096 on 2 threads. Counters: peak_MiB is the allocator's peak above the
// inputs during one forward + backward (as torch.cuda.max_memory_allocated). Target at T = 4096:
// flash at least 3x faster than dense. The two agree (out, dq, dk, dv) before anything is timed.
// Run: build/bench_attention_flash --benchmark_repetitions=3
#include <benchmark/benchmark.h>

#include <cmath>
#include <stdexcept>

#include "ops/attention.h"
#include "tapegrad.h"

namespace {

using tg::Tensor;

struct Problem {
  Tensor q, k, v, dout;
};

Problem make_problem(int64_t T) {
  tg::Generator gen(7);
  int64_t B = 1, H = 8, D = 64;
  Problem p;
  p.q = tg::randn({B, T, H, D}, gen).requires_grad_();
  p.k = tg::randn({B, T, H, D}, gen).requires_grad_();
  p.v = tg::randn({B, T, H, D}, gen).requires_grad_();
  p.dout = tg::randn({B, T, H, D}, gen);
  return p;
}

// Forward and backward; returns out, dq, dk, dv and leaves the inputs without gradients.
std::vector<Tensor> step(Problem& p, tg::AttentionVariant variant) {
  tg::AttentionSpec spec;
  spec.causal = true;
  spec.variant = variant;
  Tensor out = tg::attention(p.q, p.k, p.v, spec);
  tg::backward(out, p.dout);
  std::vector<Tensor> r = {out, p.q.grad(), p.k.grad(), p.v.grad()};
  p.q.set_grad(Tensor()), p.k.set_grad(Tensor()), p.v.set_grad(Tensor());
  return r;
}

// max|flash - dense| <= 1e-4 · max|dense| for each of out, dq, dk, dv (checked once, T = 512).
void check_agreement() {
  static bool done = false;
  if (done) return;
  Problem p = make_problem(512);
  std::vector<Tensor> f = step(p, tg::AttentionVariant::flash),
                      d = step(p, tg::AttentionVariant::dense);
  for (size_t i = 0; i < f.size(); ++i) {
    std::vector<double> a = f[i].to_vector(), b = d[i].to_vector();
    double diff = 0, mag = 0;
    for (size_t j = 0; j < a.size(); ++j)
      diff = std::max(diff, std::fabs(a[j] - b[j])), mag = std::max(mag, std::fabs(b[j]));
    if (!(diff <= 1e-4 * mag))
      throw std::runtime_error("bench_attention_flash: flash disagrees with dense");
  }
  done = true;
}

void run(benchmark::State& state, tg::AttentionVariant variant) {
  tg::set_num_threads(int(state.range(1)));
  check_agreement();
  Problem p = make_problem(state.range(0));
  int64_t peak = 0;
  for (auto _ : state) {
    tg::reset_peak_memory_stats();
    int64_t base = tg::memory_allocated();
    benchmark::DoNotOptimize(step(p, variant)[0].raw_data());
    peak = std::max(peak, tg::max_memory_allocated() - base);
  }
  state.counters["peak_MiB"] = double(peak) / (1 << 20);
}

void BM_flash(benchmark::State& state) { run(state, tg::AttentionVariant::flash); }
void BM_dense(benchmark::State& state) { run(state, tg::AttentionVariant::dense); }

void sizes(benchmark::internal::Benchmark* b) {
  for (int T : {1024, 2048, 4096}) b->Args({T, 2});
  b->ArgNames({"T", "threads"})->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
}

BENCHMARK(BM_flash)->Apply(sizes);
BENCHMARK(BM_dense)->Apply(sizes);

}  // namespace

BENCHMARK_MAIN();
