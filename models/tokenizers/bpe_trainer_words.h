#pragma once
// The words a BPE is trained on: training text pre-tokenized and counted as Hugging Face's
// `Tokenizer.train(files)` does it. A file is read line by line (each line keeps its '\n', and a
// "\r\n" stays whole); each line is split by the pre-tokenizer's regex on its own (so `\s+(?!\S)`
// never looks past the end of a line); each piece is one word, counted. Text must be valid UTF-8,
// as HF reads it (invalid UTF-8 is a tg::Error naming the file, line and byte). Counting runs on
// TBB threads (see set_num_threads), a few hundred KB of lines to a task.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "models/tokenizers/pretokenizer.h"

namespace tg::models {

/// A word (the bytes of one pre-token) and how often it occurs.
struct WordCount {
  std::string bytes;
  uint64_t count = 0;
};

class BpeWordCounter {
 public:
  /// `pattern`: the pre-tokenization regex (by default GPT-2's, as HF's ByteLevel pre-tokenizer
  /// with use_regex writes it).
  explicit BpeWordCounter(std::string pattern = kHfByteLevelPattern);

  /// Counts the words of `text` (the bytes of a file named `source`). `progress(done_bytes)` is
  /// called from one thread at a time as parts of the text finish.
  void add(std::string_view text, const std::string& source, const std::function<void(size_t)>& progress = {});

  /// The distinct words with their counts, sorted by bytes (the same for any number of threads).
  std::vector<WordCount> words() const;
  size_t distinct_words() const { return counts_.size(); }
  uint64_t total_words() const { return total_; }

  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using Counts = std::unordered_map<std::string, uint64_t, Hash, std::equal_to<>>;

 private:
  Pretokenizer pretokenizer_;
  Counts counts_;
  uint64_t total_ = 0;
};

/// The offset of the first byte of `text` that is not valid UTF-8 (a stray continuation byte,
/// a truncated sequence, an overlong form, a surrogate or a code point above U+10FFFF), or npos.
size_t find_invalid_utf8(std::string_view text);

}  // namespace tg::models
