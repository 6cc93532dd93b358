#pragma once
// BpeTokenizer: byte-level BPE as GPT-2 defines it and as Hugging Face `tokenizers` and tiktoken
// run it. encode: added (special) tokens are split out of the text first (leftmost, longest on
// a tie, as HF does); each stretch between them is pre-tokenized by regex and each piece
// encoded by the BPE model. decode: the tokens' bytes concatenated, byte for byte (invalid
// UTF-8 included; HF would replace it with U+FFFD).
// Files: tokenizer_json.cpp (HF tokenizer.json, read and write), gpt2_files.cpp (vocab.json +
// merges.txt), tiktoken_file.cpp (.tiktoken ranks).
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "models/tokenizers/bpe_model.h"
#include "models/tokenizers/pretokenizer.h"

namespace tg::models {

/// A token matched in the text before pre-tokenization (HF's added_tokens; tiktoken's specials).
struct AddedToken {
  std::string content;  // the exact text, not byte-level mapped
  int32_t id = 0;
  bool special = true;
};

class BpeTokenizer {
 public:
  /// `patterns`: the pre-tokenization regexes applied in turn (each splits the pieces of the
  /// previous one; none: a stretch is one piece). `add_prefix_space`: a stretch not starting
  /// with a space gets one (HF ByteLevel's option). An added token's id may be a model id (its
  /// content then decodes as the model's token does) or lie beyond the model.
  BpeTokenizer(BpeModel model, std::vector<std::string> patterns, bool add_prefix_space,
               std::vector<AddedToken> added, const std::string& source);

  /// Hugging Face's `Tokenizer.encode(text).ids` (no BOS/EOS added): added tokens split out.
  std::vector<int32_t> encode(std::string_view text) const;
  /// tiktoken's `encode_ordinary`: added tokens are ordinary text.
  std::vector<int32_t> encode_ordinary(std::string_view text) const;
  /// The bytes of `ids` concatenated; an id with no token is a tg::Error naming it.
  std::string decode(std::span<const int32_t> ids) const;
  /// 1 + the largest id (model or added).
  int64_t vocab_size() const { return int64_t(pieces_.size()); }

  const BpeModel& model() const { return model_; }
  const std::vector<AddedToken>& added_tokens() const { return added_; }
  const std::vector<std::string>& patterns() const { return patterns_; }
  bool add_prefix_space() const { return add_prefix_space_; }

  /// Loads `path`: a tokenizer.json (any *.json), a .tiktoken file (pre-tokenized by
  /// `tiktoken_pattern`, a name of pattern_named() or a regex; `<|endoftext|>` takes the id after
  /// the last rank), or a directory holding tokenizer.json, or vocab.json + merges.txt.
  static BpeTokenizer load(const std::string& path, const std::string& tiktoken_pattern = "gpt2");

  /// tokenizer_json.cpp: Hugging Face's tokenizer.json (model BPE; pre-tokenizer ByteLevel, Split
  /// with a regex, or a Sequence of them; decoder ByteLevel). Errors name `source`.
  static BpeTokenizer from_tokenizer_json(const std::string& text, const std::string& source = "tokenizer.json");
  static BpeTokenizer load_tokenizer_json(const std::string& path);
  /// A tokenizer.json that `tokenizers.Tokenizer.from_file` loads and encodes with as here.
  std::string to_tokenizer_json() const;
  /// Writes to_tokenizer_json() to `path` atomically (temporary name, then rename).
  void save_tokenizer_json(const std::string& path) const;

  /// gpt2_files.cpp: GPT-2's vocab.json + merges.txt, pre-tokenized as HF's ByteLevel does;
  /// `<|endoftext|>`, when in vocab.json, is an added special token.
  static BpeTokenizer load_gpt2_files(const std::string& vocab_path, const std::string& merges_path);

  /// tiktoken_file.cpp: a .tiktoken rank file ("<base64 token> <rank>" per line, ranks 0..N-1
  /// each once), `pattern` a name of pattern_named() or a regex.
  static BpeTokenizer load_tiktoken(const std::string& path, const std::string& pattern = "gpt2");
  static BpeTokenizer from_tiktoken(const std::string& text, const std::string& pattern, const std::string& source);

 private:
  void encode_stretch(std::string_view text, std::vector<int32_t>& ids) const;

  BpeModel model_;
  std::vector<std::string> patterns_;
  std::vector<Pretokenizer> pretokenizers_;
  bool add_prefix_space_ = false;
  std::vector<AddedToken> added_;
  std::vector<std::string> pieces_;  // id -> bytes for decode
  std::vector<char> known_;          // id -> whether it has a token (ids may have holes)
};

}  // namespace tg::models
