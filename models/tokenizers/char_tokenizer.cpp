#include "models/tokenizers/char_tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>

#include "autograd/error.h"
#include "nn/file_io.h"

namespace tg::models {
// 'a' for printable ASCII, '\n' and friends by name, else the byte in hex.
std::string CharTokenizer::describe(uint8_t c) {
  if (c == '\n') return "'\\n'";
  if (c == '\t') return "'\\t'";
  if (c == '\r') return "'\\r'";
  if (c < 128 && std::isprint(c)) return fmt::format("'{}' (0x{:02x})", char(c), c);
  return fmt::format("byte 0x{:02x}", c);
}

void CharTokenizer::index() {
  std::fill(std::begin(id_of_), std::end(id_of_), int16_t(-1));
  for (size_t i = 0; i < bytes_.size(); ++i) id_of_[bytes_[i]] = int16_t(i);
}

CharTokenizer CharTokenizer::from_text(std::string_view corpus) {
  TG_CHECK(!corpus.empty(), "CharTokenizer: cannot build a vocabulary from an empty corpus");
  bool seen[256] = {};
  for (char c : corpus) seen[uint8_t(c)] = true;
  std::vector<uint8_t> bytes;
  for (int c = 0; c < 256; ++c)
    if (seen[c]) bytes.push_back(uint8_t(c));
  return from_bytes(std::move(bytes));
}

CharTokenizer CharTokenizer::from_bytes(std::vector<uint8_t> bytes) {
  TG_CHECK(!bytes.empty(), "CharTokenizer: the vocabulary is empty");
  std::sort(bytes.begin(), bytes.end());
  auto dup = std::adjacent_find(bytes.begin(), bytes.end());
  TG_CHECK(dup == bytes.end(), "CharTokenizer: {} appears twice in the vocabulary", describe(*dup));
  CharTokenizer t;
  t.bytes_ = std::move(bytes);
  t.index();
  return t;
}

std::vector<int64_t> CharTokenizer::encode(std::string_view text) const {
  TG_CHECK(!bytes_.empty(), "CharTokenizer: encode on an empty tokenizer");
  std::vector<int64_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    int16_t id = id_of_[uint8_t(text[i])];
    TG_CHECK(id >= 0, "CharTokenizer: character {} at offset {} is not in the vocabulary of {} characters",
             describe(uint8_t(text[i])), i, bytes_.size());
    ids[i] = id;
  }
  return ids;
}

std::optional<size_t> CharTokenizer::first_unknown(std::string_view text) const {
  for (size_t i = 0; i < text.size(); ++i)
    if (id_of_[uint8_t(text[i])] < 0) return i;
  return std::nullopt;
}

std::string CharTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out(ids.size(), '\0');
  for (size_t i = 0; i < ids.size(); ++i) {
    TG_CHECK(ids[i] >= 0 && ids[i] < vocab_size(), "CharTokenizer: id {} at index {} is outside [0, {})", ids[i],
             i, vocab_size());
    out[i] = char(bytes_[size_t(ids[i])]);
  }
  return out;
}

std::string CharTokenizer::to_json() const {
  nlohmann::json j;
  j["type"] = "char";
  j["bytes"] = bytes_;
  return j.dump() + "\n";
}

CharTokenizer CharTokenizer::from_json(const std::string& text, const std::string& source) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  TG_CHECK(!j.is_discarded() && j.is_object(), "CharTokenizer: {} is not a JSON object", source);
  // Not j.value("type", ""): it throws nlohmann's type_error when "type" is not a string.
  TG_CHECK(j.contains("type") && j["type"] == "char", "CharTokenizer: {}: \"type\" must be \"char\"", source);
  TG_CHECK(j.contains("bytes") && j["bytes"].is_array(), "CharTokenizer: {}: \"bytes\" must be an array", source);
  std::vector<uint8_t> bytes;
  for (const auto& b : j["bytes"]) {
    TG_CHECK(b.is_number_unsigned() && b.get<uint64_t>() < 256,
             "CharTokenizer: {}: \"bytes\" holds {}, not a byte value 0..255", source, b.dump());
    bytes.push_back(uint8_t(b.get<uint64_t>()));
  }
  try {
    return from_bytes(std::move(bytes));
  } catch (const Error& e) {
    fail("{} (in {})", e.what(), source);
  }
}

void CharTokenizer::save(const std::string& path) const {
  TG_CHECK(!bytes_.empty(), "CharTokenizer: cannot save an empty tokenizer to {}", path);
  write_file_atomically(path, to_json());
}

CharTokenizer CharTokenizer::load(const std::string& path) {
  return from_json(read_file_bytes(path), path);
}

}  // namespace tg::models
