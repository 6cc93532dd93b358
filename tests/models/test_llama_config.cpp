// Llama-family configs and weight files: both transformers versions' config.json spellings give
// the same config, what to_json writes reads back, bad configs and bad sharded indexes are
// refused naming the file and the field, and sizes that disagree with the tensors are listed.
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "models/hf/hf_weights.h"
#include "models/llama/llama_checkpoint.h"
#include "nn/file_io.h"
#include "test_util.h"

namespace tg::models {
namespace {

namespace fs = std::filesystem;
const std::string kLlamaConfigFixtures = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/fixtures/llama";

LlamaConfig read_config(const std::string& dir) {
  return LlamaConfig::from_json(read_file_bytes(dir + "/config.json"), dir + "/config.json");
}

// llama_tiny's config.json with one field set to `value` (JSON text).
std::string edited(const std::string& field, const std::string& value) {
  nlohmann::json j = nlohmann::json::parse(read_file_bytes(kLlamaConfigFixtures + "/llama_tiny/config.json"));
  j[field] = nlohmann::json::parse(value);
  return j.dump(2);
}

TEST(LlamaConfig, Transformers4And5SpellingsGiveTheSameConfig) {
  for (const char* name : {"llama_tiny", "llama3_scaled", "llama_linear_rope", "mistral_tiny", "qwen2_tiny"}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(read_config(kLlamaConfigFixtures + "/" + name).to_json(), read_config(kLlamaConfigFixtures + "/" + name + "_v4").to_json());
  }
}

TEST(LlamaConfig, ReadsEachFamilysFields) {
  const LlamaConfig l3 = read_config(kLlamaConfigFixtures + "/llama3_scaled");
  EXPECT_EQ(l3.rope_scaling.rope_type, "llama3");
  EXPECT_EQ(l3.rope_scaling.factor, 8.0);
  EXPECT_EQ(l3.rope_scaling.original_max_position_embeddings, 256);
  EXPECT_EQ(l3.rope_theta, 500000.0);
  EXPECT_EQ(l3.storage_dtype, "bfloat16");
  EXPECT_EQ(l3.dtype, DType::f32);  // half precision is computed in f32
  EXPECT_TRUE(l3.tie_word_embeddings);
  const LlamaConfig mq = read_config(kLlamaConfigFixtures + "/llama_linear_rope_v4");  // {"type": "linear"}
  EXPECT_EQ(mq.rope_scaling.rope_type, "linear");
  EXPECT_EQ(mq.rope_scaling.factor, 2.0);
  EXPECT_EQ(mq.num_key_value_heads, 1);
  const LlamaConfig mistral = read_config(kLlamaConfigFixtures + "/mistral_tiny");
  EXPECT_EQ(mistral.sliding_window, 6);
  EXPECT_TRUE(mistral.layer_uses_sliding_window(0) && mistral.layer_uses_sliding_window(1));
  EXPECT_FALSE(mistral.attention_bias);
  // Qwen2: q, k, v biases, none on o_proj; sliding_window 6 with use_sliding_window false slides nowhere.
  const LlamaConfig qwen = read_config(kLlamaConfigFixtures + "/qwen2_tiny_v4");
  EXPECT_TRUE(qwen.attention_bias);
  EXPECT_FALSE(qwen.o_proj_bias());
  EXPECT_FALSE(qwen.layer_uses_sliding_window(0) || qwen.layer_uses_sliding_window(1));
}

TEST(LlamaConfig, WhatToJsonWritesReadsBack) {
  for (const char* name : {"llama3_scaled", "mistral_tiny", "qwen2_tiny"}) {
    const LlamaConfig c = read_config(kLlamaConfigFixtures + "/" + name);
    EXPECT_EQ(LlamaConfig::from_json(c.to_json()).to_json(), c.to_json()) << name;
  }
  LlamaConfig q = read_config(kLlamaConfigFixtures + "/qwen2_tiny");
  q.sliding_window = 4;
  q.layer_types = {"full_attention", "sliding_attention"};
  const LlamaConfig back = LlamaConfig::from_json(q.to_json());
  EXPECT_FALSE(back.layer_uses_sliding_window(0));
  EXPECT_TRUE(back.layer_uses_sliding_window(1));
}

TEST(LlamaConfig, BadFieldsAreNamed) {
  const auto parse = [](const std::string& text) { return LlamaConfig::from_json(text, "cfg/config.json"); };
  EXPECT_TG_ERROR(parse(edited("model_type", "\"falcon\"")), "cfg/config.json: model_type 'falcon' is not one of llama, mistral, qwen2");
  EXPECT_TG_ERROR(parse(edited("num_key_value_heads", "3")), "num_key_value_heads (3) must divide num_attention_heads (4)");
  EXPECT_TG_ERROR(parse(edited("rope_parameters", "{\"rope_type\": \"yarn\", \"rope_theta\": 10000.0}")),
                  "rope_parameters: rope_type \"yarn\" is not supported (supported: default, linear, llama3)");
  EXPECT_TG_ERROR(parse(edited("head_dim", "16")), "head_dim 16 is not hidden_size / num_attention_heads = 32 / 4");
  EXPECT_TG_ERROR(parse(edited("hidden_act", "\"gelu\"")), "hidden_act 'gelu' is not supported (silu)");
  EXPECT_TG_ERROR(parse(edited("hidden_size", "\"32\"")), "cfg/config.json: field 'hidden_size' must be an integer, got \"32\"");
  EXPECT_TG_ERROR(parse("[1, 2]"), "LlamaConfig: cfg/config.json is not a JSON object");
}

// A copy of a fixture directory to break.
std::string copy_fixture(const testing::TempDir& dir, const std::string& name) {
  const std::string to = dir.file(name);
  fs::copy(kLlamaConfigFixtures + "/" + name, to, fs::copy_options::recursive);
  return to;
}

TEST(LlamaCheckpoint, ShardedIndexErrorsNameTheIndexAndTheShard) {
  testing::TempDir dir;
  const std::string ck = copy_fixture(dir, "llama3_scaled");
  const std::string index = ck + "/model.safetensors.index.json";
  const std::string good = read_file_bytes(index);
  const auto with_index = [&](const std::string& text) {
    write_file_atomically(index, text);
    return ck;
  };
  fs::remove(ck + "/model-00002-of-00002.safetensors");
  EXPECT_TG_ERROR(load_llama(ck), "names the shard " + ck + "/model-00002-of-00002.safetensors, which is missing");
  fs::copy(kLlamaConfigFixtures + "/llama3_scaled/model-00002-of-00002.safetensors", ck + "/model-00002-of-00002.safetensors");
  // The same tensor twice in weight_map.
  std::string twice = good;
  twice.insert(twice.find("\"weight_map\": {") + 15, "\n    \"model.norm.weight\": \"model-00001-of-00002.safetensors\",");
  EXPECT_TG_ERROR(load_llama(with_index(twice)), "weight_map names tensor 'model.norm.weight' twice");
  // A shard outside the directory.
  std::string outside = good;
  outside.replace(outside.find("model-00001-of-00002.safetensors"), 32, "../x.safetensors");
  EXPECT_TG_ERROR(load_llama(with_index(outside)), "is not a file name in the directory");
  EXPECT_TG_ERROR(load_llama(with_index("{\"metadata\": {}}")), "has no \"weight_map\" object");
  with_index(good);
  EXPECT_NO_THROW(load_llama(ck));
}

TEST(LlamaCheckpoint, SizesThatDisagreeWithTheTensorsAreListed) {
  testing::TempDir dir;
  const std::string ck = copy_fixture(dir, "llama_tiny");
  std::string config = read_file_bytes(ck + "/config.json");
  config.replace(config.find("\"intermediate_size\": 48"), 23, "\"intermediate_size\": 40");
  write_file_atomically(ck + "/config.json", config);
  EXPECT_TG_ERROR(load_llama(ck), "load_llama: " + ck + "/model.safetensors does not fit the model of its config: "
                                  "missing tensors [none]; unexpected tensors [none]; wrong shapes or dtypes "
                                  "[model.layers.0.mlp.down_proj.weight is f32 [32, 48] in the file, the model needs [32, 40]");
  EXPECT_TG_ERROR(load_llama(dir.path.string()), "has no config.json");
}

}  // namespace
}  // namespace tg::models
