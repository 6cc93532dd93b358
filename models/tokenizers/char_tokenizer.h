#pragma once
// CharTokenizer: nanoGPT's shakespeare_char tokenizer. The vocabulary is the sorted set of the
// distinct bytes of a corpus (65 for tiny Shakespeare); id i is the i-th smallest byte. Text is
// handled as bytes, so UTF-8 text works (a multi-byte character is several tokens).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tg::models {

class CharTokenizer {
 public:
  /// An empty tokenizer (vocab_size 0); build one with from_text, from_bytes or load.
  CharTokenizer() { index(); }
  /// The sorted distinct bytes of `corpus` (which must not be empty).
  static CharTokenizer from_text(std::string_view corpus);
  /// A vocabulary given as its bytes (sorted and checked distinct here).
  static CharTokenizer from_bytes(std::vector<uint8_t> bytes);

  int64_t vocab_size() const { return int64_t(bytes_.size()); }
  /// text -> ids; a byte outside the vocabulary is a tg::Error naming it and its offset.
  std::vector<int64_t> encode(std::string_view text) const;
  /// The offset of the first byte of `text` outside the vocabulary, if any.
  std::optional<size_t> first_unknown(std::string_view text) const;
  /// "'x' (0x78)", "'\\n'", "byte 0xc3": a byte as messages show it.
  static std::string describe(uint8_t byte);
  /// ids -> text; an id outside [0, vocab_size) is a tg::Error.
  std::string decode(const std::vector<int64_t>& ids) const;
  /// The vocabulary's bytes, in id order.
  const std::vector<uint8_t>& bytes() const { return bytes_; }

  /// JSON {"type": "char", "bytes": [10, 32, ...]} (bytes as numbers, so any byte survives).
  std::string to_json() const;
  static CharTokenizer from_json(const std::string& text, const std::string& source = "tokenizer.json");
  /// Writes to_json() to `path` atomically (temporary name, then rename).
  void save(const std::string& path) const;
  static CharTokenizer load(const std::string& path);

 private:
  std::vector<uint8_t> bytes_;  // id -> byte
  int16_t id_of_[256];          // byte -> id, -1 when absent
  void index();
};

}  // namespace tg::models
