#pragma once
// BpeModel: byte-level BPE inside one pre-token. A token is a byte string; a word starts as its
// bytes' single-byte tokens and adjacent pairs are merged, lowest rank first and leftmost first
// among equal ranks, until no adjacent pair has a merge. This is Hugging Face's BPE model (rank
// = a merge's line in merges) and tiktoken's (rank of a pair = the rank of the concatenated
// token, every split of a token counting); both are built here into one pair table.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tg::models {
/// A 64-bit hash of a word's bytes (words are short: a few loads and multiplies).
uint64_t bpe_word_hash(std::string_view word);
}  // namespace tg::models
#include <utility>
#include <vector>

namespace tg::models {

class BpeModel {
 public:
  /// Hugging Face's model: `tokens` is id -> bytes (distinct), `merges` the pairs of ids in rank
  /// order; the concatenation of each pair must be a token. `where(i)` names merge i's place in
  /// its file ("merges.txt:12") for errors. With `ignore_merges` a word that is a token whole is
  /// that token (HF's option of that name).
  static BpeModel from_merges(std::vector<std::string> tokens, const std::vector<std::pair<int32_t, int32_t>>& merges,
                              bool ignore_merges, const std::string& source);
  /// tiktoken's model: `tokens` is rank -> bytes (distinct); any adjacent pair whose concatenation
  /// is a token merges at that token's rank, and a word that is a token whole is that token.
  static BpeModel from_ranks(std::vector<std::string> tokens, const std::string& source);

  int32_t size() const { return int32_t(tokens_.size()); }
  /// The bytes of token `id` (0 <= id < size()).
  const std::string& token(int32_t id) const { return tokens_[id]; }
  std::optional<int32_t> id_of(std::string_view bytes) const;
  bool ignore_merges() const { return ignore_merges_; }
  /// The merges in rank order, as Hugging Face's tokenizer.json lists them. For a model from
  /// ranks: each token's two halves as BPE with the lower ranks produces them (the conversion
  /// Hugging Face's transformers uses); a token no lower merge reaches has none.
  const std::vector<std::pair<int32_t, int32_t>>& merges() const { return merges_; }

  /// Appends the tokens of `word` (the bytes of one pre-token) to `ids`. Merges of rank >=
  /// `max_rank` are not used. A byte with no single-byte token is a tg::Error.
  /// Cost O(n log n) in the word's length n (a heap of candidate pairs over a linked list; a
  /// short word is merged in place, O(n²) with n <= kShortWord, without allocating).
  void encode_word(std::string_view word, std::vector<int32_t>& ids, int32_t max_rank = INT32_MAX) const;
  /// encode_word of each word in turn, a repeated word (" the") encoded once: what tiktoken's and
  /// Hugging Face's caches of word -> ids do, the cache living for this call only (so encoding
  /// is thread-safe). The words may point anywhere; they must outlive the call.
  void encode_words(const std::vector<std::string_view>& words, std::vector<int32_t>& ids) const;
  static constexpr int32_t kShortWord = 32;

 private:
  struct Merge {
    int32_t rank;
    int32_t id;  // the merged token
  };
  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  // The pair table: open addressing over a power-of-two table (the unordered_map pairs_ builds
  // it; lookups, the merge loop's inner step, go here).
  static constexpr uint64_t kNoPair = ~uint64_t(0);
  size_t slot(uint64_t k) const { return size_t((k * 0x9E3779B97F4A7C15ull) >> pair_shift_); }
  const Merge* find(int32_t a, int32_t b) const {
    const uint64_t k = key(a, b);
    for (size_t s = slot(k);; s = (s + 1) & (pair_keys_.size() - 1)) {
      if (pair_keys_[s] == k) return &pair_values_[s];
      if (pair_keys_[s] == kNoPair) return nullptr;
    }
  }
  void index(const std::string& source);
  void build_pair_table();
  void encode_long_word(std::string_view word, std::vector<int32_t>& ids, int32_t max_rank) const;

  std::vector<std::string> tokens_;
  // bytes -> id by open addressing over the tokens' hashes (a table of ids into tokens_, -1 empty).
  std::vector<int32_t> id_slots_;
  std::vector<uint64_t> id_hashes_;
  std::unordered_map<uint64_t, Merge> pairs_;
  std::vector<uint64_t> pair_keys_{kNoPair};  // kNoPair: an empty slot
  std::vector<Merge> pair_values_{Merge{}};
  int pair_shift_ = 63;  // 64 - log2(table size)
  std::vector<std::pair<int32_t, int32_t>> merges_;
  int32_t byte_ids_[256];  // single-byte token of each byte, -1 when absent
  bool ignore_merges_ = false;
};

}  // namespace tg::models
