#include "models/gpt_config.h"

#include <nlohmann/json.hpp>

#include "autograd/error.h"
#include "models/parameter_count.h"
#include "ops/flex_spec.h"

namespace tg::models {
namespace {

using json = nlohmann::json;

bool known_activation(const std::string& a) {
  return a == "gelu_new" || a == "gelu_pytorch_tanh" || a == "gelu";
}

// Reads an integer field, naming the file and the field when it is there but not an integer.
int64_t get_int(const json& j, const char* key, int64_t fallback, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  TG_CHECK(j[key].is_number_integer(), "GPTConfig: {}: field '{}' must be an integer, got {}", source, key,
           j[key].dump());
  return j[key].get<int64_t>();
}

double get_double(const json& j, const char* key, double fallback, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  TG_CHECK(j[key].is_number(), "GPTConfig: {}: field '{}' must be a number, got {}", source, key, j[key].dump());
  return j[key].get<double>();
}

std::string get_string(const json& j, const char* key, const std::string& fallback, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  TG_CHECK(j[key].is_string(), "GPTConfig: {}: field '{}' must be a string, got {}", source, key, j[key].dump());
  return j[key].get<std::string>();
}

bool get_bool(const json& j, const char* key, bool fallback, const std::string& source) {
  if (!j.contains(key) || j[key].is_null()) return fallback;
  TG_CHECK(j[key].is_boolean(), "GPTConfig: {}: field '{}' must be true or false, got {}", source, key,
           j[key].dump());
  return j[key].get<bool>();
}

}  // namespace

GPTAttention GPTAttention::parse(std::string_view text) {
  GPTAttention a;
  if (is_flex_pattern(text)) {
    parse_model_flex_pattern(text);  // names a bad one
    a.flex = std::string(text);
    return a;
  }
  AttentionSpec spec;
  a.variant = parse_attention_variant(text, &spec);
  a.window = spec.window;
  a.sparse = spec.sparse;
  return a;
}

GPTAttention GPTAttention::from_pattern(FlexPattern pattern) {
  GPTAttention a;
  a.flex = pattern.text();
  if (pattern.is_custom()) {
    a.custom = std::move(pattern);
  } else {
    parse_model_flex_pattern(a.flex);  // a named pattern is kept by its words
  }
  return a;
}

std::string GPTAttention::name() const {
  if (custom) return custom->text();
  if (!flex.empty()) return flex;
  if (variant == AttentionVariant::sliding_window) return "sliding:" + std::to_string(window);
  return attention_variant_name(variant);
}

void GPTConfig::validate() const {
  auto positive = [](const char* field, int64_t v) {
    TG_CHECK(v > 0, "GPTConfig: {} must be positive, got {}", field, v);
  };
  positive("vocab_size", vocab_size);
  positive("n_positions", n_positions);
  positive("n_embd", n_embd);
  positive("n_layer", n_layer);
  positive("n_head", n_head);
  TG_CHECK(n_embd % n_head == 0, "GPTConfig: n_embd ({}) must be divisible by n_head ({})", n_embd, n_head);
  TG_CHECK(dropout >= 0.0 && dropout < 1.0, "GPTConfig: dropout must be in [0, 1), got {}", dropout);
  TG_CHECK(layer_norm_epsilon > 0.0, "GPTConfig: layer_norm_epsilon must be positive, got {}",
           layer_norm_epsilon);
  TG_CHECK(known_activation(activation),
           "GPTConfig: activation '{}' is not supported (gelu_new, gelu_pytorch_tanh or gelu)", activation);
  TG_CHECK(is_floating(dtype), "GPTConfig: dtype must be f32 or f64, got {}", dtype);
  TG_CHECK(attention.window >= 1, "GPTConfig: attention.window must be positive, got {}", attention.window);
  const SparseLayout& s = attention.sparse;
  TG_CHECK(s.block_size > 0 && s.window_blocks > 0 && s.global_blocks >= 0 && s.random_blocks >= 0,
           "GPTConfig: attention.sparse needs block_size > 0, window_blocks > 0, global_blocks >= 0 and "
           "random_blocks >= 0, got {}, {}, {}, {}",
           s.block_size, s.window_blocks, s.global_blocks, s.random_blocks);
  gpt_parameter_count(*this);  // names the fields when the count overflows int64
}

std::string GPTConfig::to_json() const {
  json j;
  j["model_type"] = "gpt2";
  j["architectures"] = {"GPT2LMHeadModel"};
  j["vocab_size"] = vocab_size;
  j["n_positions"] = n_positions;
  j["n_ctx"] = n_positions;
  j["n_embd"] = n_embd;
  j["n_layer"] = n_layer;
  j["n_head"] = n_head;
  j["n_inner"] = nullptr;  // 4 * n_embd
  j["layer_norm_epsilon"] = layer_norm_epsilon;
  j["activation_function"] = activation;
  j["resid_pdrop"] = dropout;
  j["embd_pdrop"] = dropout;
  j["attn_pdrop"] = dropout;
  j["initializer_range"] = 0.02;
  j["tie_word_embeddings"] = true;
  j["torch_dtype"] = dtype == DType::f64 ? "float64" : "float32";
  j["tapegrad_bias"] = bias;
  const SparseLayout& s = attention.sparse;
  j["tapegrad_attention"] = {
      {"variant", attention_variant_name(attention.variant)},
      {"window", attention.window},
      {"sparse",
       {{"block_size", s.block_size},
        {"window_blocks", s.window_blocks},
        {"global_blocks", s.global_blocks},
        {"random_blocks", s.random_blocks},
        {"seed", s.seed}}}};
  // A custom pattern by its name only: config.json cannot hold C++ code.
  if (!attention.flex.empty() || attention.custom) j["tapegrad_attention"]["flex"] = attention.name();
  return j.dump(2) + "\n";
}

GPTConfig GPTConfig::from_json(const std::string& text, const std::string& source) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  TG_CHECK(!j.is_discarded() && j.is_object(), "GPTConfig: {} is not a JSON object", source);
  std::string model_type = get_string(j, "model_type", "gpt2", source);
  TG_CHECK(model_type == "gpt2", "GPTConfig: {}: model_type is '{}', only 'gpt2' is read", source, model_type);
  if (j.contains("n_inner") && !j["n_inner"].is_null()) {
    int64_t n_inner = get_int(j, "n_inner", 0, source);
    TG_CHECK(n_inner == 4 * get_int(j, "n_embd", 768, source),
             "GPTConfig: {}: n_inner {} is not supported (the MLP is 4 * n_embd wide)", source, n_inner);
  }
  TG_CHECK(!get_bool(j, "scale_attn_by_inverse_layer_idx", false, source) &&
               !get_bool(j, "reorder_and_upcast_attn", false, source),
           "GPTConfig: {}: scale_attn_by_inverse_layer_idx and reorder_and_upcast_attn are not supported",
           source);
  TG_CHECK(get_bool(j, "scale_attn_weights", true, source),
           "GPTConfig: {}: scale_attn_weights false is not supported", source);
  TG_CHECK(get_bool(j, "tie_word_embeddings", true, source),
           "GPTConfig: {}: tie_word_embeddings false is not supported (the LM head is wte)", source);

  GPTConfig c;
  c.vocab_size = get_int(j, "vocab_size", c.vocab_size, source);
  c.n_positions = get_int(j, "n_positions", get_int(j, "n_ctx", c.n_positions, source), source);
  c.n_embd = get_int(j, "n_embd", c.n_embd, source);
  c.n_layer = get_int(j, "n_layer", c.n_layer, source);
  c.n_head = get_int(j, "n_head", c.n_head, source);
  c.layer_norm_epsilon = get_double(j, "layer_norm_epsilon", c.layer_norm_epsilon, source);
  c.activation = get_string(j, "activation_function", c.activation, source);
  c.dropout = get_double(j, "resid_pdrop", 0.1, source);  // Hugging Face's default for GPT-2
  c.bias = get_bool(j, "tapegrad_bias", true, source);
  // Checkpoints in half precision are computed in f32 here.
  c.dtype = get_string(j, "torch_dtype", "float32", source) == "float64" ? DType::f64 : DType::f32;
  if (j.contains("tapegrad_attention")) {
    const json& a = j["tapegrad_attention"];
    TG_CHECK(a.is_object(), "GPTConfig: {}: tapegrad_attention must be an object", source);
    std::string variant = get_string(a, "variant", "dense", source);
    c.attention.variant = variant == "sliding_window" ? AttentionVariant::sliding_window
                                                       : parse_attention_variant(variant);
    c.attention.window = get_int(a, "window", c.attention.window, source);
    if (a.contains("flex")) {
      c.attention.flex = get_string(a, "flex", "", source);
      try {
        // A custom pattern is kept by name; the model is built only when the pattern is given again.
        if (!is_custom_flex_pattern(c.attention.flex)) parse_model_flex_pattern(c.attention.flex);
      } catch (const Error& e) {
        fail("GPTConfig: {}: tapegrad_attention.flex: {}", source, e.what());
      }
    }
    if (a.contains("sparse")) {
      const json& s = a["sparse"];
      TG_CHECK(s.is_object(), "GPTConfig: {}: tapegrad_attention.sparse must be an object", source);
      SparseLayout& l = c.attention.sparse;
      l.block_size = get_int(s, "block_size", l.block_size, source);
      l.window_blocks = get_int(s, "window_blocks", l.window_blocks, source);
      l.global_blocks = get_int(s, "global_blocks", l.global_blocks, source);
      l.random_blocks = get_int(s, "random_blocks", l.random_blocks, source);
      l.seed = static_cast<uint64_t>(get_int(s, "seed", 0, source));
    }
  }
  try {
    c.validate();
  } catch (const Error& e) {
    fail("{} (in {})", e.what(), source);
  }
  return c;
}

}  // namespace tg::models
