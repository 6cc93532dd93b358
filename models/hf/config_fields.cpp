#include "models/hf/config_fields.h"

#include "autograd/error.h"
#include "ops/flex_spec.h"

namespace tg::models::config_fields {
namespace {

bool field_absent(const json& j, const char* key) { return !j.contains(key) || j[key].is_null(); }

}  // namespace

int64_t get_int(const json& j, const char* key, int64_t fallback, const std::string& where) {
  if (field_absent(j, key)) return fallback;
  TG_CHECK(j[key].is_number_integer(), "{}: field '{}' must be an integer, got {}", where, key, j[key].dump());
  return j[key].get<int64_t>();
}

double get_double(const json& j, const char* key, double fallback, const std::string& where) {
  if (field_absent(j, key)) return fallback;
  TG_CHECK(j[key].is_number(), "{}: field '{}' must be a number, got {}", where, key, j[key].dump());
  return j[key].get<double>();
}

std::string get_string(const json& j, const char* key, const std::string& fallback, const std::string& where) {
  if (field_absent(j, key)) return fallback;
  TG_CHECK(j[key].is_string(), "{}: field '{}' must be a string, got {}", where, key, j[key].dump());
  return j[key].get<std::string>();
}

bool get_bool(const json& j, const char* key, bool fallback, const std::string& where) {
  if (field_absent(j, key)) return fallback;
  TG_CHECK(j[key].is_boolean(), "{}: field '{}' must be true or false, got {}", where, key, j[key].dump());
  return j[key].get<bool>();
}

json attention_to_json(const GPTAttention& attention) {
  const SparseLayout& s = attention.sparse;
  json a = {{"variant", attention_variant_name(attention.variant)},
            {"window", attention.window},
            {"sparse",
             {{"block_size", s.block_size},
              {"window_blocks", s.window_blocks},
              {"global_blocks", s.global_blocks},
              {"random_blocks", s.random_blocks},
              {"seed", s.seed}}}};
  if (!attention.flex.empty() || attention.custom) a["flex"] = attention.name();
  return a;
}

GPTAttention attention_from_json(const json& a, const std::string& where) {
  TG_CHECK(a.is_object(), "{}: tapegrad_attention must be an object", where);
  GPTAttention out;
  const std::string variant = get_string(a, "variant", "dense", where);
  out.variant = variant == "sliding_window" ? AttentionVariant::sliding_window : parse_attention_variant(variant);
  out.window = get_int(a, "window", out.window, where);
  if (a.contains("flex")) {
    out.flex = get_string(a, "flex", "", where);
    try {
      if (!is_custom_flex_pattern(out.flex)) parse_model_flex_pattern(out.flex);
    } catch (const Error& e) {
      fail("{}: tapegrad_attention.flex: {}", where, e.what());
    }
  }
  if (a.contains("sparse")) {
    const json& s = a["sparse"];
    TG_CHECK(s.is_object(), "{}: tapegrad_attention.sparse must be an object", where);
    SparseLayout& l = out.sparse;
    l.block_size = get_int(s, "block_size", l.block_size, where);
    l.window_blocks = get_int(s, "window_blocks", l.window_blocks, where);
    l.global_blocks = get_int(s, "global_blocks", l.global_blocks, where);
    l.random_blocks = get_int(s, "random_blocks", l.random_blocks, where);
    l.seed = static_cast<uint64_t>(get_int(s, "seed", 0, where));
  }
  return out;
}

}  // namespace tg::models::config_fields
