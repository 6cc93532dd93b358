// Sizes that overflow or cannot fit (issue 15): element and byte counts are overflow-checked and
// name the shape; the memory available is read from /proc/meminfo and RLIMIT_AS, and an estimate
// above it is refused with a message naming what set it.
#include <sys/resource.h>

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "autograd/allocator.h"
#include "autograd/available_memory.h"
#include "autograd/checked_size.h"
#include "autograd/tensor.h"
#include "test_util.h"

namespace tg {
namespace {

constexpr int64_t kMax = INT64_MAX;

TEST(CheckedSize, MulAndAddRefuseOverflowAndNegatives) {
  EXPECT_EQ(checked_mul(3, 5), 15);
  EXPECT_EQ(checked_mul(0, kMax), 0);
  EXPECT_EQ(checked_mul(kMax, 1), kMax);
  EXPECT_EQ(checked_mul(int64_t(1) << 32, int64_t(1) << 30), int64_t(1) << 62);
  EXPECT_FALSE(checked_mul(int64_t(1) << 32, int64_t(1) << 31));  // 2^63
  EXPECT_FALSE(checked_mul(int64_t(1) << 32, int64_t(1) << 32));
  EXPECT_FALSE(checked_mul(-1, 2));
  EXPECT_EQ(checked_add(kMax - 1, 1), kMax);
  EXPECT_FALSE(checked_add(kMax, 1));
  EXPECT_FALSE(checked_add(-3, 5));
  const std::vector<int64_t> fits = {1000, 1000, 1000}, overflows = {1 << 20, 1 << 20, 1 << 20, 1 << 20};
  EXPECT_EQ(checked_product(fits), 1000000000);
  EXPECT_FALSE(checked_product(overflows));
  EXPECT_EQ(checked_product(std::vector<int64_t>{}), 1);
  EXPECT_EQ(checked_product(std::vector<int64_t>{kMax, kMax, 0}), 0);
  EXPECT_FALSE(checked_product(std::vector<int64_t>{kMax, -1, 0}));
}

TEST(CheckedSize, ProductAndSumOrFailNameWhatSetTheSizes) {
  EXPECT_EQ(product_or_fail({4, 5, 6}, "--batch-size × --block-size"), 120);
  EXPECT_TG_ERROR(product_or_fail({int64_t(1) << 62, 64}, "--batch-size × --block-size"),
                  "--batch-size × --block-size: the product 4611686018427387904 × 64 is negative or overflows int64");
  EXPECT_TG_ERROR(product_or_fail({2, -3}, "sizes"), "is negative or overflows");
  EXPECT_EQ(sum_or_fail({1, 2, 3}, "--train + --val"), 6);
  EXPECT_TG_ERROR(sum_or_fail({kMax, 1}, "--train + --val"), "--train + --val: the sum");
}

TEST(CheckedSize, NumelOverflowAndNegativeSizesNameTheShape) {
  EXPECT_EQ(numel({}), 1);
  EXPECT_EQ(numel({2, 3, 4}), 24);
  EXPECT_EQ(numel({0, kMax, kMax}), 0);
  EXPECT_EQ(numel({kMax, kMax, 0}), 0);
  EXPECT_TG_ERROR(numel({int64_t(1) << 32, int64_t(1) << 32}), "[4294967296, 4294967296]");
  EXPECT_TG_ERROR(numel({kMax, 2}), "more elements than int64 can count");
  EXPECT_TG_ERROR(numel({2, -1}), "negative size in shape [2, -1]");
}

TEST(CheckedSize, ShapeBytesCountsElementsTimesTheirSize) {
  EXPECT_EQ(shape_bytes({2, 3}, 8, "op"), 48);
  EXPECT_EQ(shape_bytes({}, 4, "op"), 4);
  // 2^61 elements fit int64, their f64 bytes (2^64) do not.
  EXPECT_TG_ERROR(shape_bytes({int64_t(1) << 61}, 8, "empty"), "empty: a tensor of shape [2305843009213693952]");
  EXPECT_TG_ERROR(shape_bytes({-4}, 4, "empty"), "negative size");
}

TEST(CheckedSize, TensorsTooLargeToCountAreRefusedNotAllocated) {
  EXPECT_TG_ERROR(empty({int64_t(1) << 61}, DType::f64), "[2305843009213693952]");
  EXPECT_TG_ERROR(empty({int64_t(1) << 40, int64_t(1) << 40}), "more bytes than int64 can count");
  EXPECT_TG_ERROR(zeros({3, -2}), "negative size");
  // A view whose end wraps around int64 is refused like one past the storage.
  Tensor t = zeros({8});
  EXPECT_TG_ERROR(t.view_of({4}, kMax - 2), "does not fit in the storage");
  EXPECT_TG_ERROR(allocate(SIZE_MAX - 8), "more than can be allocated");
}

TEST(AvailableMemory, ParsesMemAvailableInBytes) {
  const char* meminfo =
      "MemTotal:       16318412 kB\nMemFree:          437856 kB\nMemAvailable:    9017500 kB\nBuffers: 1 kB\n";
  EXPECT_EQ(parse_meminfo_available(meminfo), int64_t(9017500) * 1024);
  EXPECT_FALSE(parse_meminfo_available("MemTotal: 100 kB\n"));
  EXPECT_FALSE(parse_meminfo_available(""));
}

TEST(AvailableMemory, IsKnownAndPositiveOnLinux) {
  std::optional<AvailableMemory> m = available_memory();
  ASSERT_TRUE(m);
  EXPECT_GT(m->bytes, 0);
  EXPECT_FALSE(m->source.empty());
}

// This process's mappings in bytes (VmSize), as available_memory() subtracts them.
int64_t mapped_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmSize:", 0) == 0) return std::stoll(line.substr(7)) * 1024;
  return 0;
}

TEST(AvailableMemory, RlimitAsLessWhatIsMappedCountsWhenSmaller) {
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_AS, &saved), 0);
  // A soft limit 1 GiB above today's mappings, restored at once (the hard limit stays). Large
  // beside what another thread may map meanwhile: a malloc arena took 128 MiB of a 256 MiB
  // headroom once under ctest -j2.
  const int64_t headroom = int64_t(1) << 30;
  rlimit tight = saved;
  tight.rlim_cur = rlim_t(mapped_bytes() + headroom);
  if (saved.rlim_max != RLIM_INFINITY && tight.rlim_cur > saved.rlim_max) GTEST_SKIP() << "hard RLIMIT_AS too low";
  ASSERT_EQ(::setrlimit(RLIMIT_AS, &tight), 0);
  std::optional<AvailableMemory> during = available_memory();
  ASSERT_EQ(::setrlimit(RLIMIT_AS, &saved), 0);
  ASSERT_TRUE(during);
  // The mappings barely move in between (a few pages may be unmapped: seen 8 KiB under ctest -j2).
  EXPECT_LE(during->bytes, headroom + (int64_t(16) << 20));
  EXPECT_GT(during->bytes, headroom / 2);
  EXPECT_NE(during->source.find("RLIMIT_AS"), std::string::npos) << during->source;
}

TEST(AvailableMemory, AnEstimateAboveItIsRefusedNamingWhatSetIt) {
  AvailableMemory m{int64_t(2'000'000'000), "MemAvailable in /proc/meminfo"};
  check_memory_fits(1.5e9, m, "fits");
  EXPECT_TG_ERROR(check_memory_fits(12.3e9, m, "gpt train with --n-embd 4096"),
                  "gpt train with --n-embd 4096 needs about 12.30 GB, more than the 2.00 GB available "
                  "(MemAvailable in /proc/meminfo)");
  EXPECT_TG_ERROR(check_memory_fits(1e300, m, "huge"), "huge needs about");
  EXPECT_TG_ERROR(check_memory_fits(1e300, "against this machine"), "against this machine needs about");
}

}  // namespace
}  // namespace tg
