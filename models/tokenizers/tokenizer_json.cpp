// Hugging Face's tokenizer.json for byte-level BPE: read and write. Read: model BPE (vocab, merges
// as "left right" strings or [left, right] pairs, ignore_merges), added_tokens, pre_tokenizer
// ByteLevel / Split (a regex, behavior Isolated) / a Sequence of them, decoder ByteLevel.
// Anything that would change the ids and is not implemented here (a normalizer, dropout, a
// subword prefix, byte fallback, lstrip/rstrip/single_word added tokens, other Split behaviors)
// is a tg::Error naming the file and the field, never silently ignored. The post-processor is
// ignored: encode adds no BOS/EOS. Split regexes are Oniguruma's in HF and PCRE2's here; the one
// difference met (`X{n,m}+`, see pretokenizer.h) is refused when read and avoided when written.
#include <nlohmann/json.hpp>

#include "autograd/error.h"
#include "models/tokenizers/bpe_tokenizer.h"
#include "models/tokenizers/byte_level.h"
#include "models/tokenizers/byte_level_vocab.h"
#include "nn/file_io.h"

namespace tg::models {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

bool flag(const json& j, const char* key, bool otherwise) {
  if (!j.contains(key) || j[key].is_null()) return otherwise;
  return j[key].is_boolean() ? j[key].get<bool>() : otherwise;
}

// A string field: `otherwise` when absent or null. Not j.value(key, ...), which throws nlohmann's
// type_error when the field holds another type.
std::string text_field(const json& j, const char* key, const std::string& otherwise, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return otherwise;
  TG_CHECK(j[key].is_string(), "{}: \"{}\" must be a string, found {}", where, key, j[key].dump());
  return j[key].get<std::string>();
}

// Null, absent, false or an empty string: the option is off.
bool off(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return true;
  const json& v = j[key];
  return (v.is_boolean() && !v.get<bool>()) || (v.is_string() && v.get<std::string>().empty()) ||
         (v.is_number() && v.get<double>() == 0.0);
}

struct PreTokenization {
  std::vector<std::string> patterns;
  bool add_prefix_space = false;
  bool byte_level = false;
};

void read_pre_tokenizer(const json& p, const std::string& where, PreTokenization& out) {
  TG_CHECK(p.is_object() && p.contains("type") && p["type"].is_string(), "{}: expected an object with a \"type\"", where);
  const std::string type = p["type"];
  if (type == "Sequence") {
    TG_CHECK(p.contains("pretokenizers") && p["pretokenizers"].is_array(), "{}: a Sequence needs \"pretokenizers\"", where);
    for (size_t i = 0; i < p["pretokenizers"].size(); ++i)
      read_pre_tokenizer(p["pretokenizers"][i], fmt::format("{}.pretokenizers[{}]", where, i), out);
  } else if (type == "ByteLevel") {
    TG_CHECK(!out.byte_level, "{}: a second ByteLevel pre-tokenizer", where);
    out.byte_level = true;
    out.add_prefix_space = flag(p, "add_prefix_space", false);
    if (flag(p, "use_regex", true)) out.patterns.push_back(kHfByteLevelPattern);
  } else if (type == "Split") {
    TG_CHECK(!out.byte_level, "{}: a Split after the ByteLevel pre-tokenizer is not supported", where);
    TG_CHECK(p.contains("pattern") && p["pattern"].is_object(), "{}: a Split needs a \"pattern\" object", where);
    const json& pat = p["pattern"];
    TG_CHECK(pat.contains("Regex") && pat["Regex"].is_string(),
             "{}.pattern: only {{\"Regex\": ...}} is supported, found {}", where, pat.dump());
    const std::string behavior = text_field(p, "behavior", "Isolated", where);
    TG_CHECK(behavior == "Isolated", "{}: Split behavior \"{}\" is not supported (only \"Isolated\")", where, behavior);
    TG_CHECK(!flag(p, "invert", false), "{}: an inverted Split is not supported", where);
    const std::string regex = pat["Regex"];
    const size_t plus = find_interval_plus(regex);
    TG_CHECK(plus == std::string::npos,
             "{}.pattern: the regex has an interval quantifier followed by '+' at offset {} (\"{}\"), which Hugging Face "
             "(Oniguruma) reads as a repetition of the interval and PCRE2 as possessive; not supported",
             where, plus, regex.substr(plus > 8 ? plus - 8 : 0, 10));
    out.patterns.push_back(regex);
  } else {
    fail("{}: pre-tokenizer type \"{}\" is not supported (ByteLevel, Split, Sequence)", where, type);
  }
}

}  // namespace

BpeTokenizer BpeTokenizer::from_tokenizer_json(const std::string& text, const std::string& source) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  TG_CHECK(!j.is_discarded(), "{}: not valid JSON", source);
  TG_CHECK(j.is_object(), "{}: expected a JSON object", source);
  TG_CHECK(j.contains("model") && j["model"].is_object(), "{}: missing the \"model\" object", source);
  const json& m = j["model"];
  const std::string type = text_field(m, "type", "BPE", source + ": model");
  TG_CHECK(type == "BPE", "{}: model type \"{}\" is not supported (only BPE)", source, type);
  for (const char* key : {"dropout", "continuing_subword_prefix", "end_of_word_suffix", "byte_fallback"})
    TG_CHECK(off(m, key), "{}: model.{} = {} is not supported", source, key, m[key].dump());
  TG_CHECK(m.contains("vocab") && m["vocab"].is_object(), "{}: model.vocab must be an object {{\"token\": id}}", source);
  TG_CHECK(m.contains("merges") && m["merges"].is_array(), "{}: model.merges must be an array", source);
  TG_CHECK(j.value("normalizer", json()).is_null(), "{}: a normalizer is not supported (found {})", source,
           j["normalizer"].dump());

  std::vector<std::pair<std::string, int64_t>> vocab;
  vocab.reserve(m["vocab"].size());
  for (const auto& [token, id] : m["vocab"].items()) {
    TG_CHECK(id.is_number_integer(), "{}: model.vocab: the id of '{}' is not an integer: {}", source, token, id.dump());
    vocab.emplace_back(token, id.get<int64_t>());
  }
  std::vector<TextMerge> merges;
  merges.reserve(m["merges"].size());
  for (size_t i = 0; i < m["merges"].size(); ++i) {
    const json& e = m["merges"][i];
    std::string where = fmt::format("{}: model.merges[{}]", source, i);
    if (e.is_string()) {
      const std::string s = e;
      const size_t space = s.find(' ');
      TG_CHECK(space != std::string::npos && space > 0 && space + 1 < s.size() && s.find(' ', space + 1) == std::string::npos,
               "{}: expected \"left right\", found \"{}\"", where, s);
      merges.push_back(TextMerge{s.substr(0, space), s.substr(space + 1), std::move(where)});
    } else {
      TG_CHECK(e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string(),
               "{}: expected \"left right\" or [\"left\", \"right\"], found {}", where, e.dump());
      merges.push_back(TextMerge{e[0], e[1], std::move(where)});
    }
  }
  BpeModel model = byte_level_model(vocab, merges, flag(m, "ignore_merges", false), source);

  std::vector<AddedToken> added;
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    TG_CHECK(j["added_tokens"].is_array(), "{}: added_tokens must be an array", source);
    for (size_t i = 0; i < j["added_tokens"].size(); ++i) {
      const json& a = j["added_tokens"][i];
      const std::string where = fmt::format("{}: added_tokens[{}]", source, i);
      TG_CHECK(a.is_object() && a.contains("id") && a["id"].is_number_integer() && a.contains("content") &&
                   a["content"].is_string(),
               "{}: expected {{\"id\": integer, \"content\": string, ...}}", where);
      for (const char* key : {"lstrip", "rstrip", "single_word"})
        TG_CHECK(!flag(a, key, false), "{}: {} = true is not supported", where, key);
      const int64_t id = a["id"];
      TG_CHECK(id >= 0 && id < (int64_t(1) << 30), "{}: id {} is out of range", where, id);
      added.push_back(AddedToken{a["content"], int32_t(id), flag(a, "special", false)});
    }
  }

  PreTokenization pre;
  if (j.contains("pre_tokenizer") && !j["pre_tokenizer"].is_null())
    read_pre_tokenizer(j["pre_tokenizer"], source + ": pre_tokenizer", pre);
  if (j.contains("decoder") && !j["decoder"].is_null()) {
    const json& d = j["decoder"];
    TG_CHECK(d.is_object() && d.contains("type") && d["type"] == "ByteLevel",
             "{}: decoder {} is not supported (only ByteLevel)", source, d.dump());
  }
  return BpeTokenizer(std::move(model), std::move(pre.patterns), pre.add_prefix_space, std::move(added), source);
}

BpeTokenizer BpeTokenizer::load_tokenizer_json(const std::string& path) {
  return from_tokenizer_json(read_file_bytes(path), path);
}

std::string BpeTokenizer::to_tokenizer_json() const {
  ordered_json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = ordered_json::array();
  for (const AddedToken& a : added_)
    j["added_tokens"].push_back({{"id", a.id}, {"content", a.content}, {"single_word", false}, {"lstrip", false},
                                 {"rstrip", false}, {"normalized", !a.special}, {"special", a.special}});
  j["normalizer"] = nullptr;
  auto byte_level = [&](bool use_regex) {
    return ordered_json{{"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space_}, {"trim_offsets", true},
                        {"use_regex", use_regex}};
  };
  if (patterns_.size() == 1 && patterns_[0] == kHfByteLevelPattern) {
    j["pre_tokenizer"] = byte_level(true);
  } else {
    ordered_json seq = ordered_json::array();
    for (const std::string& p : patterns_)
      seq.push_back({{"type", "Split"},
                     {"pattern", {{"Regex", without_interval_plus(p)}}},
                     {"behavior", "Isolated"},
                     {"invert", false}});
    seq.push_back(byte_level(false));
    j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", seq}};
  }
  j["post_processor"] = nullptr;
  j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  ordered_json model;
  model["type"] = "BPE";
  model["dropout"] = nullptr;
  model["unk_token"] = nullptr;
  model["continuing_subword_prefix"] = nullptr;
  model["end_of_word_suffix"] = nullptr;
  model["fuse_unk"] = false;
  model["byte_fallback"] = false;
  model["ignore_merges"] = model_.ignore_merges();
  // In id order, appended straight to the ordered map's vector: its operator[] searches linearly
  // (quadratic for 50k tokens); the tokens are distinct, so no search is needed.
  ordered_json vocab = ordered_json::object();
  auto& entries = static_cast<ordered_json::object_t::Container&>(vocab.get_ref<ordered_json::object_t&>());
  entries.reserve(model_.size());
  for (int32_t i = 0; i < model_.size(); ++i) entries.emplace_back(bytes_to_unicode(model_.token(i)), i);
  model["vocab"] = std::move(vocab);
  // "left right" strings: every tokenizers version reads them (a byte-level token has no space).
  ordered_json merges = ordered_json::array();
  for (const auto& [a, b] : model_.merges())
    merges.push_back(bytes_to_unicode(model_.token(a)) + " " + bytes_to_unicode(model_.token(b)));
  model["merges"] = std::move(merges);
  j["model"] = std::move(model);
  try {
    return j.dump(2);
  } catch (const ordered_json::exception& e) {
    fail("tokenizer.json: cannot write it: {} (an added token that is not valid UTF-8?)", e.what());
  }
}

void BpeTokenizer::save_tokenizer_json(const std::string& path) const { write_file_atomically(path, to_tokenizer_json()); }

}  // namespace tg::models
