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

// A pair waiting to be merged: its count when queued and the words (indices) to rewrite.
struct PairCandidate {
  int64_t count;
  uint64_t pair;
  std::vector<int32_t> words;
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

// The training words as runs of token ids in one buffer; a merge rewrites a word in place.
struct TrainingWords {
  std::vector<int32_t> symbols;
  std::vector<uint32_t> begin, size;
  std::vector<int64_t> count;
};

// Merges every (a, b) in word w, left to right without overlap, into `merged`, as HF's
// Word::merge does; `change(pair, delta)` gets -1 for each pair of a neighbour with a or b that
// is gone and +1 for each pair with `merged` that is new (the merged pair itself is not counted
// down: HF leaves its count, and it never returns to the queue).
template <typename Change>
void merge_word(TrainingWords& t, int32_t w, int32_t a, int32_t b, int32_t merged, Change&& change) {
  int32_t* s = t.symbols.data() + t.begin[w];
  const uint32_t n = t.size[w];
  uint32_t read = 0, write = 0;
  while (read < n) {
    if (s[read] == a && read + 1 < n && s[read + 1] == b) {
      if (write > 0) {
        change(trainer_pair_key(s[write - 1], a), -1);
        change(trainer_pair_key(s[write - 1], merged), +1);
      }
      if (read + 2 < n) {
        change(trainer_pair_key(b, s[read + 2]), -1);
        change(trainer_pair_key(merged, s[read + 2]), +1);
      }
      s[write++] = merged;
      read += 2;
    } else {
      s[write++] = s[read++];
    }
  }
  t.size[w] = write;
}

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

  // The words as byte tokens, and the count of every adjacent pair with the words holding it.
  TrainingWords words;
  {
    const std::vector<WordCount> counted = counter_.words();
    size_t total = 0;
    for (const WordCount& w : counted) total += w.bytes.size();
    words.symbols.reserve(total);
    for (const WordCount& w : counted) {
      words.begin.push_back(uint32_t(words.symbols.size()));
      words.size.push_back(uint32_t(w.bytes.size()));
      words.count.push_back(int64_t(w.count));
      for (unsigned char c : w.bytes) words.symbols.push_back(byte_id[c]);
    }
  }
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int32_t>> pair_words;
  for (int32_t w = 0; w < int32_t(words.begin.size()); ++w) {
    const int32_t* s = words.symbols.data() + words.begin[w];
    for (uint32_t i = 0; i + 1 < words.size[w]; ++i) {
      const uint64_t key = trainer_pair_key(s[i], s[i + 1]);
      pair_count[key] += words.count[w];
      std::vector<int32_t>& holders = pair_words[key];
      if (holders.empty() || holders.back() != w) holders.push_back(w);
    }
  }
  std::vector<PairCandidate> queue;
  queue.reserve(pair_words.size());
  auto enqueue_changed = [&] {
    for (auto& [key, holders] : pair_words) {
      const int64_t count = pair_count[key];
      if (count > 0) {
        queue.push_back(PairCandidate{count, key, std::move(holders)});
        std::push_heap(queue.begin(), queue.end(), ranks_below);
      }
    }
    pair_words.clear();
  };
  enqueue_changed();

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
    for (const int32_t w : top.words)
      merge_word(words, w, a, b, merged, [&](uint64_t key, int delta) {
        pair_count[key] += delta * words.count[w];
        if (delta > 0) {
          std::vector<int32_t>& holders = pair_words[key];
          if (holders.empty() || holders.back() != w) holders.push_back(w);
        }
      });
    enqueue_changed();
    if (progress && (merges.size() % 64 == 0)) progress(int64_t(tokens.size()) - initial_size, most);
  }
  if (progress) progress(int64_t(tokens.size()) - initial_size, most);

  BpeModel model = BpeModel::from_merges(std::move(tokens), merges, /*ignore_merges=*/false, "BPE trainer");
  return BpeTokenizer(std::move(model), {kHfByteLevelPattern}, /*add_prefix_space=*/false, std::move(added),
                      "BPE trainer");
}

}  // namespace tg::models
