#include "models/encoder/encoder_config.h"

#include <nlohmann/json.hpp>

#include <cstdint>

#include "autograd/error.h"
#include "models/data/token_data.h"
#include "models/training/parameter_count.h"
#include "ops/flex_spec.h"

namespace tg::models {
namespace {
constexpr const char* kModelType = "tapegrad_encoder";
}

void EncoderConfig::validate() const {
  auto positive = [](int64_t v, const char* name) {
    TG_CHECK(v > 0, "EncoderConfig: {} must be positive, got {}", name, v);
  };
  positive(vocab_size, "vocab_size");
  positive(n_classes, "n_classes");
  positive(max_len, "max_len");
  positive(n_layer, "n_layer");
  positive(n_head, "n_head");
  positive(n_embd, "n_embd");
  TG_CHECK(ffn_dim >= 0, "EncoderConfig: ffn_dim must be >= 0 (0 = 4·n_embd), got {}", ffn_dim);
  TG_CHECK(n_embd % n_head == 0, "EncoderConfig: n_embd {} is not divisible by n_head {}", n_embd, n_head);
  TG_CHECK(dropout >= 0.0 && dropout < 1.0, "EncoderConfig: dropout must be in [0, 1), got {}", dropout);
  TG_CHECK(layer_norm_eps > 0.0, "EncoderConfig: layer_norm_eps must be positive, got {}", layer_norm_eps);
  TG_CHECK(norm == "post" || norm == "pre", "EncoderConfig: norm must be 'post' or 'pre', got '{}'", norm);
  TG_CHECK(pos == "learned" || pos == "sinusoidal", "EncoderConfig: pos must be 'learned' or 'sinusoidal', got '{}'",
           pos);
  TG_CHECK(pooling == "mean" || pooling == "cls", "EncoderConfig: pooling must be 'mean' or 'cls', got '{}'",
           pooling);
  attention_spec();  // names a bad variant
  // ffn_width() (4·n_embd) and n_positions() (max_len + 1) must not overflow on the way.
  TG_CHECK(n_embd <= INT64_MAX / 4, "EncoderConfig: n_embd {} is too large", n_embd);
  TG_CHECK(max_len < INT64_MAX, "EncoderConfig: max_len {} is too large", max_len);
  encoder_parameter_count(*this);  // names the fields when the count overflows int64
}

AttentionSpec EncoderConfig::attention_spec() const {
  AttentionSpec spec;
  try {
    if (is_flex_pattern(attention))
      parse_model_flex_pattern(attention);  // flex_attention with it; the spec stays dense's
    else
      spec.variant = parse_attention_variant(attention, &spec);
  } catch (const Error& e) {
    fail("EncoderConfig: attention: {}", e.what());
  }
  return spec;
}

std::string EncoderConfig::to_json() const {
  nlohmann::ordered_json j;
  j["model_type"] = kModelType;
  j["vocab_size"] = vocab_size;
  j["n_classes"] = n_classes;
  j["max_len"] = max_len;
  j["n_layer"] = n_layer;
  j["n_head"] = n_head;
  j["n_embd"] = n_embd;
  j["ffn_dim"] = ffn_dim;
  j["dropout"] = dropout;
  j["norm"] = norm;
  j["pos"] = pos;
  j["pooling"] = pooling;
  j["attention"] = attention;
  j["layer_norm_eps"] = layer_norm_eps;
  j["bias"] = bias;
  j["activation_function"] = "gelu";
  return j.dump(2) + "\n";
}

EncoderConfig EncoderConfig::from_json(const std::string& text, const std::string& source) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  TG_CHECK(!j.is_discarded() && j.is_object(), "{}: not a JSON object", source);
  if (j.contains("model_type"))
    TG_CHECK(j["model_type"] == kModelType, "{}: model_type is {}, expected \"{}\"", source,
             j["model_type"].dump(), kModelType);
  EncoderConfig c;
  auto get_int = [&](const char* key, int64_t& out, bool required) {
    if (!j.contains(key)) {
      TG_CHECK(!required, "{}: missing \"{}\"", source, key);
      return;
    }
    TG_CHECK(j[key].is_number_integer(), "{}: \"{}\" must be an integer, got {}", source, key, j[key].dump());
    out = j[key].get<int64_t>();
  };
  auto get_double = [&](const char* key, double& out) {
    if (!j.contains(key)) return;
    TG_CHECK(j[key].is_number(), "{}: \"{}\" must be a number, got {}", source, key, j[key].dump());
    out = j[key].get<double>();
  };
  auto get_string = [&](const char* key, std::string& out) {
    if (!j.contains(key)) return;
    TG_CHECK(j[key].is_string(), "{}: \"{}\" must be a string, got {}", source, key, j[key].dump());
    out = j[key].get<std::string>();
  };
  get_int("vocab_size", c.vocab_size, true);
  get_int("n_classes", c.n_classes, true);
  get_int("max_len", c.max_len, false);
  get_int("n_layer", c.n_layer, false);
  get_int("n_head", c.n_head, false);
  get_int("n_embd", c.n_embd, false);
  get_int("ffn_dim", c.ffn_dim, false);
  get_double("dropout", c.dropout);
  get_double("layer_norm_eps", c.layer_norm_eps);
  get_string("norm", c.norm);
  get_string("pos", c.pos);
  get_string("pooling", c.pooling);
  get_string("attention", c.attention);
  if (j.contains("bias")) {
    TG_CHECK(j["bias"].is_boolean(), "{}: \"bias\" must be true or false, got {}", source, j["bias"].dump());
    c.bias = j["bias"].get<bool>();
  }
  if (j.contains("activation_function"))
    TG_CHECK(j["activation_function"] == "gelu", "{}: activation_function {} is not supported (gelu only)", source,
             j["activation_function"].dump());
  try {
    c.validate();
  } catch (const Error& e) {
    fail("{}: {}", source, e.what());
  }
  return c;
}

void EncoderConfig::save(const std::string& path) const {
  validate();
  write_file_atomically(path, to_json());
}

EncoderConfig EncoderConfig::load(const std::string& path) { return from_json(read_file_bytes(path), path); }

}  // namespace tg::models
