// The encoder classifier: shapes and errors, parameter names, padding invariance (extra padding
// in the batch changes nothing, mean and CLS pooling, post- and pre-LN), attention weights over
// padding, gradients against finite differences in f64 (inputs via tg::gradcheck, every
// parameter element by hand), config JSON and checkpoints, and a short training run on a small
// ListOps task that must beat the majority class.
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "models/encoder/encoder.h"
#include "models/data/listops.h"
#include "nn/optim/adamw.h"
#include "test_util.h"

namespace tg {
namespace {

namespace fs = std::filesystem;
using models::EncoderClassifier;
using models::EncoderConfig;

EncoderConfig tiny(const std::string& norm, const std::string& pooling, const std::string& pos) {
  EncoderConfig c;
  c.vocab_size = 6, c.n_classes = 3, c.max_len = 9;
  c.n_layer = 2, c.n_head = 2, c.n_embd = 4, c.ffn_dim = 6;
  c.dropout = 0.0, c.norm = norm, c.pooling = pooling, c.pos = pos;
  return c;
}

struct Variant {
  std::string norm, pooling, pos;
};
const std::vector<Variant> kVariants = {{"post", "mean", "learned"}, {"post", "cls", "sinusoidal"},
                                        {"pre", "mean", "sinusoidal"}, {"pre", "cls", "learned"}};

std::string name_of(const Variant& v) { return v.norm + "/" + v.pooling + "/" + v.pos; }

Tensor ids_of(const std::vector<std::vector<int64_t>>& rows, int64_t T, int64_t pad) {
  std::vector<double> v;
  for (const auto& r : rows)
    for (int64_t t = 0; t < T; ++t) v.push_back(t < int64_t(r.size()) ? double(r[size_t(t)]) : double(pad));
  return tensor(v, {int64_t(rows.size()), T}, DType::i64);
}

TEST(Encoder, ForwardShapesAndNames) {
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(name_of(v));
    EncoderClassifier model(tiny(v.norm, v.pooling, v.pos));
    Tensor logits = model.forward(ids_of({{1, 2, 3}, {4, 5}}, 3, 0), {3, 2});
    EXPECT_EQ(logits.shape(), Shape({2, 3}));
    for (double x : logits.to_vector()) EXPECT_TRUE(std::isfinite(x));
    EXPECT_EQ(model.forward(ids_of({{1, 2, 3}}, 3, 0)).shape(), Shape({1, 3}));
    nn::StateDict sd = model.state_dict();
    for (const char* name : {"embedding.weight", "encoder.layers.0.self_attn.in_proj_weight",
                             "encoder.layers.1.self_attn.in_proj_bias", "encoder.layers.0.self_attn.out_proj.weight",
                             "encoder.layers.1.linear1.weight", "encoder.layers.1.linear2.bias",
                             "encoder.layers.0.norm1.weight", "encoder.layers.0.norm2.bias", "classifier.weight"})
      EXPECT_TRUE(sd.count(name)) << name;
    EXPECT_EQ(sd.count("pos_embedding.weight"), size_t(v.pos == "learned"));
    EXPECT_EQ(sd.count("cls_token"), size_t(v.pooling == "cls"));
    EXPECT_EQ(sd.count("encoder.norm.weight"), size_t(v.norm == "pre"));
    if (v.pos == "learned") {  // a row for the CLS token too
      EXPECT_EQ(sd["pos_embedding.weight"].shape(), Shape({9 + (v.pooling == "cls"), 4}));
    }
    EXPECT_EQ(sd["encoder.layers.0.self_attn.in_proj_weight"].shape(), Shape({12, 4}));
  }
}

TEST(Encoder, InputErrors) {
  EncoderClassifier model(tiny("post", "mean", "learned"));
  Tensor ids = ids_of({{1, 2, 3}, {4, 5}}, 3, 0);
  EXPECT_TG_ERROR(model.forward(ids, {3}), "1 lengths for a batch of 2");
  EXPECT_TG_ERROR(model.forward(ids, {3, 0}), "lengths[1] = 0 is outside [1, T=3]");
  EXPECT_TG_ERROR(model.forward(ids, {4, 2}), "lengths[0] = 4 is outside [1, T=3]");
  EXPECT_TG_ERROR(model.forward(ids_of({{1, 6}}, 2, 0)), "token id 6 is outside [0, vocab_size=6)");
  EXPECT_TG_ERROR(model.forward(zeros({1, 10}, DType::i64)), "sequences of 10 tokens are longer than max_len=9");
  EXPECT_TG_ERROR(model.forward(zeros({1, 3})), "ids must be i64 [B, T], got f32 [1, 3]");
}

TEST(Encoder, ConfigValidationAndJson) {
  EncoderConfig c = tiny("pre", "cls", "sinusoidal");
  c.attention = "sliding:3";
  EncoderConfig back = EncoderConfig::from_json(c.to_json());
  EXPECT_TRUE(back == c);
  EXPECT_EQ(back.attention_spec().variant, AttentionVariant::sliding_window);
  EXPECT_EQ(back.attention_spec().window, 3);
  auto bad = [&](auto edit, const std::string& message) {
    EncoderConfig b = tiny("post", "mean", "learned");
    edit(b);
    EXPECT_TG_ERROR(b.validate(), message);
  };
  bad([](EncoderConfig& b) { b.n_embd = 5; }, "n_embd 5 is not divisible by n_head 2");
  bad([](EncoderConfig& b) { b.vocab_size = 0; }, "vocab_size must be positive, got 0");
  bad([](EncoderConfig& b) { b.norm = "middle"; }, "norm must be 'post' or 'pre', got 'middle'");
  bad([](EncoderConfig& b) { b.pooling = "max"; }, "pooling must be 'mean' or 'cls'");
  bad([](EncoderConfig& b) { b.pos = "rope"; }, "pos must be 'learned' or 'sinusoidal'");
  bad([](EncoderConfig& b) { b.dropout = 1.0; }, "dropout must be in [0, 1)");
  bad([](EncoderConfig& b) { b.attention = "sliding:x"; }, "attention: attention variant 'sliding:x'");
  bad([](EncoderConfig& b) { b.attention = "fast"; }, "unknown attention variant 'fast'");
  EXPECT_TG_ERROR(EncoderConfig::from_json("{\"n_classes\": 2}", "c.json"), "c.json: missing \"vocab_size\"");
  EXPECT_TG_ERROR(EncoderConfig::from_json("{\"vocab_size\": 5, \"n_classes\": \"2\"}", "c.json"),
                  "\"n_classes\" must be an integer");
  EXPECT_TG_ERROR(EncoderConfig::from_json("{\"vocab_size\": 5, \"n_classes\": 2, \"n_head\": 3}", "c.json"),
                  "c.json: EncoderConfig: n_embd 128 is not divisible by n_head 3");
  EXPECT_TG_ERROR(EncoderConfig::from_json("{\"model_type\": \"gpt2\"}", "c.json"), "model_type is \"gpt2\"");
  EXPECT_TG_ERROR(EncoderConfig::from_json("not json", "c.json"), "c.json: not a JSON object");
}

// A sequence's logits do not change when it is padded further, whatever the pad ids and the
// other sequences of the batch.
TEST(Encoder, PaddingInvariance) {
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(name_of(v));
    EncoderConfig c = tiny(v.norm, v.pooling, v.pos);
    c.dropout = 0.2;  // eval() must switch it off
    manual_seed(3);
    EncoderClassifier model(c);
    model.eval();
    std::vector<int64_t> a = {1, 4, 2, 2, 5};
    Tensor alone = model.forward(ids_of({a}, 5, 0), {5});                 // [1, 3]
    Tensor batch = model.forward(ids_of({{3, 1, 1, 2, 4, 5, 1, 2, 3}, a}, 9, 0), {9, 5});
    Tensor junk = model.forward(ids_of({a, {5, 5}}, 9, 3), {5, 2});       // pad id 3, not 0
    testing::expect_close(narrow(batch, 0, 1, 1), alone, 1e-5, 1e-6);
    testing::expect_close(narrow(junk, 0, 0, 1), alone, 1e-5, 1e-6);
    // And the short sequence in `junk` matches itself alone.
    testing::expect_close(narrow(junk, 0, 1, 1), model.forward(ids_of({{5, 5}}, 2, 0), {2}), 1e-5, 1e-6);
  }
}

// The attention variant is a config option. Variants whose pattern covers these short sequences
// (flash; sliding with a window of at least T; sparse with one block) give dense's logits; every
// variant ignores padding. Variants not yet merged into this tree are skipped.
TEST(Encoder, AttentionVariantsAgreeWithDense) {
  for (std::string variant : {"flash", "sliding:16", "sparse", "linear"}) {
    SCOPED_TRACE(variant);
    EncoderConfig c = tiny("post", "mean", "learned");
    manual_seed(4);
    EncoderClassifier dense(c);
    c.attention = variant;
    EncoderClassifier model(c);
    model.load_state_dict(dense.state_dict());
    model.eval();
    dense.eval();
    std::vector<int64_t> a = {1, 4, 2, 2, 5};
    Tensor ids = ids_of({{3, 1, 1, 2, 4, 5, 1, 2, 3}, a}, 9, 0);
    Tensor logits = model.forward(ids, {9, 5});
    testing::expect_close(narrow(logits, 0, 1, 1), model.forward(ids_of({a}, 5, 0), {5}), 1e-5, 1e-6);
    if (variant != "linear") testing::expect_close(logits, dense.forward(ids, {9, 5}), 1e-5, 1e-6);
  }
}

TEST(Encoder, AttentionWeightsIgnorePadding) {
  EncoderClassifier model(tiny("post", "cls", "learned"));
  model.eval();
  std::vector<Tensor> weights;
  Tensor ids = ids_of({{1, 2, 3, 4}, {5, 1}}, 4, 0);
  model.forward_embeddings(model.embed(ids), {4, 2}, &weights);
  ASSERT_EQ(weights.size(), 2u);
  for (const Tensor& w : weights) {
    ASSERT_EQ(w.shape(), Shape({2, 2, 5, 5}));  // CLS + 4 tokens
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t t = 0; t < 5; ++t) {
        double row = 0;
        for (int64_t s = 0; s < 5; ++s) row += w.at({1, h, t, s});
        EXPECT_NEAR(row, 1.0, 1e-5);
        EXPECT_EQ(w.at({1, h, t, 3}), 0.0);  // keys after CLS + 2 tokens are padding
        EXPECT_EQ(w.at({1, h, t, 4}), 0.0);
      }
  }
}

TEST(Encoder, SinusoidalTable) {
  Tensor pe = models::sinusoidal_positions(3, 4, DType::f64);
  EXPECT_DOUBLE_EQ(pe.at({0, 0}), 0.0);
  EXPECT_DOUBLE_EQ(pe.at({0, 1}), 1.0);
  EXPECT_DOUBLE_EQ(pe.at({1, 0}), std::sin(1.0));
  EXPECT_DOUBLE_EQ(pe.at({1, 1}), std::cos(1.0));
  EXPECT_DOUBLE_EQ(pe.at({2, 2}), std::sin(2.0 / 100.0));  // 10000^(2/4) = 100
  EXPECT_DOUBLE_EQ(pe.at({2, 3}), std::cos(2.0 / 100.0));
}

// d logits / d token embeddings through positions, blocks (with padding masks), pooling, head.
TEST(Encoder, GradcheckInputsF64) {
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(name_of(v));
    manual_seed(5);
    EncoderClassifier model(tiny(v.norm, v.pooling, v.pos), DType::f64);
    Tensor tok = testing::uniform({2, 4, 4}, 17);
    testing::expect_gradcheck(
        [&](const std::vector<Tensor>& in) { return model.forward_embeddings(in[0], {4, 2}); }, {tok});
  }
}

// Every parameter element's gradient against a central difference of a scalar loss.
TEST(Encoder, ParameterGradientsF64) {
  for (const Variant& v : kVariants) {
    SCOPED_TRACE(name_of(v));
    manual_seed(6);
    EncoderClassifier model(tiny(v.norm, v.pooling, v.pos), DType::f64);
    Tensor ids = ids_of({{1, 2, 3, 4}, {5, 1}}, 4, 0);
    Tensor target = tensor({2, 0}, {2}, DType::i64);
    auto loss = [&] { return cross_entropy(model.forward(ids, {4, 2}), target); };
    model.zero_grad();
    backward(loss());
    const double eps = 1e-6;
    double worst = 0;
    for (auto& [name, p] : model.named_parameters()) {
      ASSERT_TRUE(p.grad().defined()) << name;
      std::vector<double> g = p.grad().to_vector();
      double* data = p.data<double>();
      for (int64_t i = 0; i < p.numel(); ++i) {
        NoGradGuard no_grad;
        double keep = data[i];
        data[i] = keep + eps;
        double up = loss().item();
        data[i] = keep - eps;
        double down = loss().item();
        data[i] = keep;
        double numeric = (up - down) / (2 * eps);
        double err = std::fabs(numeric - g[size_t(i)]);
        worst = std::max(worst, err);
        EXPECT_LE(err, 1e-6 + 1e-4 * std::fabs(numeric)) << name << "[" << i << "]";
      }
    }
    EXPECT_LT(worst, 1e-6);
  }
}

using testing::TempDir;

TEST(Encoder, CheckpointRoundTrip) {
  TempDir dir("encoder_ckpt");
  EncoderConfig c = tiny("pre", "cls", "learned");
  c.vocab_size = 17;  // ListOps' vocabulary
  manual_seed(8);
  EncoderClassifier model(c);
  model.eval();
  data::Vocab vocab = data::listops_vocab();
  models::save_encoder(dir.path.string(), model, vocab);
  for (const char* f : {"config.json", "model.safetensors", "vocab.json"}) EXPECT_TRUE(fs::exists(dir.path / f)) << f;
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()), 3);  // no temporaries
  models::EncoderCheckpoint ck = models::load_encoder(dir.path.string());
  EXPECT_TRUE(ck.config == c);
  EXPECT_TRUE(ck.vocab == vocab);
  EXPECT_FALSE(ck.model->is_training());
  Tensor ids = ids_of({{1, 12, 16}, {5}}, 3, 0);
  testing::expect_close(ck.model->forward(ids, {3, 1}), model.forward(ids, {3, 1}), 0, 0);
  // A vocabulary that does not fit, a config whose shapes do not fit the weights, a missing file.
  EXPECT_TG_ERROR(models::save_encoder(dir.path.string(), model, data::Vocab({"<pad>"}, "<pad>", "")),
                  "the vocabulary has 1 tokens, the model 17");
  EncoderConfig wider = c;
  wider.n_embd = 8;
  wider.save((dir.path / "config.json").string());
  EXPECT_TG_ERROR(models::load_encoder(dir.path.string()), "model.safetensors: load_state_dict: shape mismatch");
  fs::remove(dir.path / "vocab.json");
  EXPECT_TG_ERROR(models::load_encoder(dir.path.string()), "vocab.json is missing");
  EXPECT_TG_ERROR(models::load_encoder((dir.path / "nope").string()), "is not a checkpoint directory");
}

// ListOps with one operator over 2-5 digits: a tiny encoder must beat the majority class on
// held-out examples within a few hundred steps.
TEST(Encoder, LearnsSmallListOps) {
  auto start = std::chrono::steady_clock::now();
  std::vector<data::ListOpsExample> all = data::generate_listops(2300, 3, 8, 2, 5, /*seed=*/1);
  data::Vocab vocab = data::listops_vocab();
  data::ClassificationDataset train =
      data::encode_listops(std::vector<data::ListOpsExample>(all.begin(), all.begin() + 2000), vocab);
  data::ClassificationDataset val =
      data::encode_listops(std::vector<data::ListOpsExample>(all.begin() + 2000, all.end()), vocab);
  EncoderConfig c;
  c.vocab_size = vocab.size(), c.n_classes = 10, c.max_len = 8;
  c.n_layer = 2, c.n_head = 4, c.n_embd = 32, c.ffn_dim = 64, c.dropout = 0.0;
  c.norm = "pre", c.pooling = "cls";
  manual_seed(0);
  EncoderClassifier model(c);
  optim::AdamW opt(optim::decay_groups(model, 0.01), optim::AdamWOptions(3e-3));
  data::EpochSampler sampler(train.size(), 32, /*shuffle=*/true, /*seed=*/0);
  double first_loss = 0, last_loss = 0;
  const int steps = 400;
  for (int step = 0; step < steps; ++step) {
    data::ClassificationBatch b = train.batch(sampler.next());
    Tensor loss = cross_entropy(model.forward(b.ids, b.lengths), b.labels);
    if (step == 0) first_loss = loss.item();
    last_loss = loss.item();
    opt.zero_grad();
    backward(loss);
    opt.step();
  }
  models::ClassifierMetrics m = models::evaluate_classifier(model, val);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double chance = val.majority_accuracy();
  std::cout << "[ listops ] loss " << first_loss << " -> " << last_loss << ", val accuracy " << m.accuracy
            << " (majority " << chance << "), " << seconds << " s\n";
  EXPECT_EQ(m.examples, 300);
  EXPECT_LT(last_loss, first_loss);
  EXPECT_GT(m.accuracy, chance + 0.25);
}

}  // namespace
}  // namespace tg
