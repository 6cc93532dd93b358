#pragma once
// GPTTokenizer: the tokenizer a GPT speaks — characters (CharTokenizer, nanoGPT's
// shakespeare_char) or byte-level BPE (BpeTokenizer: GPT-2's, tiktoken's, any tokenizer.json) —
// and the files a checkpoint directory keeps it in:
//   tokenizer.json            a character tokenizer ({"type": "char", ...}) or Hugging Face's
//                             tokenizer.json (a user's tokenizer.json is kept byte for byte)
//   tokenizer.tiktoken        a tiktoken rank file, copied as given (GPT-2's pattern; encoded as
//                             tiktoken's encode_ordinary, as `tapegrad tokenizer encode` does)
//   vocab.json + merges.txt   GPT-2's original files, as Hugging Face's GPT-2 directories hold
//                             them: read, never written (vocab.json is an encoder checkpoint's
//                             file, so a GPT checkpoint written from them holds tokenizer.json)
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "models/tokenizers/char_tokenizer.h"

namespace tg::models {

class BpeTokenizer;  // models/tokenizers/bpe_tokenizer.h

inline constexpr const char* kTokenizerFile = "tokenizer.json";
inline constexpr const char* kTiktokenFile = "tokenizer.tiktoken";

class GPTTokenizer {
 public:
  /// A character tokenizer; `source` names it in messages.
  GPTTokenizer(CharTokenizer chars, std::string source = kTokenizerFile);

  /// `path` as a `tokenizer` option gives it (a tokenizer.json, a .tiktoken
  /// file, a directory holding tokenizer.json or vocab.json + merges.txt), or a checkpoint
  /// directory (from_checkpoint). tg::Error naming `path` when it holds no tokenizer.
  static GPTTokenizer load(const std::string& path);
  /// The tokenizer of checkpoint directory `dir` (its tokenizer.json, tokenizer.tiktoken, or
  /// vocab.json + merges.txt, in that order), or nothing when it has none.
  static std::optional<GPTTokenizer> from_checkpoint(const std::string& dir);

  int64_t vocab_size() const;
  /// The character tokenizer, or nullptr for a BPE.
  const CharTokenizer* chars() const { return chars_ ? &*chars_ : nullptr; }
  /// The BPE, or nullptr for characters.
  const BpeTokenizer* bpe() const { return bpe_.get(); }
  /// The file it was read from, for messages.
  const std::string& source() const { return source_; }

  /// text -> ids, as `tapegrad tokenizer encode` gives them for a BPE (on `threads` threads for a
  /// large text). A byte outside a character vocabulary is a tg::Error naming it.
  std::vector<int64_t> encode(std::string_view text, int threads = 1) const;
  /// ids -> text, byte for byte; an id outside the vocabulary is a tg::Error.
  std::string decode(const std::vector<int64_t>& ids) const;

  /// Encodes every text as `other` does: the same kind, tokens, merges, pre-tokenization and
  /// added tokens (whatever files they came from).
  bool same_as(const GPTTokenizer& other) const;

  /// The file a checkpoint keeps it in (kTokenizerFile or kTiktokenFile) and its bytes.
  const char* file_name() const { return ordinary_ ? kTiktokenFile : kTokenizerFile; }
  std::string file_bytes() const;

 private:
  GPTTokenizer() = default;
  static GPTTokenizer from_bpe(BpeTokenizer bpe, bool ordinary, std::string bytes, std::string source);
  static GPTTokenizer from_json_file(const std::string& path);

  std::optional<CharTokenizer> chars_;
  std::shared_ptr<const BpeTokenizer> bpe_;  // shared: a BpeTokenizer is move-only
  bool ordinary_ = false;                   // a .tiktoken: added tokens are ordinary text
  std::string bytes_;                       // the file as read (empty: written by to_tokenizer_json)
  std::string source_;
};

}  // namespace tg::models
