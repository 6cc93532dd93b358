// The allocator's statistics and alignment; the counter-based generator's reproducibility.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "test_util.h"

namespace tg {
namespace {

TEST(Allocator, CountsCurrentAndPeakBytes) {
  int64_t base = memory_allocated();
  reset_peak_memory_stats();
  {
    Tensor a = empty({1000}, DType::f64);  // 8000 bytes
    EXPECT_EQ(memory_allocated() - base, 8000);
    {
      Tensor b = empty({500}, DType::f32);  // 2000 bytes
      EXPECT_EQ(memory_allocated() - base, 10000);
    }
    EXPECT_EQ(memory_allocated() - base, 8000);
  }
  EXPECT_EQ(memory_allocated(), base);
  EXPECT_EQ(max_memory_allocated() - base, 10000);
  reset_peak_memory_stats();
  EXPECT_EQ(max_memory_allocated(), memory_allocated());
}

TEST(Allocator, AlignedAndReusesFreedBlocks) {
  int64_t allocs = memory_stats().num_allocs;
  void* first;
  {
    Tensor a = empty({1234});
    first = a.raw_data();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % 64, 0u);
  }
  Tensor b = empty({1234});
  EXPECT_EQ(b.raw_data(), first);  // same size: the cached block comes back
  EXPECT_EQ(memory_stats().num_allocs, allocs + 2);
  empty_cache();
  EXPECT_EQ(memory_stats().cached_bytes, 0);
}

// A freed block that does not fit under the cache's cap (1 GiB) makes room by freeing the blocks
// cached longest ago, rather than going back to the system itself: the cache keeps the sizes in
// use, not the ones asked for first.
TEST(Allocator, AFreedBlockEvictsTheOldestCachedOnesWhenTheCacheIsFull) {
  empty_cache();
  const size_t first = size_t(600) << 20, second = size_t(500) << 20;  // never touched: virtual only
  deallocate(allocate(first), first);
  EXPECT_EQ(memory_stats().cached_bytes, int64_t(first));
  deallocate(allocate(second), second);
  EXPECT_EQ(memory_stats().cached_bytes, int64_t(second));  // the 600 MiB block made room
  void* again = allocate(second);  // and the 500 MiB block comes back from the cache
  EXPECT_EQ(memory_stats().cached_bytes, 0);
  deallocate(again, second);
  empty_cache();
}

TEST(Allocator, BlocksOfAHugePageOrMoreStartOnAHugePage) {
  // 2 MiB and more: aligned for transparent huge pages (allocator.cpp), unless the test runs with
  // THP_MEM_ALLOC_ENABLE=0.
  const char* env = std::getenv("THP_MEM_ALLOC_ENABLE");
  const uintptr_t align = env && std::string_view(env) == "0" ? 64 : uintptr_t(2) << 20;
  for (int64_t n : {int64_t(1) << 19, (int64_t(3) << 19) + 17}) {  // 2 MiB, 6 MiB + 68 B of f32
    Tensor t = empty({n});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % align, 0u) << n;
  }
}

TEST(Generator, SameSeedSameNumbersAndStreamAdvances) {
  Generator g1(42), g2(42), g3(43);
  Tensor a = rand({100}, g1), b = rand({100}, g2), c = rand({100}, g3);
  EXPECT_EQ(a.to_vector(), b.to_vector());
  EXPECT_NE(a.to_vector(), c.to_vector());
  Tensor a2 = rand({100}, g1);  // the next draw differs
  EXPECT_NE(a.to_vector(), a2.to_vector());
  g2.manual_seed(42);
  EXPECT_EQ(rand({100}, g2).to_vector(), a.to_vector());
}

TEST(Generator, IndependentOfThreadCount) {
  int saved = get_num_threads();
  set_num_threads(1);
  Generator g1(7);
  Tensor a = randn({300000}, g1, DType::f64);
  set_num_threads(2);
  Generator g2(7);
  Tensor b = randn({300000}, g2, DType::f64);
  set_num_threads(saved);
  EXPECT_EQ(a.to_vector(), b.to_vector());
}

TEST(Generator, UniformAndNormalMoments) {
  Generator g(1);
  std::vector<double> u = rand({200000}, g, DType::f64).to_vector();
  std::vector<double> n = randn({200000}, g, DType::f64).to_vector();
  double su = 0, sn = 0, sn2 = 0, lo = 1, hi = 0;
  for (double v : u) su += v, lo = std::min(lo, v), hi = std::max(hi, v);
  for (double v : n) sn += v, sn2 += v * v;
  EXPECT_NEAR(su / u.size(), 0.5, 0.005);
  EXPECT_GE(lo, 0.0);
  EXPECT_LT(hi, 1.0);
  EXPECT_NEAR(sn / n.size(), 0.0, 0.01);
  EXPECT_NEAR(sn2 / n.size(), 1.0, 0.01);
  Generator f(1);
  for (double v : rand({100000}, f, DType::f32).to_vector()) ASSERT_LT(v, 1.0);
}

TEST(Threads, SettingIsValidated) {
  int saved = get_num_threads();
  set_num_threads(1);
  EXPECT_EQ(get_num_threads(), 1);
  set_num_threads(saved);
  EXPECT_THROW(set_num_threads(0), std::invalid_argument);
}

}  // namespace
}  // namespace tg
