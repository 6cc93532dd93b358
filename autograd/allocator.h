#pragma once
// One allocator for all tensor storage: 64-byte aligned, counting live and peak bytes (what
// torch.cuda.memory_allocated / max_memory_allocated report), and caching freed blocks by size
// so a training loop that repeats its shapes stops calling the system allocator (up to 1 GiB of
// them; past it, the blocks cached longest ago are freed first).
#include <cstddef>
#include <cstdint>

namespace tg {

struct MemoryStats {
  int64_t allocated_bytes = 0;      ///< bytes held by live tensors now
  int64_t peak_allocated_bytes = 0; ///< highest allocated_bytes since the last reset
  int64_t num_allocs = 0;           ///< tensor storage allocations since start
  int64_t cached_bytes = 0;         ///< freed blocks kept for reuse (not counted as allocated)
};

/// Allocates `bytes` (64-byte aligned, rounded up to 64). Never returns null; throws tg::Error.
void* allocate(size_t bytes);
/// Returns a block from allocate(); `bytes` must be the size asked for.
void deallocate(void* ptr, size_t bytes);

MemoryStats memory_stats();
/// Bytes held by live tensors.
int64_t memory_allocated();
/// Peak of memory_allocated() since start or the last reset_peak_memory_stats().
int64_t max_memory_allocated();
/// Sets the peak to the current value.
void reset_peak_memory_stats();
/// Gives cached blocks back to the system.
void empty_cache();

}  // namespace tg
