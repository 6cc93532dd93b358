#include "models/llama/llama_config.h"

#include <cmath>

#include "autograd/error.h"
#include "models/hf/config_fields.h"
#include "models/training/parameter_count.h"

namespace tg::models {
namespace {

// Declarations, not a using-directive: this file is compiled in a unity batch with others.
using json = nlohmann::json;
using config_fields::attention_from_json, config_fields::attention_to_json, config_fields::get_bool,
    config_fields::get_double, config_fields::get_int, config_fields::get_string;

const char* architecture_of(const std::string& model_type) {
  if (model_type == "mistral") return "MistralForCausalLM";
  if (model_type == "qwen2") return "Qwen2ForCausalLM";
  return "LlamaForCausalLM";
}

// rope_scaling (4.x) or rope_parameters (5.x, which holds rope_theta too): the type under
// "rope_type", or "type" in older files.
RopeScaling read_rope_scaling(const json& r, const std::string& where) {
  RopeScaling s;
  if (r.is_null()) return s;
  TG_CHECK(r.is_object(), "{}: must be an object or null, got {}", where, r.dump());
  s.rope_type = get_string(r, "rope_type", get_string(r, "type", "default", where), where);
  s.factor = get_double(r, "factor", s.factor, where);
  s.low_freq_factor = get_double(r, "low_freq_factor", s.low_freq_factor, where);
  s.high_freq_factor = get_double(r, "high_freq_factor", s.high_freq_factor, where);
  s.original_max_position_embeddings =
      get_int(r, "original_max_position_embeddings", s.original_max_position_embeddings, where);
  s.validate(where);
  return s;
}

json rope_scaling_json(const RopeScaling& s) {
  if (s.rope_type == "default") return nullptr;
  json r = {{"rope_type", s.rope_type}, {"factor", s.factor}};
  if (s.rope_type == "llama3") {
    r["low_freq_factor"] = s.low_freq_factor;
    r["high_freq_factor"] = s.high_freq_factor;
    r["original_max_position_embeddings"] = s.original_max_position_embeddings;
  }
  return r;
}

DType compute_dtype_of(const std::string& storage) { return storage == "float64" ? DType::f64 : DType::f32; }

}  // namespace

std::string config_model_type(const std::string& text, const std::string& source) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  TG_CHECK(!j.is_discarded() && j.is_object(), "{} is not a JSON object", source);
  return get_string(j, "model_type", "gpt2", source);
}

bool LlamaConfig::layer_uses_sliding_window(int64_t layer) const {
  if (!sliding_window) return false;
  if (!layer_types.empty()) return layer_types[size_t(layer)] == "sliding_attention";
  return model_type == "mistral";
}

void LlamaConfig::validate() const {
  TG_CHECK(model_type == "llama" || model_type == "mistral" || model_type == "qwen2",
           "LlamaConfig: model_type '{}' is not one of llama, mistral, qwen2", model_type);
  for (const auto& [field, v] : {std::pair{"vocab_size", vocab_size}, {"hidden_size", hidden_size},
                                 {"intermediate_size", intermediate_size}, {"num_hidden_layers", num_hidden_layers},
                                 {"num_attention_heads", num_attention_heads},
                                 {"num_key_value_heads", num_key_value_heads},
                                 {"max_position_embeddings", max_position_embeddings}})
    TG_CHECK(v > 0, "LlamaConfig: {} must be positive, got {}", field, v);
  TG_CHECK(hidden_size % num_attention_heads == 0,
           "LlamaConfig: hidden_size ({}) must be divisible by num_attention_heads ({})", hidden_size,
           num_attention_heads);
  TG_CHECK(num_attention_heads % num_key_value_heads == 0,
           "LlamaConfig: num_key_value_heads ({}) must divide num_attention_heads ({})", num_key_value_heads,
           num_attention_heads);
  TG_CHECK(head_dim() % 2 == 0, "LlamaConfig: the head width hidden_size / num_attention_heads = {} must be even (rotary positions)",
           head_dim());
  TG_CHECK(std::isfinite(rms_norm_eps) && rms_norm_eps > 0, "LlamaConfig: rms_norm_eps must be positive, got {}",
           rms_norm_eps);
  TG_CHECK(std::isfinite(rope_theta) && rope_theta > 0, "LlamaConfig: rope_theta must be positive, got {}", rope_theta);
  rope_scaling.validate("LlamaConfig: rope_scaling");
  TG_CHECK(!sliding_window || *sliding_window >= 1, "LlamaConfig: sliding_window must be positive or null, got {}",
           sliding_window.value_or(0));
  TG_CHECK(layer_types.empty() || int64_t(layer_types.size()) == num_hidden_layers,
           "LlamaConfig: layer_types has {} entries for num_hidden_layers {}", layer_types.size(), num_hidden_layers);
  for (const std::string& t : layer_types)
    TG_CHECK(t == "full_attention" || t == "sliding_attention",
             "LlamaConfig: layer_types holds '{}' (full_attention or sliding_attention)", t);
  TG_CHECK(attention_dropout >= 0 && attention_dropout < 1, "LlamaConfig: attention_dropout must be in [0, 1), got {}",
           attention_dropout);
  TG_CHECK(storage_dtype == "float32" || storage_dtype == "float64" || storage_dtype == "bfloat16" ||
               storage_dtype == "float16",
           "LlamaConfig: dtype '{}' is not one of float32, float64, bfloat16, float16", storage_dtype);
  TG_CHECK(is_floating(dtype), "LlamaConfig: the compute dtype must be f32 or f64, got {}", dtype);
  attention.validate("LlamaConfig");
  llama_parameter_count(*this);  // names the fields when the count overflows int64
}

std::string LlamaConfig::to_json() const {
  json j;
  j["architectures"] = {architecture_of(model_type)};
  j["model_type"] = model_type;
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim();
  j["hidden_act"] = "silu";
  j["max_position_embeddings"] = max_position_embeddings;
  j["initializer_range"] = initializer_range;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["rope_scaling"] = rope_scaling_json(rope_scaling);
  j["attention_dropout"] = attention_dropout;
  j["tie_word_embeddings"] = tie_word_embeddings;
  if (model_type == "llama") {
    j["attention_bias"] = attention_bias;
    j["mlp_bias"] = mlp_bias;
  }
  if (model_type != "llama") j["sliding_window"] = sliding_window ? json(*sliding_window) : json(nullptr);
  if (model_type == "qwen2") {
    int64_t first_sliding = num_hidden_layers;
    for (int64_t i = num_hidden_layers - 1; i >= 0; --i)
      if (layer_uses_sliding_window(i)) first_sliding = i;
    j["use_sliding_window"] = first_sliding < num_hidden_layers;
    j["max_window_layers"] = first_sliding;
  }
  if (!layer_types.empty()) j["layer_types"] = layer_types;
  if (bos_token_id) j["bos_token_id"] = *bos_token_id;
  if (eos_token_id) j["eos_token_id"] = *eos_token_id;
  j["torch_dtype"] = storage_dtype;
  j["use_cache"] = true;
  if (!attention.flex.empty() || attention.custom || attention.variant != AttentionVariant::dense)
    j["tapegrad_attention"] = attention_to_json(attention);
  return j.dump(2) + "\n";
}

LlamaConfig LlamaConfig::from_json(const std::string& text, const std::string& source) {
  const std::string where = "LlamaConfig: " + source;
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  TG_CHECK(!j.is_discarded() && j.is_object(), "LlamaConfig: {} is not a JSON object", source);
  LlamaConfig c;
  c.model_type = get_string(j, "model_type", "", where);
  TG_CHECK(c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2",
           "{}: model_type '{}' is not one of llama, mistral, qwen2", where, c.model_type);
  const std::string act = get_string(j, "hidden_act", "silu", where);
  TG_CHECK(act == "silu", "{}: hidden_act '{}' is not supported (silu)", where, act);
  c.vocab_size = get_int(j, "vocab_size", c.vocab_size, where);
  c.hidden_size = get_int(j, "hidden_size", c.hidden_size, where);
  c.intermediate_size = get_int(j, "intermediate_size", c.intermediate_size, where);
  c.num_hidden_layers = get_int(j, "num_hidden_layers", c.num_hidden_layers, where);
  c.num_attention_heads = get_int(j, "num_attention_heads", c.num_attention_heads, where);
  c.num_key_value_heads = get_int(j, "num_key_value_heads", c.num_attention_heads, where);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", c.max_position_embeddings, where);
  if (c.num_attention_heads > 0) {
    const int64_t head_dim = get_int(j, "head_dim", c.hidden_size / c.num_attention_heads, where);
    TG_CHECK(head_dim == c.hidden_size / c.num_attention_heads,
             "{}: head_dim {} is not hidden_size / num_attention_heads = {} / {} (not supported)", where, head_dim,
             c.hidden_size, c.num_attention_heads);
  }
  c.rms_norm_eps = get_double(j, "rms_norm_eps", c.rms_norm_eps, where);
  c.initializer_range = get_double(j, "initializer_range", c.initializer_range, where);
  c.attention_dropout = get_double(j, "attention_dropout", 0.0, where);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", false, where);
  if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {  // transformers 5.x
    const json& r = j["rope_parameters"];
    c.rope_scaling = read_rope_scaling(r, where + ": rope_parameters");
    c.rope_theta = get_double(r, "rope_theta", c.rope_theta, where + ": rope_parameters");
  } else {  // 4.x
    c.rope_theta = get_double(j, "rope_theta", c.rope_theta, where);
    if (j.contains("rope_scaling")) c.rope_scaling = read_rope_scaling(j["rope_scaling"], where + ": rope_scaling");
  }
  if (c.model_type == "llama") {
    c.attention_bias = get_bool(j, "attention_bias", false, where);
    c.mlp_bias = get_bool(j, "mlp_bias", false, where);
  } else if (c.model_type == "qwen2") {
    c.attention_bias = true;  // Qwen2's q, k, v always have biases
  }
  if (c.model_type != "llama" && j.contains("sliding_window") && !j["sliding_window"].is_null())
    c.sliding_window = get_int(j, "sliding_window", 0, where);
  if (j.contains("layer_types") && !j["layer_types"].is_null()) {
    TG_CHECK(j["layer_types"].is_array(), "{}: field 'layer_types' must be a list, got {}", where,
             j["layer_types"].dump());
    for (const json& t : j["layer_types"]) {
      TG_CHECK(t.is_string(), "{}: field 'layer_types' must hold strings, got {}", where, t.dump());
      c.layer_types.push_back(t.get<std::string>());
    }
  } else if (c.model_type == "qwen2") {
    // Qwen2 slides only with use_sliding_window, in the layers from max_window_layers on.
    const bool use = get_bool(j, "use_sliding_window", false, where);
    const int64_t first = get_int(j, "max_window_layers", c.num_hidden_layers, where);
    if (!use) c.sliding_window.reset();
    // Spelled out as transformers 4.53+ and 5.x do, so both spellings give the same config.
    for (int64_t i = 0; i < c.num_hidden_layers && c.num_hidden_layers < (int64_t(1) << 20); ++i)
      c.layer_types.push_back(use && i >= first ? "sliding_attention" : "full_attention");
  }
  for (const char* id : {"bos_token_id", "eos_token_id"}) {
    if (!j.contains(id) || !j[id].is_number_integer()) continue;  // lists (Llama 3's eos) are not kept
    (std::string(id) == "bos_token_id" ? c.bos_token_id : c.eos_token_id) = j[id].get<int64_t>();
  }
  c.storage_dtype = get_string(j, "dtype", get_string(j, "torch_dtype", "float32", where), where);
  c.dtype = compute_dtype_of(c.storage_dtype);
  if (j.contains("tapegrad_attention")) c.attention = attention_from_json(j["tapegrad_attention"], where);
  return config_fields::validated_in(c, source);
}

}  // namespace tg::models
