#include "models/tokenizers/bpe_model.h"

#include <bit>
#include <cstring>
#include <queue>

#include "autograd/error.h"

namespace tg::models {

uint64_t bpe_word_hash(std::string_view w) {
  const auto* p = reinterpret_cast<const unsigned char*>(w.data());
  const size_t n = w.size();
  uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t v;
    std::memcpy(&v, p + i, 8);
    h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 31;
  }
  uint64_t v = 0;  // the last 0..7 bytes, one at a time (a memcpy of a variable size is a call)
  for (size_t k = 0; i + k < n; ++k) v |= uint64_t(p[i + k]) << (8 * k);
  h = (h ^ v) * 0x94D049BB133111EBull;
  return h ^ (h >> 29);
}

void BpeModel::index(const std::string& source) {
  size_t size = 16;
  while (size < 2 * tokens_.size()) size *= 2;  // at most half full
  id_slots_.assign(size, -1);
  id_hashes_.assign(size, 0);
  for (int b = 0; b < 256; ++b) byte_ids_[b] = -1;
  for (size_t i = 0; i < tokens_.size(); ++i) {
    TG_CHECK(!tokens_[i].empty(), "{}: token {} is empty", source, i);
    const uint64_t h = bpe_word_hash(tokens_[i]);
    size_t s = h & (size - 1);
    for (; id_slots_[s] >= 0; s = (s + 1) & (size - 1))
      TG_CHECK(id_hashes_[s] != h || tokens_[id_slots_[s]] != tokens_[i], "{}: tokens {} and {} are the same bytes",
               source, id_slots_[s], i);
    id_slots_[s] = int32_t(i);
    id_hashes_[s] = h;
    if (tokens_[i].size() == 1) byte_ids_[static_cast<unsigned char>(tokens_[i][0])] = int32_t(i);
  }
}

std::optional<int32_t> BpeModel::id_of(std::string_view bytes) const {
  const uint64_t h = bpe_word_hash(bytes);
  const size_t mask = id_slots_.size() - 1;
  for (size_t s = h & mask; id_slots_[s] >= 0; s = (s + 1) & mask)
    if (id_hashes_[s] == h && tokens_[id_slots_[s]] == bytes) return id_slots_[s];
  return std::nullopt;
}

void BpeModel::build_pair_table() {
  size_t size = 2;
  while (size < 2 * pairs_.size() + 2) size *= 2;  // at most half full
  pair_keys_.assign(size, kNoPair);
  pair_values_.assign(size, Merge{});
  pair_shift_ = 64 - std::countr_zero(size);
  for (const auto& [k, m] : pairs_) {
    size_t s = slot(k);
    while (pair_keys_[s] != kNoPair) s = (s + 1) & (size - 1);
    pair_keys_[s] = k;
    pair_values_[s] = m;
  }
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
  m.build_pair_table();
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
  m.build_pair_table();
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
  const int32_t n = int32_t(word.size());
  if (n > kShortWord) return encode_long_word(word, ids, max_rank);
  // A short word in place: symbols, and the rank and result of merging each with the next.
  int32_t sym[kShortWord], rank[kShortWord], merged[kShortWord];
  for (int32_t i = 0; i < n; ++i) {
    const unsigned char byte = word[i];
    sym[i] = byte_ids_[byte];
    TG_CHECK(sym[i] >= 0, "BPE: byte 0x{:02x} has no single-byte token in the vocabulary", int(byte));
  }
  auto rate = [&](int32_t i) {
    const Merge* m = find(sym[i], sym[i + 1]);
    rank[i] = m != nullptr && m->rank < max_rank ? m->rank : INT32_MAX;
    merged[i] = m != nullptr ? m->id : -1;
  };
  for (int32_t i = 0; i + 1 < n; ++i) rate(i);
  int32_t m = n;  // symbols left
  while (m > 1) {
    int32_t best = 0;  // the lowest rank, leftmost among equals
    for (int32_t i = 1; i + 1 < m; ++i)
      if (rank[i] < rank[best]) best = i;
    if (rank[best] == INT32_MAX) break;
    sym[best] = merged[best];
    for (int32_t i = best + 1; i + 1 < m; ++i) {
      sym[i] = sym[i + 1];
      rank[i] = rank[i + 1];
      merged[i] = merged[i + 1];
    }
    --m;
    if (best > 0) rate(best - 1);
    if (best + 1 < m) rate(best);
  }
  ids.insert(ids.end(), sym, sym + m);
}

void BpeModel::encode_long_word(std::string_view word, std::vector<int32_t>& ids, int32_t max_rank) const {
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

namespace {

// Equal bytes, compared inline (words are a few bytes: a call to memcmp would cost more).
bool same_short_bytes(const char* a, std::string_view b) {
  for (size_t k = 0; k < b.size(); ++k)
    if (a[k] != b[k]) return false;
  return true;
}

}  // namespace

void BpeModel::encode_words(const std::vector<std::string_view>& words, std::vector<int32_t>& ids) const {
  // word -> [begin, end) of its ids already in `ids`, by open addressing, compared by the full
  // hash and then the bytes (a word longer than 64 bytes is encoded each time: rare, and caching
  // it would hold its ids for little gain).
  struct Entry {
    uint64_t hash = 0;
    const char* data = nullptr;  // nullptr: an empty slot
    uint32_t size = 0, begin = 0, end = 0;
  };
  std::vector<Entry> table(4096);
  size_t used = 0;
  for (std::string_view w : words) {
    if (w.size() > 64 || ids.size() >= UINT32_MAX - 64) {
      encode_word(w, ids);
      continue;
    }
    const uint64_t h = bpe_word_hash(w);
    size_t mask = table.size() - 1, s = h & mask;
    for (; table[s].data != nullptr; s = (s + 1) & mask)
      if (table[s].hash == h && table[s].size == w.size() && same_short_bytes(table[s].data, w)) break;
    if (table[s].data != nullptr) {
      const size_t at = ids.size(), b = table[s].begin, e = table[s].end;
      ids.resize(at + (e - b));  // grows geometrically; then copies within the vector by index
      std::copy(ids.begin() + int64_t(b), ids.begin() + int64_t(e), ids.begin() + int64_t(at));
      continue;
    }
    const size_t begin = ids.size();
    encode_word(w, ids);
    table[s] = Entry{h, w.data(), uint32_t(w.size()), uint32_t(begin), uint32_t(ids.size())};
    if (++used * 2 > table.size()) {  // at most half full: rehash into twice the size
      std::vector<Entry> old(table.size() * 2);
      old.swap(table);
      mask = table.size() - 1;
      for (const Entry& e : old)
        if (e.data != nullptr) {
          size_t t = e.hash & mask;
          while (table[t].data != nullptr) t = (t + 1) & mask;
          table[t] = e;
        }
    }
  }
}

}  // namespace tg::models
