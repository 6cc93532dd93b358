// nanoGPT token files and language-model batches: round trips, malformed files, random windows
// (shapes, shift by one, range, reproducibility, errors) and consecutive evaluation windows.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "models/data/token_data.h"
#include "test_util.h"

namespace tg {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed at the end of the test.
using testing::TempDir;

void write_raw(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// 0, 1, ..., n-1 (as token ids), so a window's contents tell where it starts.
std::vector<uint16_t> iota_tokens(int64_t n) {
  std::vector<uint16_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[size_t(i)] = static_cast<uint16_t>(i);
  return t;
}

TEST(TokenData, RoundTripIsLittleEndianUint16) {
  TempDir dir("tokens");
  std::vector<uint16_t> ids = {0, 1, 255, 256, 0x1234, 65535};
  data::write_tokens(dir.file("a.bin"), ids);
  EXPECT_EQ(data::read_tokens(dir.file("a.bin")), ids);
  std::string bytes = read_file_bytes(dir.file("a.bin"));
  ASSERT_EQ(bytes.size(), 12u);
  EXPECT_EQ(static_cast<unsigned char>(bytes[8]), 0x34);  // low byte first
  EXPECT_EQ(static_cast<unsigned char>(bytes[9]), 0x12);
  // Hand-written bytes read as little-endian.
  write_raw(dir.file("b.bin"), std::string("\x01\x02\xff\x00", 4));
  EXPECT_EQ(data::read_tokens(dir.file("b.bin")), (std::vector<uint16_t>{0x0201, 0x00ff}));
  // Wider ids are checked, then written the same way.
  std::vector<int64_t> wide = {7, 65535, 0};
  data::write_tokens(dir.file("c.bin"), wide);
  EXPECT_EQ(data::read_tokens(dir.file("c.bin")), (std::vector<uint16_t>{7, 65535, 0}));
  std::vector<int64_t> too_big = {1, 65536};
  EXPECT_TG_ERROR(data::write_tokens(dir.file("d.bin"), too_big), "id 65536 at position 1 does not fit uint16");
  std::vector<int64_t> negative = {-1};
  EXPECT_TG_ERROR(data::write_tokens(dir.file("d.bin"), negative), "id -1");
  EXPECT_FALSE(fs::exists(dir.file("d.bin")));
  // An empty file is an empty token list.
  data::write_tokens(dir.file("e.bin"), std::vector<uint16_t>{});
  EXPECT_TRUE(data::read_tokens(dir.file("e.bin")).empty());
}

TEST(TokenData, MalformedFilesNameTheFile) {
  TempDir dir("tokens_bad");
  write_raw(dir.file("odd.bin"), "abc");
  EXPECT_TG_ERROR(data::read_tokens(dir.file("odd.bin")), dir.file("odd.bin") + " has 3 bytes, an odd count");
  EXPECT_TG_ERROR(data::read_tokens(dir.file("missing.bin")), dir.file("missing.bin") + " does not exist");
  EXPECT_TG_ERROR(data::read_tokens(dir.path.string()), "is a directory");
}

// Vocabularies beyond 65,536 (Llama 3, Qwen2): uint32 files, and batches of uint32 ids equal to
// those of the same ids as uint16.
TEST(TokenData, Uint32FilesAndBatches) {
  TempDir dir("tokens32");
  write_raw(dir.file("w.bin"), std::string("\x01\x02\x03\x00\xff\xff\x01\x00", 8));
  EXPECT_EQ(data::read_tokens32(dir.file("w.bin")), (std::vector<uint32_t>{0x030201, 0x1ffff}));
  write_raw(dir.file("six.bin"), "abcdef");
  EXPECT_TG_ERROR(data::read_tokens32(dir.file("six.bin")), "has 6 bytes, not a multiple of 4");
  const std::vector<uint16_t> narrow = iota_tokens(300);
  const std::vector<uint32_t> wide(narrow.begin(), narrow.end());
  Generator g16(5), g32(5);
  data::TokenBatch a = data::sample_batch(narrow, 16, 4, g16), b = data::sample_batch(wide, 16, 4, g32);
  EXPECT_EQ(a.x.to_vector(), b.x.to_vector());
  EXPECT_EQ(a.y.to_vector(), b.y.to_vector());
  data::WindowBatches w16(narrow, 32, 3), w32(wide, 32, 3);
  ASSERT_EQ(w16.num_batches(), w32.num_batches());
  for (int64_t i = 0; i < w16.num_batches(); ++i) EXPECT_EQ(w16.batch(i).y.to_vector(), w32.batch(i).y.to_vector());
  const std::vector<uint32_t> big = {128000, 5, 128001, 7, 9};
  EXPECT_EQ(data::sample_batch(big, 3, 1, g32).x.numel(), 3);
}

TEST(TokenData, AtomicWriteReplacesAndLeavesNoTemporary) {
  TempDir dir("atomic");
  write_file_atomically(dir.file("f.txt"), "first version, longer");
  write_file_atomically(dir.file("f.txt"), "second");
  EXPECT_EQ(read_file_bytes(dir.file("f.txt")), "second");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()), 1);
  EXPECT_TG_ERROR(write_file_atomically(dir.file("no/such/dir/f.txt"), "x"), "cannot write");
}

TEST(TokenData, SampleBatchShapesShiftAndRange) {
  const int64_t N = 100, T = 8, B = 16;
  std::vector<uint16_t> tokens = iota_tokens(N);
  Generator gen(42);
  data::TokenBatch batch = data::sample_batch(tokens, T, B, gen);
  EXPECT_EQ(batch.x.shape(), Shape({B, T}));
  EXPECT_EQ(batch.y.shape(), Shape({B, T}));
  EXPECT_EQ(batch.x.dtype(), DType::i64);
  EXPECT_EQ(batch.y.dtype(), DType::i64);
  const int64_t* x = batch.x.data<int64_t>();
  const int64_t* y = batch.y.data<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    int64_t start = x[b * T];
    EXPECT_GE(start, 0);
    EXPECT_LE(start, N - T - 1);  // the window and its last target fit
    for (int64_t t = 0; t < T; ++t) {
      EXPECT_EQ(x[b * T + t], start + t);      // contiguous
      EXPECT_EQ(y[b * T + t], start + t + 1);  // shifted by one
    }
  }
}

TEST(TokenData, SampleBatchIsReproducibleAndCoversStarts) {
  std::vector<uint16_t> tokens = iota_tokens(50);
  Generator a(7), b(7), c(8);
  data::TokenBatch ba = data::sample_batch(tokens, 4, 32, a);
  data::TokenBatch bb = data::sample_batch(tokens, 4, 32, b);
  data::TokenBatch bc = data::sample_batch(tokens, 4, 32, c);
  EXPECT_EQ(ba.x.to_vector(), bb.x.to_vector());
  EXPECT_NE(ba.x.to_vector(), bc.x.to_vector());
  EXPECT_EQ(a.offset(), 32u);  // one Philox block per window
  EXPECT_NE(data::sample_batch(tokens, 4, 32, a).x.to_vector(), ba.x.to_vector());  // the stream moves on

  // Exactly block_size + 1 tokens: the one window there is. Three starts: all of them appear.
  Generator g(1);
  data::TokenBatch one = data::sample_batch(iota_tokens(5), 4, 3, g);
  EXPECT_EQ(one.x.to_vector(), std::vector<double>({0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3}));
  std::set<double> starts;
  data::TokenBatch many = data::sample_batch(iota_tokens(7), 4, 300, g);
  for (int64_t i = 0; i < 300; ++i) starts.insert(many.x.at({i, 0}));
  EXPECT_EQ(starts, (std::set<double>{0, 1, 2}));
}

TEST(TokenData, SampleBatchErrors) {
  Generator gen(0);
  std::vector<uint16_t> tokens = iota_tokens(8);
  EXPECT_TG_ERROR(data::sample_batch(tokens, 8, 2, gen), "the data has 8 tokens, fewer than block_size + 1 = 9");
  EXPECT_TG_ERROR(data::sample_batch(tokens, 0, 2, gen), "block_size and batch_size must be positive");
  EXPECT_TG_ERROR(data::sample_batch(tokens, 2, 0, gen), "block_size and batch_size must be positive");
}

TEST(TokenData, WindowBatchesCoverEveryTargetOnce) {
  // 23 tokens = 22 targets = 4 windows of 5 + a window of 2; batches of 2 windows.
  std::vector<uint16_t> tokens = iota_tokens(23);
  data::WindowBatches windows(tokens, 5, 2);
  EXPECT_EQ(windows.num_windows(), 5);
  EXPECT_EQ(windows.num_batches(), 3);
  EXPECT_EQ(windows.num_targets(), 22);
  std::vector<double> targets;
  std::vector<Shape> shapes;
  data::TokenBatch batch;
  while (windows.next(batch)) {
    shapes.push_back(batch.x.shape());
    std::vector<double> x = batch.x.to_vector(), y = batch.y.to_vector();
    for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(y[i], x[i] + 1);
    targets.insert(targets.end(), y.begin(), y.end());
  }
  EXPECT_EQ(shapes, (std::vector<Shape>{{2, 5}, {2, 5}, {1, 2}}));
  std::vector<double> expected;
  for (int i = 1; i <= 22; ++i) expected.push_back(i);
  EXPECT_EQ(targets, expected);
  EXPECT_FALSE(windows.next(batch));
  windows.reset();
  EXPECT_TRUE(windows.next(batch));
  EXPECT_EQ(batch.x.at({1, 0}), 5);  // second window starts at block_size

  // An even split has no short window; an odd batch count leaves a smaller last full batch.
  std::vector<uint16_t> even = iota_tokens(16);
  data::WindowBatches w2(even, 5, 2);
  EXPECT_EQ(w2.num_windows(), 3);
  EXPECT_EQ(w2.batch(1).x.shape(), Shape({1, 5}));
  EXPECT_TG_ERROR(w2.batch(2), "batch 2 is outside [0, 2)");
  std::vector<uint16_t> one = iota_tokens(1);
  EXPECT_TG_ERROR(data::WindowBatches(one, 4, 1), "evaluation needs at least 2");
}

TEST(TokenData, RandpermIsAReproduciblePermutation) {
  Generator a(3), b(3);
  std::vector<int64_t> p = data::randperm(50, a);
  EXPECT_EQ(p, data::randperm(50, b));
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(sorted[size_t(i)], i);
  std::vector<int64_t> identity = sorted;
  EXPECT_NE(p, identity);
  EXPECT_NE(data::randperm(50, a), p);  // the generator moved on
  EXPECT_TRUE(data::randperm(0, a).empty());
}

}  // namespace
}  // namespace tg
