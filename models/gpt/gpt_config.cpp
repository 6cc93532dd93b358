#include "models/gpt/gpt_config.h"

#include <nlohmann/json.hpp>

#include "autograd/error.h"
#include "models/hf/config_fields.h"
#include "models/training/parameter_count.h"
#include "ops/flex_spec.h"

namespace tg::models {
namespace {

using json = nlohmann::json;

bool known_activation(const std::string& a) {
  return a == "gelu_new" || a == "gelu_pytorch_tanh" || a == "gelu";
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

void GPTAttention::validate(const std::string& owner) const {
  TG_CHECK(window >= 1, "{}: attention.window must be positive, got {}", owner, window);
  TG_CHECK(sparse.block_size > 0 && sparse.window_blocks > 0 && sparse.global_blocks >= 0 && sparse.random_blocks >= 0,
           "{}: attention.sparse needs block_size > 0, window_blocks > 0, global_blocks >= 0 and "
           "random_blocks >= 0, got {}, {}, {}, {}",
           owner, sparse.block_size, sparse.window_blocks, sparse.global_blocks, sparse.random_blocks);
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
  attention.validate("GPTConfig");
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
  j["tapegrad_attention"] = config_fields::attention_to_json(attention);
  return j.dump(2) + "\n";
}

GPTConfig GPTConfig::from_json(const std::string& text, const std::string& source) {
  using config_fields::get_int, config_fields::get_double, config_fields::get_string, config_fields::get_bool;
  const std::string where = "GPTConfig: " + source;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  TG_CHECK(!j.is_discarded() && j.is_object(), "GPTConfig: {} is not a JSON object", source);
  std::string model_type = get_string(j, "model_type", "gpt2", where);
  TG_CHECK(model_type == "gpt2", "GPTConfig: {}: model_type is '{}', only 'gpt2' is read", source, model_type);
  if (j.contains("n_inner") && !j["n_inner"].is_null()) {
    int64_t n_inner = get_int(j, "n_inner", 0, where);
    TG_CHECK(n_inner == 4 * get_int(j, "n_embd", 768, where),
             "GPTConfig: {}: n_inner {} is not supported (the MLP is 4 * n_embd wide)", source, n_inner);
  }
  TG_CHECK(!get_bool(j, "scale_attn_by_inverse_layer_idx", false, where) &&
               !get_bool(j, "reorder_and_upcast_attn", false, where),
           "GPTConfig: {}: scale_attn_by_inverse_layer_idx and reorder_and_upcast_attn are not supported",
           source);
  TG_CHECK(get_bool(j, "scale_attn_weights", true, where),
           "GPTConfig: {}: scale_attn_weights false is not supported", source);
  TG_CHECK(get_bool(j, "tie_word_embeddings", true, where),
           "GPTConfig: {}: tie_word_embeddings false is not supported (the LM head is wte)", source);

  GPTConfig c;
  c.vocab_size = get_int(j, "vocab_size", c.vocab_size, where);
  c.n_positions = get_int(j, "n_positions", get_int(j, "n_ctx", c.n_positions, where), where);
  c.n_embd = get_int(j, "n_embd", c.n_embd, where);
  c.n_layer = get_int(j, "n_layer", c.n_layer, where);
  c.n_head = get_int(j, "n_head", c.n_head, where);
  c.layer_norm_epsilon = get_double(j, "layer_norm_epsilon", c.layer_norm_epsilon, where);
  c.activation = get_string(j, "activation_function", c.activation, where);
  c.dropout = get_double(j, "resid_pdrop", 0.1, where);  // Hugging Face's default for GPT-2
  c.bias = get_bool(j, "tapegrad_bias", true, where);
  // Checkpoints in half precision are computed in f32 here.
  c.dtype = get_string(j, "torch_dtype", "float32", where) == "float64" ? DType::f64 : DType::f32;
  if (j.contains("tapegrad_attention")) c.attention = config_fields::attention_from_json(j["tapegrad_attention"], where);
  return config_fields::validated_in(c, source);
}

}  // namespace tg::models
