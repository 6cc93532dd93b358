#include "models/data/token_data.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <utility>

#include "autograd/available_memory.h"
#include "autograd/checked_size.h"
#include "autograd/error.h"
#include "ops/kernels/philox.h"

namespace tg::data {

namespace {

// The little-endian ids of a token file of `width` bytes per id.
template <class Id>
std::vector<Id> read_token_file(const std::string& path) {
  constexpr size_t width = sizeof(Id);
  std::error_code ec;
  TG_CHECK(std::filesystem::exists(path, ec), "read_tokens: {} does not exist", path);
  // The file's bytes and the tokens made of them are held at once.
  if (uintmax_t size = std::filesystem::file_size(path, ec); !ec)
    check_memory_fits(2.0 * double(size), fmt::format("read_tokens: reading {}", path));
  std::string bytes = read_file_bytes(path);
  TG_CHECK(bytes.size() % width == 0, "read_tokens: {} has {} bytes, {}; a token file holds little-endian uint{} ids ({} bytes each)",
           path, bytes.size(), width == 2 ? "an odd count" : "not a multiple of 4", 8 * width, width);
  std::vector<Id> tokens(bytes.size() / width);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  for (size_t i = 0; i < tokens.size(); ++i) {  // little-endian whatever the host order
    uint32_t v = 0;
    for (size_t k = 0; k < width; ++k) v |= uint32_t(p[width * i + k]) << (8 * k);
    tokens[i] = static_cast<Id>(v);
  }
  return tokens;
}

template <class Id>
TokenBatch windows_of(std::span<const Id> tokens, const std::vector<int64_t>& starts, int64_t T) {
  int64_t B = static_cast<int64_t>(starts.size());
  for (int64_t s : starts)
    TG_CHECK(T >= 0 && s >= 0 && s + T < int64_t(tokens.size()),
             "windows_at: a window of {} + 1 tokens at {} runs past the {} tokens", T, s, tokens.size());
  TokenBatch batch;
  batch.x = empty({B, T}, DType::i64), batch.y = empty({B, T}, DType::i64);
  int64_t* x = batch.x.data<int64_t>();
  int64_t* y = batch.y.data<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    const Id* w = tokens.data() + starts[size_t(b)];
    for (int64_t t = 0; t < T; ++t) {
      x[b * T + t] = w[t];
      y[b * T + t] = w[t + 1];
    }
  }
  return batch;
}

}  // namespace

std::vector<uint16_t> read_tokens(const std::string& path) { return read_token_file<uint16_t>(path); }

std::vector<uint32_t> read_tokens32(const std::string& path) { return read_token_file<uint32_t>(path); }

void write_tokens(const std::string& path, std::span<const uint16_t> tokens) {
  std::string bytes(tokens.size() * 2, '\0');
  for (size_t i = 0; i < tokens.size(); ++i) {
    bytes[2 * i] = static_cast<char>(tokens[i] & 0xff);
    bytes[2 * i + 1] = static_cast<char>(tokens[i] >> 8);
  }
  write_file_atomically(path, bytes);
}

void write_tokens(const std::string& path, std::span<const int64_t> ids) {
  std::vector<uint16_t> tokens(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    TG_CHECK(ids[i] >= 0 && ids[i] <= 65535,
             "write_tokens: id {} at position {} does not fit uint16 (a token file holds ids 0..65535)", ids[i],
             i);
    tokens[i] = static_cast<uint16_t>(ids[i]);
  }
  write_tokens(path, tokens);
}

uint64_t philox_below(uint64_t seed, uint64_t offset, uint64_t i, uint64_t n) {
  kernels::PhiloxBlock b = kernels::philox4x32(offset + i, seed);
  uint64_t bits = (uint64_t(b[0]) << 32) | b[1];
  __extension__ typedef unsigned __int128 u128;  // GCC/Clang; the product needs 128 bits
  return static_cast<uint64_t>((static_cast<u128>(bits) * n) >> 64);
}

std::vector<int64_t> randperm(int64_t n, Generator& gen) {
  TG_CHECK(n >= 0, "randperm: n must be non-negative, got {}", n);
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[size_t(i)] = i;
  uint64_t offset = gen.advance(static_cast<uint64_t>(n));
  for (int64_t i = n - 1; i > 0; --i) {
    uint64_t j = philox_below(gen.seed(), offset, uint64_t(i), uint64_t(i + 1));
    std::swap(perm[size_t(i)], perm[j]);
  }
  return perm;
}

TokenBatch windows_at(std::span<const uint16_t> tokens, const std::vector<int64_t>& starts, int64_t T) {
  return windows_of(tokens, starts, T);
}

TokenBatch windows_at(std::span<const uint32_t> tokens, const std::vector<int64_t>& starts, int64_t T) {
  return windows_of(tokens, starts, T);
}

TokenBatch sample_batch(std::span<const uint16_t> tokens, int64_t block_size, int64_t batch_size,
                        Generator& gen) {
  return windows_at(tokens, sample_window_starts(int64_t(tokens.size()), block_size, batch_size, gen), block_size);
}

TokenBatch sample_batch(std::span<const uint32_t> tokens, int64_t block_size, int64_t batch_size,
                        Generator& gen) {
  return windows_at(tokens, sample_window_starts(int64_t(tokens.size()), block_size, batch_size, gen), block_size);
}

std::vector<int64_t> sample_window_starts(int64_t N, int64_t block_size, int64_t batch_size, Generator& gen) {
  TG_CHECK(block_size >= 1 && batch_size >= 1,
           "sample_batch: block_size and batch_size must be positive, got {} and {}", block_size, batch_size);
  product_or_fail({batch_size, block_size, 2 * int64_t(sizeof(int64_t))}, "sample_batch: bytes of x and y");
  TG_CHECK(N > block_size,
           "sample_batch: the data has {} tokens, fewer than block_size + 1 = {} (one window and its "
           "next-token target)",
           N, block_size + 1);
  uint64_t offset = gen.advance(static_cast<uint64_t>(batch_size));
  std::vector<int64_t> starts(static_cast<size_t>(batch_size));
  for (int64_t b = 0; b < batch_size; ++b)
    starts[size_t(b)] = static_cast<int64_t>(philox_below(gen.seed(), offset, uint64_t(b), uint64_t(N - block_size)));
  return starts;
}

WindowBatches::WindowBatches(std::span<const uint16_t> tokens, int64_t block_size, int64_t batch_size)
    : WindowBatches(int64_t(tokens.size()), block_size, batch_size) {
  tokens16_ = tokens;
}

WindowBatches::WindowBatches(std::span<const uint32_t> tokens, int64_t block_size, int64_t batch_size)
    : WindowBatches(int64_t(tokens.size()), block_size, batch_size) {
  tokens32_ = tokens;
}

WindowBatches::WindowBatches(int64_t num_tokens, int64_t block_size, int64_t batch_size)
    : block_size_(block_size), batch_size_(batch_size) {
  TG_CHECK(block_size >= 1 && batch_size >= 1,
           "WindowBatches: block_size and batch_size must be positive, got {} and {}", block_size, batch_size);
  int64_t targets = num_tokens - 1;
  TG_CHECK(targets >= 1, "WindowBatches: the data has {} tokens; evaluation needs at least 2", num_tokens);
  full_windows_ = targets / block_size;
  tail_ = targets % block_size;
  full_batches_ = full_windows_ / batch_size + (full_windows_ % batch_size != 0);  // no overflow for any batch_size
}

TokenBatch WindowBatches::windows(const std::vector<int64_t>& starts, int64_t T) const {
  return tokens32_.empty() ? windows_at(tokens16_, starts, T) : windows_at(tokens32_, starts, T);
}

int64_t WindowBatches::num_targets() const { return full_windows_ * block_size_ + tail_; }

TokenBatch WindowBatches::batch(int64_t i) const {
  TG_CHECK(i >= 0 && i < num_batches(), "WindowBatches: batch {} is outside [0, {})", i, num_batches());
  if (i == full_batches_) return windows({full_windows_ * block_size_}, tail_);
  std::vector<int64_t> starts;
  // i < full_batches_, so i·batch_size < full_windows_; the end is clipped before it can overflow.
  const int64_t first = i * batch_size_, end = first + std::min(batch_size_, full_windows_ - first);
  for (int64_t w = first; w < end; ++w) starts.push_back(w * block_size_);
  return windows(starts, block_size_);
}

bool WindowBatches::next(TokenBatch& out) {
  if (cursor_ >= num_batches()) return false;
  out = batch(cursor_++);
  return true;
}

}  // namespace tg::data
