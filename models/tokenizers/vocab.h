#pragma once
// Vocab: a list of word tokens and their ids, with a padding token and an unknown token, saved
// with a checkpoint as JSON ({"tokens": [...], "pad_token": "<pad>", "unk_token": "<unk>"}).
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace tg::data {

class Vocab {
 public:
  Vocab() = default;
  /// Ids are positions in `tokens` (no duplicates). pad_token and unk_token must be among them
  /// (an empty unk_token means "no unknown token": id() of an unknown word then throws).
  explicit Vocab(std::vector<std::string> tokens, std::string pad_token = "<pad>",
                 std::string unk_token = "<unk>");

  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  /// The id of `token`; unk_id() for an unknown token (tg::Error without an unknown token).
  int64_t id(const std::string& token) const;
  bool contains(const std::string& token) const { return ids_.count(token) > 0; }
  /// The token of `id`; tg::Error when out of range.
  const std::string& token(int64_t id) const;
  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }  ///< -1 without an unknown token
  const std::vector<std::string>& tokens() const { return tokens_; }

  std::string to_json() const;
  /// Parses to_json()'s text; tg::Error naming `source` (a file name, for messages) when malformed.
  static Vocab from_json(const std::string& text, const std::string& source = "vocab json");
  /// Writes to_json() to `path` atomically / reads it back.
  void save(const std::string& path) const;
  static Vocab load(const std::string& path);

  bool operator==(const Vocab& other) const {
    return tokens_ == other.tokens_ && pad_id_ == other.pad_id_ && unk_id_ == other.unk_id_;
  }

 private:
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int64_t> ids_;
  int64_t pad_id_ = -1, unk_id_ = -1;
};

}  // namespace tg::data
