#pragma once
// Threading: one pool owns the cores. TBB runs every parallel loop; OpenBLAS always runs
// single-threaded on the calling thread (its own threads would spin in sched_yield against the
// TBB workers on every GEMM), and gemm() splits a large product into panels run as TBB tasks.
// A loop too small to pay for a task runs serially on the calling thread.
//
// The TBB loops themselves are compiled once, in parallel.cpp: parallel_for and parallel_invoke
// hand them a type-erased body (a function pointer and the caller's lambda), so a kernel file
// with many loops does not instantiate TBB's templates once per loop. The body is still inlined
// into its trampoline, so each chunk runs the caller's code at full speed; what is indirect is
// one call per chunk.
#include <cstdint>
#include <memory>
#include <type_traits>

namespace tg {

/// Sets the number of threads used by TBB loops, which also run the panels of large GEMMs
/// (n >= 1). Like torch.set_num_threads. Throws tg-style std::invalid_argument on n < 1.
void set_num_threads(int n);
/// The current thread setting (defaults to the number of cores).
int get_num_threads();

namespace kernels {

namespace detail {
inline thread_local int parallel_depth = 0;  // > 0 while a parallel_for task body runs here
struct ParallelRegion {
  ParallelRegion() { ++parallel_depth; }
  ~ParallelRegion() { --parallel_depth; }
};

/// Runs body(ctx, lo, hi) over chunks of [begin, end) of at least `grain` iterations as TBB tasks.
using ChunkBody = void (*)(const void* ctx, int64_t lo, int64_t hi);
void parallel_chunks(int64_t begin, int64_t end, int64_t grain, ChunkBody body, const void* ctx);
/// Runs f(fctx) and g(gctx) as two TBB tasks.
using TaskBody = void (*)(const void* ctx);
void parallel_pair(TaskBody f, const void* fctx, TaskBody g, const void* gctx);
}  // namespace detail

/// True inside a task of a parallel_for: the cores are already shared out, so a GEMM runs
/// whole on this thread instead of splitting again.
inline bool in_parallel_region() { return detail::parallel_depth > 0; }

/// Calls fn(lo, hi) over [begin, end) in chunks of at least `grain` iterations; serial when the
/// range is no larger than `grain` or when one thread is set. The split never changes what each
/// index computes, so results do not depend on the thread count.
template <class F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, F&& fn) {
  if (end <= begin) return;
  if (grain < 1) grain = 1;
  if (end - begin <= grain || get_num_threads() == 1) {
    fn(begin, end);
    return;
  }
  using Fn = std::remove_reference_t<F>;
  detail::parallel_chunks(
      begin, end, grain,
      [](const void* ctx, int64_t lo, int64_t hi) { (*static_cast<Fn*>(const_cast<void*>(ctx)))(lo, hi); },
      std::addressof(fn));
}

/// Runs f() and g() at the same time, each as one task (a GEMM inside runs whole on its
/// thread, not split into panels); one after the other with one thread or inside a task.
/// For two independent pieces of work of about the same cost, such as the two products of a
/// linear layer's backward: each GEMM then packs its operands once instead of once per panel.
template <class F, class G>
void parallel_invoke(F&& f, G&& g) {
  if (get_num_threads() == 1 || in_parallel_region()) {
    f();
    g();
    return;
  }
  using FnF = std::remove_reference_t<F>;
  using FnG = std::remove_reference_t<G>;
  detail::parallel_pair([](const void* ctx) { (*static_cast<FnF*>(const_cast<void*>(ctx)))(); },
                        std::addressof(f),
                        [](const void* ctx) { (*static_cast<FnG*>(const_cast<void*>(ctx)))(); },
                        std::addressof(g));
}

/// Grain for elementwise loops: about this many scalar operations per task.
inline constexpr int64_t kElementwiseGrain = 32768;

/// Rows per task for a row-wise kernel doing `row_cost` operations per row.
inline int64_t rows_grain(int64_t row_cost) {
  int64_t g = kElementwiseGrain / (row_cost > 0 ? row_cost : 1);
  return g < 1 ? 1 : g;
}

}  // namespace kernels
}  // namespace tg
