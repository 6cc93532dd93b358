#pragma once
// BpeTrainer: a byte-level BPE learned from text, merge for merge as Hugging Face's `BpeTrainer`
// trains a `Tokenizer(BPE())` with the `ByteLevel(add_prefix_space=False)` pre-tokenizer and
// `initial_alphabet=ByteLevel.alphabet()` on the same files:
//   - ids: the special tokens first (in the order given, a repeat skipped), then the 256
//     single-byte tokens ordered by the code point that shows them (GPT-2's bytes-to-unicode:
//     '!'..'~', '¡'..'¬', '®'..'ÿ', then U+0100.. for the rest: "Ġ", a space, is 188 + 32), then
//     each merge's new token; a token already present (a special token, or the same bytes made
//     by another pair) keeps its id.
//   - words: bpe_trainer_words.h (line by line, GPT-2's regex, counted).
//   - merges: the pair of adjacent tokens with the highest count over all words (a word counts
//     as often as it occurs) is merged next; among equal counts the pair with the smaller ids
//     (first id, then second) wins — HF's order, so the merges come out the same. Merging stops
//     when the vocabulary has vocab_size tokens, when no pair is left, or when the best count is
//     below min_frequency.
//   - the pair counts are updated incrementally: a merge visits only the places where its pair
//     was formed (the words' tokens are linked symbols), left to right within a word without
//     overlap as HF's Word::merge, and changes the counts of the neighbouring pairs; candidates
//     wait in a max-heap whose stale entries are refreshed when they reach the top (HF's lazy
//     queue; an entry carries the places where its pair formed, as HF's carries the words).
// Cost: the words are counted once (TBB threads); a merge costs O(its places), never a pass over
// all words, all pairs, or the whole of a long word (HF rewrites every word holding the pair:
// a 1 MB word without spaces costs it a pass of the word per merge).
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "models/tokenizers/bpe_tokenizer.h"
#include "models/tokenizers/bpe_trainer_words.h"

namespace tg::models {

struct BpeTrainerOptions {
  /// Tokens in the trained vocabulary, the special tokens and the 256 byte tokens included
  /// (>= their number). HF's vocab_size.
  int64_t vocab_size = 30000;
  /// A pair occurring fewer times is not merged (HF's min_frequency; 0: any pair occurring).
  uint64_t min_frequency = 0;
  /// Added tokens, split out of the text when encoding; never learned from the text.
  std::vector<std::string> special_tokens;
};

class BpeTrainer {
 public:
  /// Checks the options (a tg::Error for a vocab_size below the special and byte tokens, an
  /// empty special token or one that byte-level text cannot show).
  explicit BpeTrainer(BpeTrainerOptions options);

  /// Counts the words of `text` (a file's bytes; `source` names it in errors). See BpeWordCounter.
  void feed(std::string_view text, const std::string& source, const std::function<void(size_t)>& progress = {});
  const BpeWordCounter& word_counter() const { return counter_; }

  /// Learns the merges from the words fed so far. `progress(merges_done, merges_at_most)`.
  /// The tokenizer: that model, GPT-2's pre-tokenization (HF's ByteLevel with use_regex), the
  /// special tokens as added tokens; its to_tokenizer_json() is the file HF would save.
  BpeTokenizer train(const std::function<void(int64_t, int64_t)>& progress = {}) const;

  const BpeTrainerOptions& options() const { return options_; }

 private:
  BpeTrainerOptions options_;
  std::vector<std::string> special_bytes_;  // each special token's bytes (its content read through the byte map)
  BpeWordCounter counter_;
};

}  // namespace tg::models
