#include "models/tokenizers/bpe_model.h"

#include <queue>

#include "autograd/error.h"

namespace tg::models {

void BpeModel::index(const std::string& source) {
  ids_.clear();
  ids_.reserve(tokens_.size());
  for (int b = 0; b < 256; ++b) byte_ids_[b] = -1;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    TG_CHECK(!tokens_[i].empty(), "{}: token {} is empty", source, i);
    auto [it, fresh] = ids_.emplace(tokens_[i], int32_t(i));
    TG_CHECK(fresh, "{}: tokens {} and {} are the same bytes", source, it->second, i);
    if (tokens_[i].size() == 1) byte_ids_[static_cast<unsigned char>(tokens_[i][0])] = int32_t(i);
  }
}

std::optional<int32_t> BpeModel::id_of(std::string_view bytes) const {
  auto it = ids_.find(bytes);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

BpeModel BpeModel::from_merges(std::vector<std::string> tokens, const std::vector<std::pair<int32_t, int32_t>>& merges,
                               bool ignore_merges, const std::string& source) {
  BpeModel m;
  m.tokens_ = std::move(tokens);
  m.ignore_merges_ = ignore_merges;
  m.index(source);
  m.pairs_.reserve(merges.size() * 2);
  for (size_t r = 0; r < merges.size(); ++r) {
    const auto [a, b] = merges[r];
    TG_CHECK(a >= 0 && a < m.size() && b >= 0 && b < m.size(), "{}: merge {} names id {} or {} outside [0, {})", source, r,
             a, b, m.size());
    const std::optional<int32_t> id = m.id_of(m.tokens_[a] + m.tokens_[b]);
    TG_CHECK(id.has_value(), "{}: merge {} gives a token that is not in the vocabulary", source, r);
    auto [it, fresh] = m.pairs_.emplace(key(a, b), Merge{int32_t(r), *id});
    TG_CHECK(fresh, "{}: merges {} and {} are the same pair", source, it->second.rank, r);
  }
  m.merges_ = merges;
  return m;
}

BpeModel BpeModel::from_ranks(std::vector<std::string> tokens, const std::string& source) {
  BpeModel m;
  m.tokens_ = std::move(tokens);
  m.ignore_merges_ = true;
  m.index(source);
  for (int32_t r = 0; r < m.size(); ++r) {
    const std::string_view t = m.tokens_[r];
    for (size_t cut = 1; cut < t.size(); ++cut) {
      const std::optional<int32_t> a = m.id_of(t.substr(0, cut)), b = m.id_of(t.substr(cut));
      if (a && b) m.pairs_.emplace(key(*a, *b), Merge{r, r});
    }
  }
  // Hugging Face's form of the same model: token r's merge is the two parts BPE below rank r
  // leaves (so the merges come out in rank order).
  std::vector<int32_t> parts;
  for (int32_t r = 0; r < m.size(); ++r) {
    if (m.tokens_[r].size() < 2) continue;
    parts.clear();
    m.encode_word(m.tokens_[r], parts, r);
    if (parts.size() == 2) m.merges_.emplace_back(parts[0], parts[1]);
  }
  return m;
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& ids, int32_t max_rank) const {
  if (word.empty()) return;
  if (ignore_merges_ && max_rank == INT32_MAX) {
    if (std::optional<int32_t> id = id_of(word)) {
      ids.push_back(*id);
      return;
    }
  }
  // Symbols as a doubly linked list over the word's bytes; a merged-away symbol has id -1.
  const int32_t n = int32_t(word.size());
  std::vector<int32_t> sym(n), prev(n), next(n);
  for (int32_t i = 0; i < n; ++i) {
    const unsigned char byte = word[i];
    sym[i] = byte_ids_[byte];
    TG_CHECK(sym[i] >= 0, "BPE: byte 0x{:02x} has no single-byte token in the vocabulary", int(byte));
    prev[i] = i - 1;
    next[i] = i + 1 < n ? i + 1 : -1;
  }
  if (n == 1) {
    ids.push_back(sym[0]);
    return;
  }
  // Candidates keyed (rank, position): the heap's top is the lowest rank, leftmost among equals.
  // A candidate goes stale when a neighbour merges; it is checked against the list when popped.
  using Candidate = uint64_t;
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](int32_t left) {
    const int32_t right = next[left];
    if (right < 0) return;
    const Merge* m = find(sym[left], sym[right]);
    if (m != nullptr && m->rank < max_rank) heap.push((uint64_t(uint32_t(m->rank)) << 32) | uint32_t(left));
  };
  for (int32_t i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    const int32_t rank = int32_t(top >> 32), left = int32_t(uint32_t(top));
    if (sym[left] < 0 || next[left] < 0) continue;
    const int32_t right = next[left];
    const Merge* m = find(sym[left], sym[right]);
    if (m == nullptr || m->rank != rank) continue;  // stale
    sym[left] = m->id;
    sym[right] = -1;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    if (prev[left] >= 0) push(prev[left]);
    push(left);
  }
  for (int32_t i = 0; i >= 0; i = next[i]) ids.push_back(sym[i]);
}

}  // namespace tg::models
