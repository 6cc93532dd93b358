#pragma once
// Token files in nanoGPT's format (train.bin / val.bin: little-endian uint16 ids, nothing else;
// uint32 for vocabularies beyond 65,536, as `tapegrad tokenizer encode` writes them) and the
// batches a language model trains on: random contiguous windows (nanoGPT's get_batch) and, for
// evaluation, consecutive non-overlapping windows covering the file. Every function taking
// tokens takes uint16 or uint32 ids. Also the random helpers the data loaders share.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "autograd/random.h"
#include "autograd/tensor.h"
#include "nn/file_io.h"

namespace tg::data {

// --- token files ----------------------------------------------------------------------------
/// Reads a nanoGPT token file. tg::Error naming the file when it is missing or its byte count
/// is odd (not a whole number of uint16 ids).
std::vector<uint16_t> read_tokens(const std::string& path);
/// Reads a token file of little-endian uint32 ids (a vocabulary beyond 65,536); tg::Error naming
/// the file when its byte count is not a multiple of 4.
std::vector<uint32_t> read_tokens32(const std::string& path);
/// Writes ids as little-endian uint16 (atomically).
void write_tokens(const std::string& path, std::span<const uint16_t> tokens);
/// Same from wider ids; tg::Error when an id is outside [0, 65535].
void write_tokens(const std::string& path, std::span<const int64_t> ids);

// --- randomness ------------------------------------------------------------------------------
/// Uniform integer in [0, n) for draw `i` of a stream that starts at Philox block `offset` of
/// `seed` (one block per draw; a 64-bit multiply-shift, bias below 2^-40 for n < 2^24).
uint64_t philox_below(uint64_t seed, uint64_t offset, uint64_t i, uint64_t n);
/// A random permutation of 0..n-1 (Fisher–Yates), drawing n blocks from gen, as torch.randperm.
std::vector<int64_t> randperm(int64_t n, Generator& gen);

// --- batches ---------------------------------------------------------------------------------
/// Inputs and next-token targets of a language model.
struct TokenBatch {
  Tensor x;  ///< [B, T] i64
  Tensor y;  ///< [B, T] i64, y[b, t] = the token after x[b, t] (-1: no target)
  /// Packed documents (models/data/packed_documents.h), else undefined: i64 [B, T], the document of
  /// each token within its row and its position within its document.
  Tensor document_ids, position_ids;
};

/// B windows of T = block_size + 1 consecutive tokens at uniformly random starts in
/// [0, N - block_size), drawn from gen (B Philox blocks, so reproducible for a seed):
/// x = window[0:T], y = window[1:T+1], as nanoGPT's get_batch. tg::Error when the data has
/// fewer than block_size + 1 tokens.
TokenBatch sample_batch(std::span<const uint16_t> tokens, int64_t block_size, int64_t batch_size,
                        Generator& gen);
TokenBatch sample_batch(std::span<const uint32_t> tokens, int64_t block_size, int64_t batch_size,
                        Generator& gen);
/// The starts sample_batch draws for N = num_tokens (the same draws from gen).
std::vector<int64_t> sample_window_starts(int64_t num_tokens, int64_t block_size, int64_t batch_size, Generator& gen);
/// x, y [B, T] of the windows of T + 1 tokens at `starts` (T = block_size).
TokenBatch windows_at(std::span<const uint16_t> tokens, const std::vector<int64_t>& starts, int64_t block_size);
TokenBatch windows_at(std::span<const uint32_t> tokens, const std::vector<int64_t>& starts, int64_t block_size);

/// Consecutive non-overlapping windows for evaluation: window w predicts tokens
/// w·block_size + 1 .. (w+1)·block_size, so every token but the first is a target exactly once.
/// The last window is shorter when the file does not divide evenly; batches hold up to
/// batch_size windows of one length (the short window comes alone in the last batch).
/// Holds a view of `tokens`: keep them alive while iterating.
class WindowBatches {
 public:
  WindowBatches(std::span<const uint16_t> tokens, int64_t block_size, int64_t batch_size);
  WindowBatches(std::span<const uint32_t> tokens, int64_t block_size, int64_t batch_size);

  int64_t num_windows() const { return full_windows_ + (tail_ > 0); }
  int64_t num_batches() const { return full_batches_ + (tail_ > 0); }
  /// Targets over all batches (N - 1): weight each batch's mean loss by its y.numel() / this.
  int64_t num_targets() const;
  /// Batch i: x, y [b, T] with b <= batch_size (T = block_size except for the last window).
  TokenBatch batch(int64_t i) const;
  /// Sequential use: fills `out` with the next batch; false after the last.
  bool next(TokenBatch& out);
  void reset() { cursor_ = 0; }

 private:
  WindowBatches(int64_t num_tokens, int64_t block_size, int64_t batch_size);
  TokenBatch windows(const std::vector<int64_t>& starts, int64_t T) const;
  std::span<const uint16_t> tokens16_;  // one of the two holds the tokens
  std::span<const uint32_t> tokens32_;
  int64_t block_size_, batch_size_;
  int64_t full_windows_, full_batches_, tail_;  // tail_: targets in the short last window
  int64_t cursor_ = 0;
};

}  // namespace tg::data
