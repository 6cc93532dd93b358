#pragma once
// Fields of a config.json (nlohmann::json), read with a fallback when absent or null and a
// tg::Error naming the file and the field when present with the wrong type:
//   "<where>: field 'n_embd' must be an integer, got \"12\"".
// Also tapegrad's own "tapegrad_attention" object (the kernel a decoder's layers run), read and
// written alike by every decoder family. For the .cpp files of models/ only: it brings
// nlohmann/json into the includer.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "autograd/error.h"
#include "models/gpt/gpt_config.h"

namespace tg::models::config_fields {

using json = nlohmann::json;

int64_t get_int(const json& j, const char* key, int64_t fallback, const std::string& where);
double get_double(const json& j, const char* key, double fallback, const std::string& where);
std::string get_string(const json& j, const char* key, const std::string& fallback, const std::string& where);
bool get_bool(const json& j, const char* key, bool fallback, const std::string& where);

/// The "tapegrad_attention" object: {"variant", "window", "sparse": {...}, "flex"} (a custom
/// pattern by its name only: config.json cannot hold C++ code).
json attention_to_json(const GPTAttention& attention);
/// Its inverse; a custom pattern is kept by name (the model is built only when it is given again).
GPTAttention attention_from_json(const json& a, const std::string& where);

/// `config` once its validate() passes; its error rethrown naming `source` ("... (in DIR/config.json)").
template <class Config>
Config validated_in(Config config, const std::string& source) {
  try {
    config.validate();
  } catch (const Error& e) {
    fail("{} (in {})", e.what(), source);
  }
  return config;
}

}  // namespace tg::models::config_fields
