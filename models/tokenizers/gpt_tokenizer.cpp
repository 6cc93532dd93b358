#include "models/tokenizers/gpt_tokenizer.h"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "autograd/error.h"
#include "models/tokenizers/bpe_tokenizer.h"
#include "models/tokenizers/chunked_encode.h"
#include "nn/file_io.h"

namespace tg::models {
namespace fs = std::filesystem;

GPTTokenizer::GPTTokenizer(CharTokenizer chars, std::string source)
    : chars_(std::move(chars)), source_(std::move(source)) {}

GPTTokenizer GPTTokenizer::from_bpe(BpeTokenizer bpe, bool ordinary, std::string bytes, std::string source) {
  GPTTokenizer t;
  t.bpe_ = std::make_shared<const BpeTokenizer>(std::move(bpe));
  t.ordinary_ = ordinary;
  t.bytes_ = std::move(bytes);
  t.source_ = std::move(source);
  return t;
}

// A tokenizer.json: tapegrad's character tokenizer ({"type": "char"}) or Hugging Face's.
GPTTokenizer GPTTokenizer::from_json_file(const std::string& path) {
  std::string text = read_file_bytes(path);
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_discarded() && j.is_object() && j.contains("type") && j["type"] == "char")
    return GPTTokenizer(CharTokenizer::from_json(text, path), path);
  BpeTokenizer bpe = BpeTokenizer::from_tokenizer_json(text, path);
  return from_bpe(std::move(bpe), false, std::move(text), path);
}

std::optional<GPTTokenizer> GPTTokenizer::from_checkpoint(const std::string& dir) {
  const fs::path d(dir);
  std::error_code ec;
  auto has = [&](const char* name) { return fs::exists(fs::symlink_status(d / name, ec)); };
  if (has(kTokenizerFile)) return from_json_file((d / kTokenizerFile).string());
  if (has(kTiktokenFile)) {
    const std::string path = (d / kTiktokenFile).string();
    std::string text = read_file_bytes(path);
    BpeTokenizer bpe = BpeTokenizer::from_tiktoken(text, "gpt2", path);
    return from_bpe(std::move(bpe), true, std::move(text), path);
  }
  if (has("vocab.json") && has("merges.txt")) {
    const std::string vocab = (d / "vocab.json").string(), merges = (d / "merges.txt").string();
    return from_bpe(BpeTokenizer::load_gpt2_files(vocab, merges), false, "", vocab + " + merges.txt");
  }
  return std::nullopt;
}

GPTTokenizer GPTTokenizer::load(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    std::optional<GPTTokenizer> t = from_checkpoint(path);
    TG_CHECK(t.has_value(), "{}: the directory holds no tokenizer ({}, {}, or vocab.json + merges.txt)", path,
             kTokenizerFile, kTiktokenFile);
    return std::move(*t);
  }
  TG_CHECK(fs::exists(path, ec), "{}: no such file or directory", path);
  if (path.ends_with(".tiktoken")) {
    std::string text = read_file_bytes(path);
    BpeTokenizer bpe = BpeTokenizer::from_tiktoken(text, "gpt2", path);
    return from_bpe(std::move(bpe), true, std::move(text), path);
  }
  if (path.ends_with(".json")) return from_json_file(path);
  fail("{}: not a tokenizer (expected a tokenizer.json, a .tiktoken file, or a directory holding tokenizer.json or "
       "vocab.json + merges.txt)",
       path);
}

int64_t GPTTokenizer::vocab_size() const { return chars_ ? chars_->vocab_size() : bpe_->vocab_size(); }

std::vector<int64_t> GPTTokenizer::encode(std::string_view text, int threads) const {
  if (chars_) return chars_->encode(text);
  const std::vector<int32_t> ids = encode_in_chunks(*bpe_, text, ordinary_, threads);
  return std::vector<int64_t>(ids.begin(), ids.end());
}

std::string GPTTokenizer::decode(const std::vector<int64_t>& ids) const {
  if (chars_) return chars_->decode(ids);
  std::vector<int32_t> narrow(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    TG_CHECK(ids[i] >= 0 && ids[i] < bpe_->vocab_size(), "{}: id {} (at position {}) is outside [0, {})", source_,
             ids[i], i, bpe_->vocab_size());
    narrow[i] = int32_t(ids[i]);
  }
  return bpe_->decode(narrow);
}

bool GPTTokenizer::same_as(const GPTTokenizer& other) const {
  if (chars_ || other.chars_) return chars_ && other.chars_ && chars_->bytes() == other.chars_->bytes();
  const BpeTokenizer &a = *bpe_, &b = *other.bpe_;
  if (ordinary_ != other.ordinary_ || a.vocab_size() != b.vocab_size() || a.model().size() != b.model().size() ||
      a.patterns() != b.patterns() || a.add_prefix_space() != b.add_prefix_space() ||
      a.model().merges() != b.model().merges() || a.model().ignore_merges() != b.model().ignore_merges() ||
      a.added_tokens().size() != b.added_tokens().size())
    return false;
  for (int32_t i = 0; i < a.model().size(); ++i)
    if (a.model().token(i) != b.model().token(i)) return false;
  for (size_t k = 0; k < a.added_tokens().size(); ++k)
    if (a.added_tokens()[k].content != b.added_tokens()[k].content || a.added_tokens()[k].id != b.added_tokens()[k].id)
      return false;
  return true;
}

std::string GPTTokenizer::file_bytes() const {
  if (chars_) return chars_->to_json();
  return bytes_.empty() ? bpe_->to_tokenizer_json() : bytes_;
}

}  // namespace tg::models
