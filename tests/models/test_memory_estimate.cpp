// Sizes that overflow or cannot fit (issue 15), for models: parameter counts from configs match
// the models built from them and overflow with the fields named; a config.json that claims more
// than its model.safetensors holds is refused before the model is built; training estimates.
#include <filesystem>
#include <fstream>

#include "models/encoder/encoder.h"
#include "models/decoders/generate.h"
#include "models/gpt/gpt.h"
#include "models/gpt/gpt_checkpoint.h"
#include "models/training/memory_estimate.h"
#include "models/training/parameter_count.h"
#include "models/data/token_data.h"
#include "nn/file_io.h"
#include "test_util.h"

namespace tg::models {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const std::string kTinyCheckpoint = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/fixtures/gpt2_tiny";

GPTConfig tiny_gpt(bool bias) {
  GPTConfig c;
  c.vocab_size = 23, c.n_positions = 16, c.n_embd = 12, c.n_layer = 3, c.n_head = 3, c.bias = bias;
  return c;
}

TEST(ParameterCount, GPTCountIsWhatTheModelHas) {
  for (bool bias : {true, false}) {
    SCOPED_TRACE(bias);
    GPTConfig c = tiny_gpt(bias);
    EXPECT_EQ(gpt_parameter_count(c), GPT(c).num_parameters());
  }
}

TEST(ParameterCount, EncoderCountIsWhatTheModelHas) {
  for (bool bias : {true, false})
    for (const char* pooling : {"mean", "cls"})
      for (const char* norm : {"pre", "post"})
        for (const char* pos : {"learned", "sinusoidal"}) {
          EncoderConfig c;
          c.vocab_size = 19, c.n_classes = 5, c.max_len = 9, c.n_layer = 2, c.n_head = 2, c.n_embd = 8;
          c.ffn_dim = bias ? 0 : 20;
          c.bias = bias, c.pooling = pooling, c.norm = norm, c.pos = pos;
          SCOPED_TRACE(c.to_json());
          EXPECT_EQ(encoder_parameter_count(c), EncoderClassifier(c).num_parameters());
        }
}

TEST(ParameterCount, OverflowNamesTheFields) {
  GPTConfig g = tiny_gpt(true);
  g.n_embd = int64_t(3) << 40, g.n_layer = 1000;
  EXPECT_TG_ERROR(gpt_parameter_count(g), "GPTConfig: the parameter count of vocab_size 23, n_positions 16, n_embd");
  EXPECT_TG_ERROR(g.validate(), "overflows int64");
  EncoderConfig e;
  e.vocab_size = 10, e.n_embd = int64_t(1) << 40;
  EXPECT_TG_ERROR(encoder_parameter_count(e), "EncoderConfig: the parameter count of vocab_size 10");
  EXPECT_TG_ERROR(GPTConfig::from_json(R"({"model_type": "gpt2", "vocab_size": 4611686018427387904})", "my/config.json"),
                  "my/config.json");
}

// A copy of the fixture checkpoint whose config.json claims vocab_size 2^40.
void write_huge_vocab_checkpoint(const std::string& dir) {
  fs::copy(kTinyCheckpoint, dir, fs::copy_options::recursive);
  std::string config = read_file_bytes(dir + "/config.json");
  size_t at = config.find("\"vocab_size\": 17");
  ASSERT_NE(at, std::string::npos);
  config.replace(at, 16, "\"vocab_size\": 1099511627776");
  std::ofstream(dir + "/config.json") << config;
}

TEST(CheckpointSizes, AConfigClaimingMoreThanItsWeightsIsRefusedBeforeBuilding) {
  TempDir tmp;
  const std::string dir = tmp.file("huge_vocab");
  write_huge_vocab_checkpoint(dir);
  EXPECT_TG_ERROR(load_gpt(dir), "config.json claims a model of");
  EXPECT_TG_ERROR(load_gpt(dir), "model.safetensors has only");
  // The fixture itself still loads.
  EXPECT_EQ(load_gpt(kTinyCheckpoint).model->num_parameters(), gpt_parameter_count(load_gpt_config(kTinyCheckpoint)));
}

TEST(CheckpointSizes, ParametersMustBeBackedByTheWeightsFile) {
  TempDir tmp;
  const std::string weights = tmp.file("w.safetensors");
  std::ofstream(weights) << std::string(1000, 'x');
  check_checkpoint_fits(400, 8, "config.json", weights);  // 400 parameters, 1000 bytes: fits
  EXPECT_TG_ERROR(check_checkpoint_fits(501, 8, "a/config.json", weights), "a/config.json claims a model of 501");
}

TEST(TrainingMemory, EstimatesGrowWithTheSizesAndCountOptimizerState) {
  GPTConfig c = tiny_gpt(true);
  const double p = double(gpt_parameter_count(c)) * 4;
  TrainingMemory adamw = gpt_training_memory(c, 4, 16, "adamw", false);
  EXPECT_DOUBLE_EQ(adamw.parameters, 4 * p);
  EXPECT_DOUBLE_EQ(gpt_training_memory(c, 4, 16, "sgd", false).parameters, 3 * p);
  EXPECT_GT(gpt_training_memory(c, 8, 16, "adamw", false).activations, adamw.activations);
  EXPECT_LT(gpt_training_memory(c, 4, 16, "adamw", true).activations, adamw.activations);
  // No product overflows: an absurd request is a huge estimate, not a wrapped small one.
  c.n_embd = 3'000'000, c.n_layer = 3000;
  EXPECT_GT(gpt_training_memory(c, 1 << 20, 1 << 20, "adamw", false).total(), 1e20);
}

TEST(TrainingMemory, TrainGPTRefusesUpFrontNamingTheFlagsAndTheEstimate) {
  GPTTrainOptions o;
  o.n_embd = 1'000'000, o.n_layer = 1000;
  EXPECT_TG_ERROR(check_gpt_training_fits(o, 65, nullptr), "`n_embd` 1000000 `n_layer` 1000");
  EXPECT_TG_ERROR(check_gpt_training_fits(o, 65, nullptr), "GB available");
  o = GPTTrainOptions{};
  o.optim.batch_size = int64_t(1) << 62;
  EXPECT_TG_ERROR(check_gpt_training_fits(o, 65, nullptr), "`batch_size` × `block_size`");
  o = GPTTrainOptions{};
  check_gpt_training_fits(o, 65, nullptr);  // the defaults fit
}

TEST(GenerationSizes, MaxNewTokensBeyondMemoryOrInt64IsRefused) {
  GPT model(tiny_gpt(true));
  Generator gen(0);
  const Tensor prompt = zeros({1, 2}, DType::i64);
  EXPECT_TG_ERROR(generate(model, prompt, INT64_MAX, 1.0, 0, gen), "the prompt's length + max_new_tokens");
  EXPECT_TG_ERROR(generate(model, prompt, int64_t(1) << 60, 1.0, 0, gen), "max_new_tokens 1152921504606846976");
}

TEST(GenerationSizes, EvaluationWindowsTakeAnyBatchSize) {
  std::vector<uint16_t> tokens(100, 1);
  data::WindowBatches windows(tokens, 16, INT64_MAX);
  EXPECT_EQ(windows.num_batches(), 2);  // 6 full windows in one batch, and the tail
  data::TokenBatch b;
  ASSERT_TRUE(windows.next(b));
  EXPECT_EQ(b.x.shape(), (Shape{6, 16}));
}

}  // namespace
}  // namespace tg::models
