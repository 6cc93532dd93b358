// Checkpoints: save -> load round-trips bit-exactly (model, config, tokenizer, training state);
// loading reads bare and "transformer."-prefixed names and half precision; broken files give
// errors naming the file and every bad tensor. The character tokenizer.
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "models/gpt/gpt_checkpoint.h"
#include "nn/optim/adamw.h"
#include "nn/safetensors.h"
#include "test_util.h"

namespace tg::models {
namespace {
namespace fs = std::filesystem;

const std::string kFixture = std::string(TAPEGRAD_SOURCE_DIR) + "/tests/models/fixtures/gpt2_tiny";

using testing::TempDir;

GPTConfig tiny(DType dtype) {
  GPTConfig c;
  c.vocab_size = 9;
  c.n_positions = 6;
  c.n_embd = 8;
  c.n_layer = 2;
  c.n_head = 2;
  c.dtype = dtype;
  c.dropout = 0.1;
  return c;
}

// [B, T] i64 ids (i * mult) % 9.
Tensor ids(const Shape& shape, int64_t mult) {
  Tensor t = empty(shape, DType::i64);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = (i * mult) % 9;
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// A copy of the fixture checkpoint whose tensors `edit` changes.
template <class Edit>
void write_edited_fixture(const TempDir& dir, Edit edit) {
  fs::create_directories(dir.path);
  fs::copy_file(kFixture + "/config.json", dir.file("config.json"));
  nn::StateDict t = nn::load_safetensors(kFixture + "/model.safetensors");
  edit(t);
  nn::save_safetensors(dir.file("model.safetensors"), t);
}

TEST(GPTCheckpoint, SaveLoadRoundTripsBitExactly) {
  for (DType dtype : {DType::f32, DType::f64}) {
    TempDir dir("ckpt_roundtrip");
    Generator gen(4);
    GPT model(tiny(dtype), gen);
    CharTokenizer tok = CharTokenizer::from_text("hello world!\n");
    optim::AdamW opt(model.parameters());
    backward(model.forward(ids({2, 6}, 1), ids({2, 6}, 5)).loss);
    opt.step();
    model.set_attention(GPTAttention::parse("sliding:3"));  // a non-default config to round-trip
    TrainingState state;
    for (auto& [k, v] : opt.state_dict()) state.tensors["optimizer." + k] = v;
    state.json = R"({"step": 3, "seed": 1337, "generator_offset": 42})";
    save_checkpoint(dir.path, model, &tok, &state);
    save_checkpoint(dir.path, model, &tok, &state);  // overwriting works

    std::vector<std::string> files;
    for (auto& e : fs::directory_iterator(dir.path)) files.push_back(e.path().filename().string());
    std::sort(files.begin(), files.end());
    EXPECT_EQ(files, std::vector<std::string>({"config.json", "model.safetensors", "tokenizer.json",
                                               "train_state.json", "training_state.safetensors"}));

    LoadedGPT loaded = load_gpt(dir.path);
    EXPECT_EQ(loaded.config.to_json(), model.config.to_json());
    EXPECT_EQ(loaded.model->config.attention.name(), "sliding:3");
    auto a = model.named_parameters(), b = loaded.model->named_parameters();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].first, b[i].first);
      EXPECT_TRUE(same_bytes(a[i].second, b[i].second)) << a[i].first;
    }
    // The file holds GPT-2's bare names and the metadata Hugging Face's loader expects.
    nn::Metadata meta;
    nn::StateDict file = nn::load_safetensors(dir.file("model.safetensors"), &meta);
    EXPECT_EQ(meta["format"], "pt");
    EXPECT_TRUE(file.count("h.1.attn.c_attn.weight"));
    EXPECT_EQ(file.size(), a.size());

    std::optional<GPTTokenizer> tok2 = load_tokenizer(dir.path);
    ASSERT_TRUE(tok2.has_value() && tok2->chars());
    EXPECT_EQ(tok2->chars()->bytes(), tok.bytes());
    ASSERT_TRUE(has_training_state(dir.path));
    TrainingState s = load_training_state(dir.path);
    ASSERT_EQ(s.tensors.size(), state.tensors.size());
    for (auto& [k, v] : state.tensors) EXPECT_TRUE(same_bytes(s.tensors.at(k), v)) << k;
    EXPECT_NE(s.json.find("\"generator_offset\": 42"), std::string::npos) << s.json;
  }
}

TEST(GPTCheckpoint, LoadOptionsOverrideTheConfig) {
  LoadGPTOptions opts;
  opts.dtype = DType::f32;
  opts.attention = GPTAttention::parse("flash");
  opts.dropout = 0.2;
  LoadedGPT loaded = load_gpt(kFixture, opts);
  EXPECT_EQ(loaded.config.dtype, DType::f32);
  EXPECT_EQ(loaded.model->wte->weight.dtype(), DType::f32);
  EXPECT_EQ(loaded.model->config.attention.variant, AttentionVariant::flash);
  EXPECT_EQ(loaded.model->config.dropout, 0.2);
  EXPECT_FALSE(load_tokenizer(kFixture).has_value());
  EXPECT_FALSE(has_training_state(kFixture));
}

// Bare names, F32 values into an f64 model, and half precision (values exact in 16 bits).
TEST(GPTCheckpoint, ReadsBareNamesAndHalfPrecision) {
  GPTConfig c = load_gpt_config(kFixture);
  Generator gen(1);
  GPT model(c, gen);
  nn::StateDict f32;
  for (auto& [name, p] : model.named_parameters()) {
    Tensor t = empty(p.shape(), DType::f32);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float((i * 7 + int64_t(name.size())) % 33 - 16) / 32.f;
    f32[name] = t;
  }
  load_gpt_weights(model, f32, "f32 test");
  for (auto& [name, p] : model.named_parameters()) EXPECT_EQ(p.to_vector(), f32.at(name).to_vector()) << name;

  for (const char* dtype : {"F16", "BF16"}) {
    SCOPED_TRACE(dtype);
    // Hand-written safetensors file of 16-bit values.
    std::string header = "{", data;
    for (auto& [name, t] : f32) {
      std::string bytes;
      for (int64_t i = 0; i < t.numel(); ++i) {
        uint32_t bits;
        float v = t.data<float>()[i];
        std::memcpy(&bits, &v, 4);
        uint16_t h;
        if (std::string(dtype) == "BF16") {
          h = uint16_t(bits >> 16);
        } else if (v == 0) {
          h = uint16_t((bits >> 16) & 0x8000);
        } else {  // a normal float with few mantissa bits: rebias the exponent
          h = uint16_t(((bits >> 16) & 0x8000) | ((((bits >> 23) & 0xff) - 127 + 15) << 10) | ((bits >> 13) & 0x3ff));
        }
        bytes.append(reinterpret_cast<const char*>(&h), 2);
      }
      if (header.size() > 1) header += ",";
      header += fmt::format(R"("{}":{{"dtype":"{}","shape":[{}],"data_offsets":[{},{}]}})", name, dtype,
                            fmt::join(t.shape(), ","), data.size(), data.size() + bytes.size());
      data += bytes;
    }
    header += "}";
    TempDir dir("ckpt_half");
    fs::create_directories(dir.path);
    fs::copy_file(kFixture + "/config.json", dir.file("config.json"));
    std::ofstream out(dir.file("model.safetensors"), std::ios::binary);
    uint64_t n = header.size();
    out.write(reinterpret_cast<const char*>(&n), 8);
    out << header << data;
    out.close();
    LoadedGPT loaded = load_gpt(dir.path);
    for (auto& [name, p] : loaded.model->named_parameters()) EXPECT_EQ(p.to_vector(), f32.at(name).to_vector()) << name;
  }
}

TEST(GPTCheckpoint, BrokenCheckpointsGiveClearErrors) {
  {
    TempDir dir("ckpt_truncated");
    fs::create_directories(dir.path);
    fs::copy_file(kFixture + "/config.json", dir.file("config.json"));
    fs::copy_file(kFixture + "/model.safetensors", dir.file("model.safetensors"));
    fs::resize_file(dir.file("model.safetensors"), fs::file_size(dir.file("model.safetensors")) - 100);
    EXPECT_TG_ERROR(load_gpt(dir.path), dir.file("model.safetensors"));
    fs::resize_file(dir.file("model.safetensors"), 5);
    EXPECT_TG_ERROR(load_gpt(dir.path), "too short for a header");
  }
  {
    TempDir dir("ckpt_shape");
    write_edited_fixture(dir, [](nn::StateDict& t) {
      t["transformer.wte.weight"] = zeros({17, 13}, DType::f64);
      t["transformer.h.1.mlp.c_fc.weight"] = zeros({48, 12}, DType::f64);  // nn.Linear's layout, not Conv1D's
    });
    EXPECT_TG_ERROR(load_gpt(dir.path), "wrong shapes or dtypes [transformer.h.1.mlp.c_fc.weight is f64 [48, 12] in the "
                                        "file, the model needs [12, 48], transformer.wte.weight is f64 [17, 13]");
    EXPECT_TG_ERROR(load_gpt(dir.path), dir.file("model.safetensors"));
  }
  {
    TempDir dir("ckpt_missing");
    write_edited_fixture(dir, [](nn::StateDict& t) {
      t.erase("transformer.ln_f.bias");
      t.erase("transformer.h.0.attn.c_proj.weight");
    });
    EXPECT_TG_ERROR(load_gpt(dir.path), "missing tensors [h.0.attn.c_proj.weight, ln_f.bias]; unexpected tensors [none]");
  }
  {
    TempDir dir("ckpt_unknown");
    write_edited_fixture(dir, [](nn::StateDict& t) {
      t["transformer.h.0.attn.rotary"] = zeros({3}, DType::f64);
      t["transformer.h.2.ln_1.weight"] = zeros({12}, DType::f64);
    });
    EXPECT_TG_ERROR(load_gpt(dir.path),
                    "missing tensors [none]; unexpected tensors [transformer.h.0.attn.rotary, transformer.h.2.ln_1.weight]");
  }
  {
    TempDir dir("ckpt_dtype");
    write_edited_fixture(dir, [](nn::StateDict& t) { t["transformer.ln_f.bias"] = zeros({12}, DType::i64); });
    EXPECT_TG_ERROR(load_gpt(dir.path), "transformer.ln_f.bias is i64 [12] in the file");
  }
  {
    TempDir dir("ckpt_head");
    write_edited_fixture(dir, [](nn::StateDict& t) { t["lm_head.weight"] = zeros({17, 12}, DType::f64); });
    EXPECT_TG_ERROR(load_gpt(dir.path), "lm_head.weight [17, 12] differs from wte.weight [17, 12]");
  }
  {
    TempDir dir("ckpt_twice");
    write_edited_fixture(dir, [](nn::StateDict& t) { t["wpe.weight"] = t.at("transformer.wpe.weight"); });
    EXPECT_TG_ERROR(load_gpt(dir.path), "tensors given twice: transformer.wpe.weight and wpe.weight");
  }
  {
    TempDir dir("ckpt_nofiles");
    EXPECT_TG_ERROR(load_gpt(dir.path), "has no config.json");
    fs::create_directories(dir.path);
    fs::copy_file(kFixture + "/config.json", dir.file("config.json"));
    EXPECT_TG_ERROR(load_gpt(dir.path), "has no model.safetensors");
    EXPECT_TG_ERROR(load_training_state(dir.path), "train");
    EXPECT_TG_ERROR(save_training_state(dir.path, {}, "[1, 2]"), "is not an object");
    std::ofstream(dir.file("config.json")) << R"({"model_type": "gpt2", "n_embd": 12, "n_head": 5})";
    EXPECT_TG_ERROR(load_gpt(dir.path), "n_embd (12) must be divisible by n_head (5) (in " + dir.file("config.json"));
  }
}

// --- CharTokenizer -------------------------------------------------------------------------------

TEST(CharTokenizer, SortedBytesEncodeDecode) {
  CharTokenizer tok = CharTokenizer::from_text("hello, world\n");
  EXPECT_EQ(tok.vocab_size(), 10);
  std::vector<uint8_t> want = {'\n', ' ', ',', 'd', 'e', 'h', 'l', 'o', 'r', 'w'};
  EXPECT_EQ(tok.bytes(), want);
  EXPECT_EQ(tok.encode("hold"), std::vector<int64_t>({5, 7, 6, 3}));
  EXPECT_EQ(tok.decode(tok.encode("low world,\n")), "low world,\n");
  EXPECT_TG_ERROR(tok.encode("hello!"), "character '!' (0x21) at offset 5 is not in the vocabulary of 10");
  EXPECT_TG_ERROR(tok.encode("x\t"), "'x'");
  EXPECT_TG_ERROR(tok.decode({1, 10}), "id 10 at index 1 is outside [0, 10)");
  EXPECT_TG_ERROR(CharTokenizer::from_text(""), "empty corpus");
  // UTF-8 is handled as bytes.
  CharTokenizer utf = CharTokenizer::from_text("né");
  EXPECT_EQ(utf.vocab_size(), 3);
  EXPECT_EQ(utf.decode(utf.encode("én")), "én");
}

TEST(CharTokenizer, SavesAndLoadsAnyByte) {
  std::string corpus;
  for (int c = 0; c < 256; c += 3) corpus.push_back(char(c));
  CharTokenizer tok = CharTokenizer::from_text(corpus);
  TempDir dir("tokenizer");
  fs::create_directories(dir.path);
  tok.save(dir.file("tokenizer.json"));
  EXPECT_FALSE(fs::exists(dir.file("tokenizer.json.tmp")));
  CharTokenizer back = CharTokenizer::load(dir.file("tokenizer.json"));
  EXPECT_EQ(back.bytes(), tok.bytes());
  EXPECT_EQ(back.decode(back.encode(corpus)), corpus);
  EXPECT_TG_ERROR(CharTokenizer::from_json(R"({"type": "bpe"})", "t.json"), "t.json: \"type\" must be \"char\"");
  EXPECT_TG_ERROR(CharTokenizer::from_json(R"({"type": "char", "bytes": [1, 300]})"), "not a byte value");
  EXPECT_TG_ERROR(CharTokenizer::from_json(R"({"type": "char", "bytes": [65, 65]})"), "'A' (0x41) appears twice");
  EXPECT_TG_ERROR(CharTokenizer::load(dir.file("absent.json")), "cannot read");
}

TEST(CharTokenizer, TinyShakespeareHas65Characters) {
  std::string path;
  for (const char* p : {"/../shared/data/tinyshakespeare.txt", "/../../shared/data/tinyshakespeare.txt",
                        "/data/tinyshakespeare.txt"})
    if (fs::exists(std::string(TAPEGRAD_SOURCE_DIR) + p)) path = std::string(TAPEGRAD_SOURCE_DIR) + p;
  if (path.empty()) GTEST_SKIP() << "tinyshakespeare.txt not found";
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CharTokenizer tok = CharTokenizer::from_text(text);
  EXPECT_EQ(tok.vocab_size(), 65);
  EXPECT_EQ(tok.decode(tok.encode(text.substr(0, 1000))), text.substr(0, 1000));
}

}  // namespace
}  // namespace tg::models
