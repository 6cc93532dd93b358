#pragma once
// The main() of tapegrad's Google Benchmark programs: BENCHMARK_MAIN's, after choosing
// OpenBLAS's kernels as the tapegrad command does (ops/kernels/blas_cpu.h).
#include <benchmark/benchmark.h>

#include "ops/kernels/blas_cpu.h"

#define TAPEGRAD_BENCHMARK_MAIN()                                       \
  int main(int argc, char** argv) {                                     \
    tg::kernels::use_best_blas_kernels(argv);                           \
    ::benchmark::Initialize(&argc, argv);                               \
    if (::benchmark::ReportUnrecognizedArguments(argc, argv)) return 1; \
    ::benchmark::RunSpecifiedBenchmarks();                              \
    ::benchmark::Shutdown();                                            \
    return 0;                                                           \
  }
