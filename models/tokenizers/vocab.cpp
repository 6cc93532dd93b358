#include "models/tokenizers/vocab.h"

#include <nlohmann/json.hpp>

#include "autograd/error.h"
#include "models/data/token_data.h"

namespace tg::data {

Vocab::Vocab(std::vector<std::string> tokens, std::string pad_token, std::string unk_token)
    : tokens_(std::move(tokens)) {
  for (size_t i = 0; i < tokens_.size(); ++i) {
    bool fresh = ids_.emplace(tokens_[i], static_cast<int64_t>(i)).second;
    TG_CHECK(fresh, "Vocab: token '{}' appears twice (ids {} and {})", tokens_[i], ids_[tokens_[i]], i);
  }
  auto find = [&](const std::string& t, const char* what) {
    auto it = ids_.find(t);
    TG_CHECK(it != ids_.end(), "Vocab: the {} token '{}' is not in the vocabulary", what, t);
    return it->second;
  };
  pad_id_ = find(pad_token, "padding");
  if (!unk_token.empty()) unk_id_ = find(unk_token, "unknown");
}

int64_t Vocab::id(const std::string& token) const {
  auto it = ids_.find(token);
  if (it != ids_.end()) return it->second;
  TG_CHECK(unk_id_ >= 0, "Vocab: unknown token '{}' (and the vocabulary has no unknown token)", token);
  return unk_id_;
}

const std::string& Vocab::token(int64_t id) const {
  TG_CHECK(id >= 0 && id < size(), "Vocab: id {} is outside [0, {})", id, size());
  return tokens_[static_cast<size_t>(id)];
}

std::string Vocab::to_json() const {
  nlohmann::json j;
  j["tokens"] = tokens_;
  j["pad_token"] = tokens_.at(static_cast<size_t>(pad_id_));
  j["unk_token"] = unk_id_ >= 0 ? tokens_[static_cast<size_t>(unk_id_)] : std::string();
  return j.dump(2) + "\n";
}

Vocab Vocab::from_json(const std::string& text, const std::string& source) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  TG_CHECK(!j.is_discarded() && j.is_object(), "{}: not a JSON object", source);
  TG_CHECK(j.contains("tokens") && j["tokens"].is_array(), "{}: missing the \"tokens\" array", source);
  std::vector<std::string> tokens;
  for (const auto& t : j["tokens"]) {
    TG_CHECK(t.is_string(), "{}: \"tokens\" must hold strings, found {}", source, t.dump());
    tokens.push_back(t.get<std::string>());
  }
  auto str = [&](const char* key, const char* fallback) {
    if (!j.contains(key)) return std::string(fallback);
    TG_CHECK(j[key].is_string(), "{}: \"{}\" must be a string", source, key);
    return j[key].get<std::string>();
  };
  try {
    return Vocab(std::move(tokens), str("pad_token", "<pad>"), str("unk_token", ""));
  } catch (const Error& e) {
    fail("{}: {}", source, e.what());
  }
}

void Vocab::save(const std::string& path) const { write_file_atomically(path, to_json()); }

Vocab Vocab::load(const std::string& path) { return from_json(read_file_bytes(path), path); }

}  // namespace tg::data
