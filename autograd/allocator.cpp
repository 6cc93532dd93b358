#include "autograd/allocator.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "autograd/error.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace tg {
namespace {

constexpr size_t kAlign = 64;
// Cache at most this many bytes of freed blocks; a block larger than this is never cached. A freed
// block that does not fit under it frees the blocks cached longest ago to make room (Pool::evict),
// so that the cache follows the sizes in use: kept instead, the blocks of sizes no longer asked
// for filled it, and every later large block went back to the system and was faulted in again
// on each use (a sweep of attention benchmarks over sizes: linear attention's causal forward at
// D = 128, T = 16384 took 205 ms a call after the sweep's earlier cells, 40 ms alone).
constexpr size_t kMaxCachedBytes = size_t(1) << 30;

size_t round_up(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

// Blocks of at least one huge page (2 MiB on x86-64) start on a huge-page boundary and ask the
// kernel to back them with transparent huge pages (madvise, as PyTorch's THP_MEM_ALLOC_ENABLE
// does): long-sequence attention walks [B, T, H, D] tensors of tens of MB one head's row at a
// time, and with 4 KiB pages nearly every row is a TLB miss. THP_MEM_ALLOC_ENABLE=0 turns it off.
constexpr size_t kHugePage = size_t(2) << 20;

bool huge_pages_wanted() {
  static const bool wanted = [] {
    const char* env = std::getenv("THP_MEM_ALLOC_ENABLE");
    return !(env && std::string_view(env) == "0");
  }();
  return wanted;
}

void* system_allocate(size_t size) {
  if (size < kHugePage || !huge_pages_wanted()) return std::aligned_alloc(kAlign, size);
  void* ptr = nullptr;
  if (posix_memalign(&ptr, kHugePage, size) != 0) return nullptr;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // Advice only: where the kernel has no huge pages to give, the block keeps small ones.
  madvise(ptr, size / kHugePage * kHugePage, MADV_HUGEPAGE);
#endif
  return ptr;
}

struct Pool {
  struct Cached {
    void* ptr;
    uint64_t freed;  // when it was freed, in deallocations
  };
  std::mutex mu;
  // rounded size -> blocks, in the order they were freed (reused last first, evicted first first)
  std::unordered_map<size_t, std::vector<Cached>> free_blocks;
  size_t cached = 0;
  uint64_t deallocations = 0;
  std::atomic<int64_t> allocated{0};
  std::atomic<int64_t> peak{0};
  std::atomic<int64_t> num_allocs{0};

  void note_alloc(int64_t bytes) {
    int64_t now = allocated.fetch_add(bytes) + bytes;
    int64_t p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    num_allocs.fetch_add(1);
  }

  // Takes the blocks cached longest ago out of the cache, into `out`, until `need` more bytes fit
  // under kMaxCachedBytes. Holds mu.
  void evict(size_t need, std::vector<void*>& out) {
    while (cached + need > kMaxCachedBytes && cached > 0) {
      auto oldest = free_blocks.end();
      for (auto it = free_blocks.begin(); it != free_blocks.end(); ++it)
        if (!it->second.empty() && (oldest == free_blocks.end() || it->second.front().freed < oldest->second.front().freed))
          oldest = it;
      out.push_back(oldest->second.front().ptr);
      oldest->second.erase(oldest->second.begin());
      cached -= oldest->first;
    }
  }
};

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: tensors may die during static destruction
  return *p;
}

}  // namespace

void* allocate(size_t bytes) {
  // round_up must not wrap around, and no block beyond PTRDIFF_MAX can be indexed anyway.
  if (bytes > size_t(PTRDIFF_MAX) - kAlign) fail("allocate: {} bytes is more than can be allocated", bytes);
  size_t size = round_up(std::max<size_t>(bytes, 1));
  Pool& p = pool();
  void* ptr = nullptr;
  {
    std::lock_guard lock(p.mu);
    auto it = p.free_blocks.find(size);
    if (it != p.free_blocks.end() && !it->second.empty()) {
      ptr = it->second.back().ptr;
      it->second.pop_back();
      p.cached -= size;
    }
  }
  if (!ptr) ptr = system_allocate(size);
  if (!ptr) fail("allocate: out of memory allocating {} bytes", bytes);
  p.note_alloc(static_cast<int64_t>(bytes));
  return ptr;
}

void deallocate(void* ptr, size_t bytes) {
  if (!ptr) return;
  size_t size = round_up(std::max<size_t>(bytes, 1));
  Pool& p = pool();
  p.allocated.fetch_sub(static_cast<int64_t>(bytes));
  std::vector<void*> evicted;  // freed after the lock is released
  if (size <= kMaxCachedBytes) {
    std::lock_guard lock(p.mu);
    p.evict(size, evicted);
    p.free_blocks[size].push_back({ptr, ++p.deallocations});
    p.cached += size;
  } else {
    evicted.push_back(ptr);
  }
  for (void* b : evicted) std::free(b);
}

MemoryStats memory_stats() {
  Pool& p = pool();
  MemoryStats s;
  s.allocated_bytes = p.allocated.load();
  s.peak_allocated_bytes = p.peak.load();
  s.num_allocs = p.num_allocs.load();
  std::lock_guard lock(p.mu);
  s.cached_bytes = static_cast<int64_t>(p.cached);
  return s;
}

int64_t memory_allocated() { return pool().allocated.load(); }
int64_t max_memory_allocated() { return pool().peak.load(); }
void reset_peak_memory_stats() { pool().peak.store(pool().allocated.load()); }

void empty_cache() {
  Pool& p = pool();
  std::lock_guard lock(p.mu);
  for (auto& [size, blocks] : p.free_blocks)
    for (const Pool::Cached& b : blocks) std::free(b.ptr);
  p.free_blocks.clear();
  p.cached = 0;
}

}  // namespace tg
