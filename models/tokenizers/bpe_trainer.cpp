#include "models/tokenizers/bpe_trainer.h"

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "autograd/error.h"
#include "models/tokenizers/byte_level.h"

namespace tg::models {
namespace {

uint64_t trainer_pair_key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
int32_t pair_left(uint64_t key) { return int32_t(key >> 32); }
int32_t pair_right(uint64_t key) { return int32_t(key & 0xFFFFFFFFu); }

// A pair waiting to be merged: its count when queued and the places where it was formed (the
// symbol index of its left token; some may since have merged otherwise and are skipped).
struct PairCandidate {
  int64_t count;
  uint64_t pair;
  std::vector<int32_t> places;
};

// The heap's order: the higher count first, then the smaller pair (first id, then second).
bool ranks_below(const PairCandidate& x, const PairCandidate& y) {
  return x.count != y.count ? x.count < y.count : x.pair > y.pair;
}

// The 256 bytes in the order of the code points that show them (HF sorts its alphabet by char).
std::vector<uint8_t> bytes_by_code_point() {
  std::vector<uint8_t> order(256);
  for (int b = 0; b < 256; ++b) order[b] = uint8_t(b);
  std::sort(order.begin(), order.end(), [](uint8_t x, uint8_t y) { return byte_to_unicode(x) < byte_to_unicode(y); });
  return order;
}

// Pair -> count, open addressing (the counts change millions of times; nothing is removed).
class PairCounts {
 public:
  PairCounts() { rehash(16); }
  int64_t& operator[](uint64_t key) {
    if ((used_ + 1) * 2 > keys_.size()) rehash(int(bits_) + 1);
    size_t i = slot(key);
    for (; keys_[i] != key; i = (i + 1) & mask_)
      if (keys_[i] == kEmpty) {
        keys_[i] = key;
        counts_[i] = 0;
        ++used_;
        break;
      }
    return counts_[i];
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);  // no pair: ids stay below 2^30
  size_t slot(uint64_t key) const { return size_t((key * 0x9E3779B97F4A7C15ull) >> (64 - bits_)); }
  void rehash(int bits) {
    std::vector<uint64_t> keys = std::move(keys_);
    std::vector<int64_t> counts = std::move(counts_);
    bits_ = unsigned(bits);
    mask_ = (size_t(1) << bits) - 1;
    keys_.assign(size_t(1) << bits, kEmpty);
    counts_.assign(size_t(1) << bits, 0);
    for (size_t j = 0; j < keys.size(); ++j)
      if (keys[j] != kEmpty) {
        size_t i = slot(keys[j]);
        while (keys_[i] != kEmpty) i = (i + 1) & mask_;
        keys_[i] = keys[j];
        counts_[i] = counts[j];
      }
  }
  std::vector<uint64_t> keys_;
  std::vector<int64_t> counts_;
  size_t used_ = 0, mask_ = 0;
  unsigned bits_ = 0;
};

// The words' tokens as linked symbols in one buffer (a merge keeps the left symbol's index and
// unlinks the right one), so a merge visits only the places of its pair.
struct Symbols {
  std::vector<int32_t> id;          // token id; -1 once merged into its left neighbour
  std::vector<int32_t> prev, next;  // neighbours in the word, -1 at its ends
  std::vector<int32_t> word;        // the word it belongs to
};

}  // namespace

BpeTrainer::BpeTrainer(BpeTrainerOptions options) : options_(std::move(options)) {
  std::unordered_set<std::string> initial;
  for (int b = 0; b < 256; ++b) initial.insert(std::string(1, char(b)));
  for (const std::string& special : options_.special_tokens) {
    TG_CHECK(!special.empty(), "BPE trainer: a special token is empty");
    std::optional<std::string> bytes = unicode_to_bytes(special);
    TG_CHECK(bytes.has_value(),
             "BPE trainer: the special token '{}' has a character that byte-level text cannot show (a space, a "
             "control character, or a code point outside GPT-2's bytes-to-unicode map, as 'Ġ' shows a space): "
             "tokenizer.json would not load back",
             special);
    special_bytes_.push_back(std::move(*bytes));
    initial.insert(special_bytes_.back());
  }
  TG_CHECK(options_.vocab_size >= int64_t(initial.size()),
           "BPE trainer: a vocabulary of {} tokens is too small: the 256 byte tokens and {} special token(s) already "
           "make {} (the vocabulary size counts them)",
           options_.vocab_size, options_.special_tokens.size(), initial.size());
  TG_CHECK(options_.vocab_size < (int64_t(1) << 30), "BPE trainer: a vocabulary of {} tokens is too large",
           options_.vocab_size);
}

void BpeTrainer::feed(std::string_view text, const std::string& source, const std::function<void(size_t)>& progress) {
  counter_.add(text, source, progress);
}

BpeTokenizer BpeTrainer::train(const std::function<void(int64_t, int64_t)>& progress) const {
  // The vocabulary: specials, the byte alphabet, then the merged tokens.
  std::vector<std::string> tokens;
  std::unordered_map<std::string, int32_t> ids;
  auto id_of = [&](std::string bytes) {
    auto [it, fresh] = ids.emplace(bytes, int32_t(tokens.size()));
    if (fresh) tokens.push_back(std::move(bytes));
    return it->second;
  };
  std::vector<AddedToken> added;
  for (size_t i = 0; i < special_bytes_.size(); ++i) {
    const int32_t id = id_of(special_bytes_[i]);
    const bool repeated = std::any_of(added.begin(), added.end(), [&](const AddedToken& t) { return t.id == id; });
    if (!repeated) added.push_back(AddedToken{options_.special_tokens[i], id, true});
  }
  int32_t byte_id[256];
  for (uint8_t b : bytes_by_code_point()) byte_id[b] = id_of(std::string(1, char(b)));
  const int64_t initial_size = int64_t(tokens.size());

  // The words' symbols; every adjacent pair counted (times its word's count) and placed.
  Symbols sym;
  std::vector<int64_t> word_count;
  {
    const std::vector<WordCount> counted = counter_.words();
    size_t total = 0;
    for (const WordCount& w : counted) total += w.bytes.size();
    TG_CHECK(total < (size_t(1) << 31), "BPE trainer: {} bytes of distinct words is beyond what it indexes (2 GiB)",
             total);
    for (std::vector<int32_t>* v : {&sym.id, &sym.prev, &sym.next, &sym.word}) v->reserve(total);
    for (const WordCount& w : counted) {
      const int32_t first = int32_t(sym.id.size()), index = int32_t(word_count.size());
      word_count.push_back(int64_t(w.count));
      for (size_t i = 0; i < w.bytes.size(); ++i) {
        sym.id.push_back(byte_id[static_cast<unsigned char>(w.bytes[i])]);
        sym.prev.push_back(i == 0 ? -1 : first + int32_t(i) - 1);
        sym.next.push_back(i + 1 == w.bytes.size() ? -1 : first + int32_t(i) + 1);
        sym.word.push_back(index);
      }
    }
  }
  PairCounts pair_count;
  std::vector<std::pair<uint64_t, int32_t>> formed;  // (pair, place) formed since the last queueing
  for (int32_t i = 0; i < int32_t(sym.id.size()); ++i)
    if (sym.next[i] >= 0) {
      const uint64_t key = trainer_pair_key(sym.id[i], sym.id[sym.next[i]]);
      pair_count[key] += word_count[sym.word[i]];
      formed.emplace_back(key, i);
    }
  std::vector<PairCandidate> queue;
  // Queues each pair formed with its places (HF queues a pair with the words where it formed).
  auto enqueue_formed = [&] {
    std::sort(formed.begin(), formed.end());
    for (size_t i = 0; i < formed.size();) {
      size_t j = i;
      std::vector<int32_t> places;
      for (; j < formed.size() && formed[j].first == formed[i].first; ++j)
        if (places.empty() || places.back() != formed[j].second) places.push_back(formed[j].second);
      const int64_t count = pair_count[formed[i].first];
      if (count > 0) {
        queue.push_back(PairCandidate{count, formed[i].first, std::move(places)});
        std::push_heap(queue.begin(), queue.end(), ranks_below);
      }
      i = j;
    }
    formed.clear();
  };
  enqueue_formed();

  // The merges, best pair first.
  std::vector<std::pair<int32_t, int32_t>> merges;
  std::unordered_set<uint64_t> merged_pairs;
  const int64_t most = options_.vocab_size - initial_size;
  while (int64_t(tokens.size()) < options_.vocab_size && !queue.empty()) {
    std::pop_heap(queue.begin(), queue.end(), ranks_below);
    PairCandidate top = std::move(queue.back());
    queue.pop_back();
    const int64_t now = pair_count[top.pair];
    if (top.count != now) {  // stale: requeue with the count it has now
      top.count = now;
      queue.push_back(std::move(top));
      std::push_heap(queue.begin(), queue.end(), ranks_below);
      continue;
    }
    if (top.count < 1 || uint64_t(top.count) < options_.min_frequency) break;
    const int32_t a = pair_left(top.pair), b = pair_right(top.pair);
    const int32_t merged = id_of(tokens[a] + tokens[b]);
    // HF can queue one pair twice when a merge remakes an existing token, and then lists the pair
    // again; a tokenizer.json holds each pair once, so the repeat is left out of the list.
    if (merged_pairs.insert(top.pair).second) merges.emplace_back(a, b);
    // Left to right within each word, without overlap, as HF's Word::merge: a place whose pair is
    // gone (merged another way, or the right half of an earlier place here) is skipped. The
    // neighbours' pairs change; the merged pair's own count is left as HF leaves it (it is never
    // queued again).
    for (const int32_t p : top.places) {
      const int32_t q = sym.next[p];
      if (sym.id[p] != a || q < 0 || sym.id[q] != b) continue;
      const int64_t c = word_count[sym.word[p]];
      const int32_t left = sym.prev[p], right = sym.next[q];
      if (left >= 0) {
        pair_count[trainer_pair_key(sym.id[left], a)] -= c;
        const uint64_t key = trainer_pair_key(sym.id[left], merged);
        pair_count[key] += c;
        formed.emplace_back(key, left);
      }
      if (right >= 0) {
        pair_count[trainer_pair_key(b, sym.id[right])] -= c;
        const uint64_t key = trainer_pair_key(merged, sym.id[right]);
        pair_count[key] += c;
        formed.emplace_back(key, p);
        sym.prev[right] = p;
      }
      sym.id[p] = merged;
      sym.next[p] = right;
      sym.id[q] = -1;
    }
    enqueue_formed();
    if (progress && merges.size() % 64 == 0 && int64_t(tokens.size()) < options_.vocab_size)
      progress(int64_t(tokens.size()) - initial_size, most);
  }
  if (progress) progress(int64_t(tokens.size()) - initial_size, most);

  BpeModel model = BpeModel::from_merges(std::move(tokens), merges, /*ignore_merges=*/false, "BPE trainer");
  return BpeTokenizer(std::move(model), {kHfByteLevelPattern}, /*add_prefix_space=*/false, std::move(added),
                      "BPE trainer");
}

}  // namespace tg::models
