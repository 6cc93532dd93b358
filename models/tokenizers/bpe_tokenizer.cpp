#include "models/tokenizers/bpe_tokenizer.h"

#include <filesystem>
#include <unordered_map>

#include "autograd/error.h"

namespace tg::models {

BpeTokenizer::BpeTokenizer(BpeModel model, std::vector<std::string> patterns, bool add_prefix_space,
                           std::vector<AddedToken> added, const std::string& source)
    : model_(std::move(model)), patterns_(std::move(patterns)), add_prefix_space_(add_prefix_space),
      added_(std::move(added)) {
  for (const std::string& p : patterns_) pretokenizers_.emplace_back(p, source);
  int64_t size = model_.size();
  for (const AddedToken& a : added_) {
    TG_CHECK(a.id >= 0, "{}: added token '{}' has a negative id {}", source, a.content, a.id);
    TG_CHECK(!a.content.empty(), "{}: added token {} is empty", source, a.id);
    size = std::max<int64_t>(size, int64_t(a.id) + 1);
  }
  pieces_.assign(size, std::string());
  known_.assign(size, 0);
  for (int32_t i = 0; i < model_.size(); ++i) {
    pieces_[i] = model_.token(i);
    known_[i] = 1;
  }
  for (const AddedToken& a : added_) {
    // An added token beyond the model decodes as its content; one inside the model as the model's
    // token (HF decodes the vocabulary's entry).
    if (!known_[a.id]) pieces_[a.id] = a.content;
    known_[a.id] = 1;
  }
}

void BpeTokenizer::encode_stretch(std::string_view text, std::vector<int32_t>& ids) const {
  if (text.empty()) return;
  std::string prefixed;
  if (add_prefix_space_ && text.front() != ' ') {
    prefixed = " ";
    prefixed += text;
    text = prefixed;
  }
  std::vector<std::string_view> pieces{text}, next;
  for (const Pretokenizer& p : pretokenizers_) {
    next.clear();
    for (std::string_view piece : pieces) p.split(piece, next);
    pieces.swap(next);
  }
  model_.encode_words(pieces, ids);  // a repeated word encoded once
}

std::vector<int32_t> BpeTokenizer::encode_ordinary(std::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  encode_stretch(text, ids);
  return ids;
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text) const {
  if (added_.empty()) return encode_ordinary(text);
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  // The next occurrence of each added token at or after `at` (npos: none left).
  std::vector<size_t> next(added_.size());
  for (size_t k = 0; k < added_.size(); ++k) next[k] = text.find(added_[k].content);
  size_t at = 0;
  while (at < text.size()) {
    size_t best = std::string_view::npos, best_k = 0;
    for (size_t k = 0; k < added_.size(); ++k) {
      if (next[k] != std::string_view::npos && next[k] < at) next[k] = text.find(added_[k].content, at);
      if (next[k] == std::string_view::npos) continue;
      if (next[k] < best || (next[k] == best && added_[k].content.size() > added_[best_k].content.size())) {
        best = next[k];
        best_k = k;
      }
    }
    if (best == std::string_view::npos) break;
    encode_stretch(text.substr(at, best - at), ids);
    ids.push_back(added_[best_k].id);
    at = best + added_[best_k].content.size();
  }
  if (at < text.size()) encode_stretch(text.substr(at), ids);
  return ids;
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids) const {
  std::string out;
  out.reserve(ids.size() * 4);
  for (size_t i = 0; i < ids.size(); ++i) {
    const int32_t id = ids[i];
    TG_CHECK(id >= 0 && id < int64_t(pieces_.size()) && known_[id],
             "BPE decode: id {} (at position {}) is not a token of this vocabulary of {}", id, i, pieces_.size());
    out += pieces_[id];
  }
  return out;
}

BpeTokenizer BpeTokenizer::load(const std::string& path, const std::string& tiktoken_pattern) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / "tokenizer.json", ec)) return load_tokenizer_json((dir / "tokenizer.json").string());
    if (fs::exists(dir / "vocab.json", ec) && fs::exists(dir / "merges.txt", ec))
      return load_gpt2_files((dir / "vocab.json").string(), (dir / "merges.txt").string());
    fail("{}: the directory holds neither tokenizer.json nor vocab.json + merges.txt", path);
  }
  TG_CHECK(fs::exists(path, ec), "{}: no such file or directory", path);
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".tiktoken") return load_tiktoken(path, tiktoken_pattern);
  if (ext == ".json") return load_tokenizer_json(path);
  fail("{}: not a tokenizer (expected a tokenizer.json, a .tiktoken file, or a directory holding tokenizer.json "
       "or vocab.json + merges.txt)",
       path);
}

}  // namespace tg::models
