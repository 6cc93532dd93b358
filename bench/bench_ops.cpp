// Elementwise, softmax, layer_norm and cross_entropy at sizes typical of a small GPT:
// [12, 64, 128] (nanoGPT's baby GPT activations, B=12 T=64 C=128) and [16, 256, 384]
// (shakespeare_char, B=16 T=256 C=384); 1 and 2 threads; forward, and forward + backward.
// Run: build/bench_ops --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include "bench/bench_main.h"

#include "tapegrad.h"

namespace {

using tg::Shape;
using tg::Tensor;

// Arg 0 picks the size, arg 1 the thread count.
Shape activation_shape(int64_t which) { return which == 0 ? Shape{12, 64, 128} : Shape{16, 256, 384}; }

Tensor input(const Shape& shape, uint64_t seed, bool requires_grad) {
  tg::Generator gen(seed);
  Tensor x = tg::randn(shape, gen);
  if (requires_grad) x.requires_grad_();
  return x;
}

void set_bytes(benchmark::State& state, int64_t bytes_per_iter) {
  state.SetBytesProcessed(state.iterations() * bytes_per_iter);
}

template <class Op>
void run_forward(benchmark::State& state, int inputs, Op op) {
  Shape s = activation_shape(state.range(0));
  tg::set_num_threads(int(state.range(1)));
  Tensor a = input(s, 1, false), b = input(s, 2, false);
  tg::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(op(a, b).raw_data());
  set_bytes(state, (inputs + 1) * a.nbytes());
}

template <class Op>
void run_forward_backward(benchmark::State& state, Op op) {
  Shape s = activation_shape(state.range(0));
  tg::set_num_threads(int(state.range(1)));
  Tensor a = input(s, 1, true), b = input(s, 2, true);
  for (auto _ : state) {
    Tensor y = op(a, b);
    tg::backward(y, tg::ones_like(y));
    a.set_grad(Tensor());
    b.set_grad(Tensor());
  }
}

void BM_add(benchmark::State& s) { run_forward(s, 2, [](auto& a, auto& b) { return tg::add(a, b); }); }
void BM_mul(benchmark::State& s) { run_forward(s, 2, [](auto& a, auto& b) { return tg::mul(a, b); }); }
void BM_gelu_tanh(benchmark::State& s) {
  run_forward(s, 1, [](auto& a, auto&) { return tg::gelu(a, "tanh"); });
}
void BM_softmax(benchmark::State& s) { run_forward(s, 1, [](auto& a, auto&) { return tg::softmax(a, -1); }); }
void BM_layer_norm(benchmark::State& s) {
  run_forward(s, 1, [](auto& a, auto&) { return tg::layer_norm(a, {a.size(-1)}); });
}
void BM_gelu_tanh_fwdbwd(benchmark::State& s) {
  run_forward_backward(s, [](auto& a, auto&) { return tg::gelu(a, "tanh"); });
}
void BM_softmax_fwdbwd(benchmark::State& s) {
  run_forward_backward(s, [](auto& a, auto&) { return tg::softmax(a, -1); });
}
void BM_layer_norm_fwdbwd(benchmark::State& s) {
  run_forward_backward(s, [](auto& a, auto&) { return tg::layer_norm(a, {a.size(-1)}); });
}

// Cross-entropy over logits [B*T, V] with V = 65 (tiny Shakespeare's characters).
void BM_cross_entropy_fwdbwd(benchmark::State& state) {
  Shape s = activation_shape(state.range(0));
  tg::set_num_threads(int(state.range(1)));
  int64_t rows = s[0] * s[1], vocab = 65;
  Tensor logits = input({rows, vocab}, 1, true);
  Tensor target = tg::empty({rows}, tg::DType::i64);
  for (int64_t i = 0; i < rows; ++i) target.data<int64_t>()[i] = (i * 7) % vocab;
  for (auto _ : state) {
    Tensor loss = tg::cross_entropy(logits, target);
    tg::backward(loss);
    logits.set_grad(Tensor());
  }
}

void grid(benchmark::internal::Benchmark* b) {
  for (int threads : {1, 2})
    for (int which : {0, 1}) b->Args({which, threads});
  b->ArgNames({"size", "threads"})->Unit(benchmark::kMicrosecond)->UseRealTime();
}

BENCHMARK(BM_add)->Apply(grid);
BENCHMARK(BM_mul)->Apply(grid);
BENCHMARK(BM_gelu_tanh)->Apply(grid);
BENCHMARK(BM_softmax)->Apply(grid);
BENCHMARK(BM_layer_norm)->Apply(grid);
BENCHMARK(BM_gelu_tanh_fwdbwd)->Apply(grid);
BENCHMARK(BM_softmax_fwdbwd)->Apply(grid);
BENCHMARK(BM_layer_norm_fwdbwd)->Apply(grid);
BENCHMARK(BM_cross_entropy_fwdbwd)->Apply(grid);

}  // namespace

TAPEGRAD_BENCHMARK_MAIN()
