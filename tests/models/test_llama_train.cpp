// train_gpt with the Llama family: a new Llama-shaped model (grouped-query attention, SwiGLU)
// learns and resumes exactly; a transformers checkpoint is fine-tuned and written back in its
// family's layout, with the architecture the checkpoint fixes; gpt eval reads either family.
#include <filesystem>
#include <fstream>

#include "models/decoders/decoder_checkpoint.h"
#include "models/training/gpt_train.h"
#include "models/llama/llama_checkpoint.h"
#include "nn/file_io.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::TempDir;

const std::string kLlamaTiny = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/fixtures/llama/llama_tiny";

// Token ids < 64 (the fixture's vocabulary) as a .bin: a repeating phrase with some variation.
std::string write_tokens(const TempDir& dir) {
  std::vector<uint16_t> ids;
  for (int i = 0; i < 3000; ++i) ids.push_back(uint16_t((i % 11) * 5 % 64 + (i / 97) % 3));
  const std::string path = dir / "tokens.bin";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(ids.data()), std::streamsize(ids.size() * 2));
  return path;
}

models::GPTTrainOptions tiny_llama(const std::string& data, const std::string& out) {
  models::GPTTrainOptions o;
  o.data = data, o.out = out;
  o.model = "llama";
  o.n_layer = 2, o.n_head = 4, o.n_kv_head = 2, o.n_embd = 32, o.block_size = 16, o.optim.batch_size = 4;
  o.dropout = 0.1;  // attention dropout: its generator must resume too
  o.optim.max_iters = 30, o.optim.lr_decay_iters = 30, o.optim.eval_interval = 15, o.optim.eval_iters = 2;
  o.optim.warmup_iters = 3, o.optim.lr = 3e-3;
  o.optim.progress = false;
  return o;
}

TEST(LlamaTrain, NewModelLearnsAndResumesExactly) {
  TempDir dir;
  const std::string data = write_tokens(dir);
  models::GPTTrainResult full = models::train_gpt(tiny_llama(data, dir / "full"));
  ASSERT_TRUE(full.val_loss.has_value());
  EXPECT_LT(*full.val_loss, 0.75 * std::log(53.0));  // well below chance (ids reach 52)
  models::LoadedLlama loaded = models::load_llama(dir / "full");
  EXPECT_EQ(loaded.config.num_key_value_heads, 2);
  EXPECT_EQ(loaded.config.intermediate_size, 96);  // 8·32/3 rounded up to a multiple of 32
  EXPECT_EQ(full.num_parameters, loaded.model->num_parameters());

  models::GPTTrainOptions half = tiny_llama(data, dir / "part");
  half.optim.max_iters = 15;
  models::train_gpt(half);
  models::GPTTrainOptions rest = tiny_llama(data, dir / "part");
  rest.resume = dir / "part";
  models::GPTTrainResult resumed = models::train_gpt(rest);
  EXPECT_EQ(resumed.train_loss, full.train_loss);  // bit for bit
  EXPECT_EQ(*resumed.val_loss, *full.val_loss);
}

TEST(LlamaTrain, FineTunesATransformersCheckpointInItsLayout) {
  TempDir dir;
  const std::string data = write_tokens(dir);
  models::GPTTrainOptions o = tiny_llama(data, dir / "tuned");
  o.init_from = kLlamaTiny;
  o.optim.max_iters = 10, o.optim.lr_decay_iters = 10, o.optim.eval_interval = 10;
  models::adopt_resumed_options(o, [](const std::string&) { return false; });
  EXPECT_EQ(o.model, "llama");
  EXPECT_EQ(o.n_head, 4);  // the checkpoint's architecture, not the flags'
  const double before = models::evaluate_gpt(kLlamaTiny, data, 16);
  models::train_gpt(o);
  EXPECT_EQ(models::decoder_model_type(dir / "tuned"), "llama");
  const double after = models::evaluate_gpt(dir / "tuned", data, 16);
  EXPECT_LT(after, before);
  // A flag that contradicts the checkpoint is named.
  models::GPTTrainOptions bad = tiny_llama(data, dir / "bad");
  bad.init_from = kLlamaTiny;
  bad.n_kv_head = 4;
  EXPECT_TG_ERROR(models::adopt_resumed_options(bad, [](const std::string& f) { return f == "n_kv_head"; }),
                  "`n_kv_head` 4 (the checkpoint's is 2)");
}

TEST(LlamaTrain, CheckpointsAreWrittenInTheDtypeAsked) {
  TempDir dir;
  models::GPTTrainOptions o = tiny_llama(write_tokens(dir), dir / "bf16");
  o.optim.max_iters = 2, o.optim.lr_decay_iters = 2, o.optim.eval_interval = 0;
  o.save_dtype = "bfloat16";
  models::train_gpt(o);
  const std::string text = read_file_bytes(dir / "bf16/model.safetensors");
  EXPECT_NE(text.find("\"BF16\""), std::string::npos);
  EXPECT_EQ(text.find("\"F32\""), std::string::npos);
  models::LoadedLlama back = models::load_llama(dir / "bf16");
  EXPECT_EQ(back.config.storage_dtype, "bfloat16");
  EXPECT_EQ(back.config.dtype, DType::f32);
}

TEST(LlamaTrain, OptionsAreCheckedNamingTheFlag) {
  models::GPTTrainOptions o = tiny_llama("x.bin", "out");
  o.n_kv_head = 3;
  EXPECT_TG_ERROR(o.validate(), "`n_kv_head` (3) must divide `n_head` (4)");
  o = tiny_llama("x.bin", "out");
  o.model = "mamba";
  EXPECT_TG_ERROR(o.validate(), "`model` must be gpt2 or llama, got 'mamba'");
  o = tiny_llama("x.bin", "out");
  o.model = "gpt2", o.save_dtype = "float16";
  EXPECT_TG_ERROR(o.validate(), "`save_dtype` float16: GPT-2 checkpoints are written in float32");
}

}  // namespace
}  // namespace tg
