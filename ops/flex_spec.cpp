#include "ops/flex_spec.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "autograd/error.h"
#include "ops/flex_patterns.h"

namespace tg {
namespace {

constexpr const char* kPatterns =
    "full, causal, sliding:W, prefix:N, document:N, sinks:W:N, dilated:W:D, bigbird[:B:W:G:R], longformer:B:W:G, "
    "alibi, softcap:C";

std::vector<std::string> split(std::string_view text) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t end; (end = text.find(':', start)) != std::string_view::npos; start = end + 1)
    parts.emplace_back(text.substr(start, end - start));
  parts.emplace_back(text.substr(start));
  return parts;
}

// The pattern's arguments after its name: `count` integers of at least `least` each.
std::vector<int64_t> integers(std::string_view text, const std::vector<std::string>& parts, size_t count,
                              int64_t least) {
  TG_CHECK(parts.size() == count + 1, "attention pattern '{}': {} takes {} number{} (the patterns are {})", text,
           parts[0], count, count == 1 ? "" : "s", kPatterns);
  std::vector<int64_t> out;
  for (size_t i = 1; i < parts.size(); ++i) {
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(parts[i].c_str(), &end, 10);
    TG_CHECK(!parts[i].empty() && *end == '\0' && errno != ERANGE && v >= least,
             "attention pattern '{}': '{}' must be an integer >= {}", text, parts[i], least);
    out.push_back(v);
  }
  return out;
}

}  // namespace

bool is_flex_pattern(std::string_view text) { return text.starts_with("flex:"); }

bool is_custom_flex_pattern(std::string_view text) { return text.starts_with("flex:custom:"); }

FlexPattern FlexPattern::custom(std::string name, MaskMod mask_mod, ScoreMod score_mod) {
  TG_CHECK(!name.empty() && name.find(':') == std::string::npos,
           "FlexPattern::custom: the name '{}' must be non-empty and hold no ':' (it is written as flex:custom:NAME)",
           name);
  TG_CHECK(mask_mod.defined() || score_mod.defined(),
           "FlexPattern::custom: pattern '{}' has neither a mask_mod nor a score_mod", name);
  FlexPattern p;
  p.name = "custom:" + name;
  p.mask_mod = std::move(mask_mod);
  p.score_mod = std::move(score_mod);
  return p;
}

std::string FlexPattern::text() const {
  std::string s = "flex:" + name;
  for (int64_t v : ints) s += fmt::format(":{}", v);  // not ":" + to_string: GCC 12's -Wrestrict false positive
  if (name == "softcap") s += fmt::format(":{}", real);
  return s;
}

FlexPattern flex_pattern_of_variant(const AttentionSpec& spec) {
  FlexPattern p;
  switch (spec.variant) {
    case AttentionVariant::dense:
    case AttentionVariant::flash:
      p.name = "full";
      break;
    case AttentionVariant::sliding_window:
      p.name = "sliding", p.ints = {spec.window};
      break;
    case AttentionVariant::sparse: {
      const SparseLayout& l = spec.sparse;
      p.name = "bigbird", p.ints = {l.block_size, l.window_blocks, l.global_blocks, l.random_blocks};
      if (l.seed != 0) p.ints.push_back(int64_t(l.seed));
      break;
    }
    case AttentionVariant::linear:
      fail("attention: the linear variant has no attention mask, so it cannot add one (e.g. documents); use dense, "
           "flash, sliding, sparse or a flex pattern");
  }
  return p;
}

FlexPattern parse_flex_pattern(std::string_view text) {
  TG_CHECK(is_flex_pattern(text), "attention pattern '{}': expected flex:PATTERN (the patterns are {})", text,
           kPatterns);
  const std::vector<std::string> parts = split(text.substr(5));
  FlexPattern p;
  p.name = parts[0];
  if (p.name == "full" || p.name == "causal" || p.name == "alibi") {
    p.ints = integers(text, parts, 0, 0);
  } else if (p.name == "sliding" || p.name == "document") {
    p.ints = integers(text, parts, 1, 1);
  } else if (p.name == "prefix") {
    p.ints = integers(text, parts, 1, 0);
  } else if (p.name == "sinks") {
    p.ints = integers(text, parts, 2, 0);
    TG_CHECK(p.ints[0] >= 1, "attention pattern '{}': the window must be >= 1", text);
  } else if (p.name == "dilated") {
    p.ints = integers(text, parts, 2, 1);
  } else if (p.name == "bigbird") {
    p.ints = parts.size() == 1 ? std::vector<int64_t>{} : integers(text, parts, 4, 0);
    TG_CHECK(p.ints.empty() || p.ints[0] >= 1, "attention pattern '{}': the block size must be >= 1", text);
  } else if (p.name == "longformer") {
    p.ints = integers(text, parts, 3, 0);
    TG_CHECK(p.ints[0] >= 1, "attention pattern '{}': the block size must be >= 1", text);
  } else if (p.name == "custom") {
    fail("attention pattern '{}': a custom pattern is written in C++ (FlexPattern::custom) and cannot be given in "
         "words",
         text);
  } else if (p.name == "softcap") {
    TG_CHECK(parts.size() == 2, "attention pattern '{}': softcap takes the cap, e.g. flex:softcap:50", text);
    char* end = nullptr;
    p.real = std::strtod(parts[1].c_str(), &end);
    TG_CHECK(!parts[1].empty() && *end == '\0' && std::isfinite(p.real) && p.real > 0,
             "attention pattern '{}': the cap must be a positive number", text);
  } else {
    fail("attention pattern '{}': unknown pattern '{}' (the patterns are {})", text, p.name, kPatterns);
  }
  return p;
}

FlexPattern parse_model_flex_pattern(std::string_view text) {
  FlexPattern p = parse_flex_pattern(text);
  TG_CHECK(p.name != "document",
           "attention pattern '{}': document:N splits each call's keys into N equal documents, which only the "
           "attention bench means; a model's documents come from its data",
           text);
  return p;
}

FlexProblem build_flex_problem(const FlexPattern& p, int64_t H, int64_t T, int64_t S, bool causal,
                               DType dtype, int64_t block_size, int64_t q_offset,
                               const std::vector<int64_t>& key_lengths, const Tensor& document_ids) {
  MaskMod mask;
  if (p.is_custom()) {
    mask = p.mask_mod;  // the model's causal mask is applied on top
  } else if (p.name == "causal") {
    mask = causal_mask();
    causal = false;  // already
  } else if (p.name == "sliding") {
    mask = sliding_window_mask(p.ints[0], causal);
    causal = false;
  } else if (p.name == "prefix") {
    mask = prefix_lm_mask(p.ints[0]);
    causal = false;  // the prefix is seen whole, the rest causally
  } else if (p.name == "document") {
    TG_CHECK(p.ints[0] <= S, "flex:document:{}: more documents than the {} keys", p.ints[0], S);
    Tensor doc_ids = empty({S}, DType::i64);
    for (int64_t s = 0; s < S; ++s) doc_ids.data<int64_t>()[s] = s * p.ints[0] / S;  // N equal documents
    mask = document_mask(doc_ids);
  } else if (p.name == "sinks") {
    mask = attention_sink_mask(p.ints[0], p.ints[1]);
    causal = false;
  } else if (p.name == "dilated") {
    mask = dilated_sliding_window_mask(p.ints[0], p.ints[1], causal);
    causal = false;
  } else if (p.name == "bigbird") {
    SparseLayout layout;
    if (!p.ints.empty()) layout = SparseLayout{p.ints[0], p.ints[1], p.ints[2], p.ints[3]};
    if (p.ints.size() == 5) layout.seed = uint64_t(p.ints[4]);  // flex_pattern_of_variant's
    mask = bigbird_mask(layout, T, S, causal);
    causal = false;
  } else if (p.name == "longformer") {
    mask = longformer_mask(p.ints[0], p.ints[1], p.ints[2], T, S, causal);
    causal = false;
  }
  if (causal) mask = mask.defined() ? and_masks(mask, causal_mask()) : causal_mask();
  if (!key_lengths.empty())
    mask = mask.defined() ? and_masks(mask, key_lengths_mask(key_lengths)) : key_lengths_mask(key_lengths);
  int64_t B = key_lengths.empty() ? 1 : int64_t(key_lengths.size());  // 1: one mask for every batch
  if (document_ids.defined()) {
    TG_CHECK(document_ids.dtype() == DType::i64 && document_ids.dim() == 2 && document_ids.size(1) == T && T == S &&
                 q_offset == 0 && (key_lengths.empty() || document_ids.size(0) == B),
             "attention pattern {}: document_ids {} {} must be i64 [B, T] for T {} queries over their own S {} keys "
             "(no query offset: got {}){}",
             p.text(), dtype_name(document_ids.dtype()), shape_str(document_ids.shape()), T, S, q_offset,
             key_lengths.empty() ? "" : fmt::format(", B = {} as the key lengths", B));
    B = document_ids.size(0);
    mask = mask.defined() ? and_masks(mask, document_mask(document_ids)) : document_mask(document_ids);
  }
  FlexProblem out;
  if (mask.defined()) out.block_mask = create_block_mask(mask, B, 1, T, S, block_size, q_offset);
  if (p.name == "alibi") out.score_mod = alibi(alibi_slopes(H, dtype));
  if (p.name == "softcap") out.score_mod = softcap(p.real);
  if (p.is_custom()) out.score_mod = p.score_mod;
  return out;
}

}  // namespace tg
