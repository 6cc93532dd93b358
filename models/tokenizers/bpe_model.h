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
  /// Cost O(n log n) in the word's length n (a heap of candidate pairs over a linked list).
  void encode_word(std::string_view word, std::vector<int32_t>& ids, int32_t max_rank = INT32_MAX) const;

 private:
  struct Merge {
    int32_t rank;
    int32_t id;  // the merged token
  };
  static uint64_t key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  const Merge* find(int32_t a, int32_t b) const {
    auto it = pairs_.find(key(a, b));
    return it == pairs_.end() ? nullptr : &it->second;
  }
  void index(const std::string& source);

  std::vector<std::string> tokens_;
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> ids_;  // bytes -> id (own copies: the model copies safely)
  std::unordered_map<uint64_t, Merge> pairs_;
  std::vector<std::pair<int32_t, int32_t>> merges_;
  int32_t byte_ids_[256];  // single-byte token of each byte, -1 when absent
  bool ignore_merges_ = false;
};

}  // namespace tg::models
