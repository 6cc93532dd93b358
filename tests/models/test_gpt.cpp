// GPTConfig (validation, config.json), Conv1D, and the GPT module: GPT-2's names and shapes,
// GPT-2's initialisation, forward and loss, errors, dropout, and the attention variant as an option.
#include <cmath>

#include "models/gpt/gpt.h"
#include "nn/conv1d.h"
#include "test_util.h"

namespace tg::models {
namespace {

GPTConfig tiny(DType dtype = DType::f64) {
  GPTConfig c;
  c.vocab_size = 11;
  c.n_positions = 8;
  c.n_embd = 12;
  c.n_layer = 2;
  c.n_head = 3;
  c.dtype = dtype;
  return c;
}

Tensor ids(const Shape& shape, int64_t vocab, uint64_t seed) {
  Tensor u = testing::uniform(shape, seed, 0.0, double(vocab));
  Tensor t = empty(shape, DType::i64);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = int64_t(u.data<double>()[i]);
  return t;
}

// --- GPTConfig ----------------------------------------------------------------------------------

TEST(GPTConfig, ValidationNamesTheField) {
  auto with = [](auto change) {
    GPTConfig c = tiny();
    change(c);
    return c;
  };
  EXPECT_TG_ERROR(with([](GPTConfig& c) { c.n_embd = 10; }).validate(), "n_embd (10) must be divisible by n_head (3)");
  EXPECT_TG_ERROR(with([](GPTConfig& c) { c.vocab_size = 0; }).validate(), "vocab_size must be positive");
  EXPECT_TG_ERROR(with([](GPTConfig& c) { c.n_positions = -1; }).validate(), "n_positions must be positive");
  EXPECT_TG_ERROR(with([](GPTConfig& c) { c.n_layer = 0; }).validate(), "n_layer must be positive");
  EXPECT_TG_ERROR(with([](GPTConfig& c) { c.n_head = 0; }).validate(), "n_head must be positive");
  EXPECT_TG_ERROR(with([](GPTConfig& c) { c.dropout = 1.0; }).validate(), "dropout must be in [0, 1)");
  EXPECT_TG_ERROR(with([](GPTConfig& c) { c.layer_norm_epsilon = 0; }).validate(), "layer_norm_epsilon");
  EXPECT_TG_ERROR(with([](GPTConfig& c) { c.activation = "relu"; }).validate(), "activation 'relu'");
  EXPECT_TG_ERROR(with([](GPTConfig& c) { c.dtype = DType::i64; }).validate(), "dtype must be f32 or f64");
  EXPECT_TG_ERROR(GPT(with([](GPTConfig& c) { c.n_embd = 10; })), "divisible by n_head");
}

TEST(GPTConfig, JsonRoundTripsEveryField) {
  GPTConfig c = tiny();
  c.dropout = 0.25;
  c.bias = false;
  c.layer_norm_epsilon = 1e-6;
  c.activation = "gelu";
  c.attention = GPTAttention::parse("sliding:5");
  c.attention.sparse.block_size = 4;
  c.attention.sparse.seed = 9;
  GPTConfig d = GPTConfig::from_json(c.to_json());
  EXPECT_EQ(d.to_json(), c.to_json());
  EXPECT_EQ(d.vocab_size, 11);
  EXPECT_EQ(d.n_positions, 8);
  EXPECT_EQ(d.dropout, 0.25);
  EXPECT_FALSE(d.bias);
  EXPECT_EQ(d.activation, "gelu");
  EXPECT_EQ(d.dtype, DType::f64);
  EXPECT_EQ(d.attention.variant, AttentionVariant::sliding_window);
  EXPECT_EQ(d.attention.window, 5);
  EXPECT_EQ(d.attention.name(), "sliding:5");
  EXPECT_EQ(d.attention.sparse.block_size, 4);
  EXPECT_EQ(d.attention.sparse.seed, 9u);
  // Hugging Face's field names are there.
  for (const char* field : {"\"model_type\": \"gpt2\"", "\"n_ctx\": 8", "\"n_embd\": 12", "\"n_layer\": 2",
                            "\"n_head\": 3", "\"layer_norm_epsilon\"", "\"activation_function\": \"gelu\"",
                            "\"tapegrad_attention\""})
    EXPECT_NE(c.to_json().find(field), std::string::npos) << field;
}

TEST(GPTConfig, ReadsGPT2sOwnConfig) {
  // openai-community/gpt2's config.json (abridged): no tapegrad fields, dropout 0.1.
  const std::string text = R"({
    "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
    "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
    "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1, "summary_type": "cls_index",
    "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}},
    "vocab_size": 50257})";
  GPTConfig c = GPTConfig::from_json(text);
  EXPECT_EQ(c.vocab_size, 50257);
  EXPECT_EQ(c.n_positions, 1024);
  EXPECT_EQ(c.n_embd, 768);
  EXPECT_EQ(c.n_layer, 12);
  EXPECT_EQ(c.n_head, 12);
  EXPECT_EQ(c.dropout, 0.1);
  EXPECT_TRUE(c.bias);
  EXPECT_EQ(c.dtype, DType::f32);
  EXPECT_EQ(c.attention.variant, AttentionVariant::dense);
  // n_ctx alone gives the block size.
  EXPECT_EQ(GPTConfig::from_json(R"({"n_ctx": 64, "n_embd": 8, "n_head": 2})").n_positions, 64);
}

TEST(GPTConfig, JsonErrorsNameTheFileAndField) {
  EXPECT_TG_ERROR(GPTConfig::from_json("{not json", "dir/config.json"), "dir/config.json is not a JSON object");
  EXPECT_TG_ERROR(GPTConfig::from_json(R"({"model_type": "bert"})"), "model_type is 'bert'");
  EXPECT_TG_ERROR(GPTConfig::from_json(R"({"n_embd": "big"})"), "field 'n_embd' must be an integer");
  EXPECT_TG_ERROR(GPTConfig::from_json(R"({"n_embd": 768, "n_inner": 100})"), "n_inner 100 is not supported");
  EXPECT_TG_ERROR(GPTConfig::from_json(R"({"n_embd": 10, "n_head": 3})", "x.json"),
                  "n_embd (10) must be divisible by n_head (3) (in x.json)");
  EXPECT_TG_ERROR(GPTConfig::from_json(R"({"tapegrad_attention": {"variant": "fancy"}})"),
                  "unknown attention variant 'fancy'");
}

// --- Conv1D -------------------------------------------------------------------------------------

TEST(Conv1D, ComputesXTimesWPlusB) {
  Generator gen(3);
  nn::Conv1D conv(nn::Conv1DOptions(3, 4).dtype(DType::f64), &gen);
  EXPECT_EQ(conv.weight.shape(), Shape({3, 4}));
  EXPECT_EQ(conv.bias.shape(), Shape({4}));
  EXPECT_EQ(testing::max_abs(conv.bias), 0.0);
  {
    NoGradGuard g;
    conv.bias.copy_(testing::uniform({4}, 1));
  }
  Tensor x = testing::uniform({2, 5, 3}, 2);
  Tensor y = conv.forward(x);
  ASSERT_EQ(y.shape(), Shape({2, 5, 4}));
  std::vector<double> xv = x.to_vector(), w = conv.weight.to_vector(), b = conv.bias.to_vector(), yv = y.to_vector();
  for (int r = 0; r < 10; ++r)
    for (int o = 0; o < 4; ++o) {
      double want = b[o];
      for (int i = 0; i < 3; ++i) want += xv[r * 3 + i] * w[i * 4 + o];
      EXPECT_NEAR(yv[r * 4 + o], want, 1e-14);
    }
  testing::expect_gradcheck(
      [&](const std::vector<Tensor>& in) {
        nn::Conv1D c(nn::Conv1DOptions(3, 4).dtype(DType::f64), &gen);
        c.weight = in[1];  // compute through the module's forward with the checked tensors
        c.bias = in[2];
        return c.forward(in[0]);
      },
      {testing::uniform({2, 3}, 4), testing::uniform({3, 4}, 5), testing::uniform({4}, 6)});
  EXPECT_TG_ERROR(conv.forward(testing::uniform({2, 5}, 7)), "Conv1D: input of shape [2, 5] has last size 5");
  nn::Conv1D no_bias(nn::Conv1DOptions(3, 4).bias(false));
  EXPECT_FALSE(no_bias.bias.defined());
  EXPECT_EQ(no_bias.named_parameters().size(), 1u);
}

// --- GPT structure ------------------------------------------------------------------------------

TEST(GPT, ParameterNamesAndShapesAreGPT2s) {
  GPT model(tiny());
  std::vector<std::pair<std::string, Shape>> want = {{"wte.weight", {11, 12}}, {"wpe.weight", {8, 12}}};
  for (int l = 0; l < 2; ++l) {
    std::string h = "h." + std::to_string(l) + ".";
    for (auto& [n, s] : std::vector<std::pair<std::string, Shape>>{
             {"ln_1.weight", {12}}, {"ln_1.bias", {12}}, {"attn.c_attn.weight", {12, 36}},
             {"attn.c_attn.bias", {36}}, {"attn.c_proj.weight", {12, 12}}, {"attn.c_proj.bias", {12}},
             {"ln_2.weight", {12}}, {"ln_2.bias", {12}}, {"mlp.c_fc.weight", {12, 48}}, {"mlp.c_fc.bias", {48}},
             {"mlp.c_proj.weight", {48, 12}}, {"mlp.c_proj.bias", {12}}})
      want.emplace_back(h + n, s);
  }
  want.push_back({"ln_f.weight", {12}});
  want.push_back({"ln_f.bias", {12}});
  auto got = model.named_parameters();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first);
    EXPECT_EQ(got[i].second.shape(), want[i].second) << got[i].first;
    EXPECT_EQ(got[i].second.dtype(), DType::f64) << got[i].first;
  }
  EXPECT_EQ(model.num_parameters(), model.num_parameters(false) + 8 * 12);
  EXPECT_TRUE(model.named_buffers().empty());
}

TEST(GPT, BiasFalseDropsEveryBias) {
  GPTConfig c = tiny();
  c.bias = false;
  GPT model(c);
  for (auto& [name, p] : model.named_parameters()) EXPECT_FALSE(name.ends_with(".bias")) << name;
  EXPECT_EQ(model.named_parameters().size(), 2u + 2 * 6 + 1);
  Tensor loss = model.forward(ids({2, 8}, 11, 1), ids({2, 8}, 11, 2)).loss;
  EXPECT_TRUE(std::isfinite(loss.item()));
}

TEST(GPT, InitialisationIsGPT2sAndDrawnFromTheGivenGenerator) {
  GPTConfig c = tiny(DType::f32);
  c.vocab_size = 256;
  c.n_positions = 64;
  c.n_embd = 96;
  c.n_layer = 3;
  const uint64_t default_offset = default_generator().offset();
  Generator gen(7);
  GPT model(c, gen);
  EXPECT_EQ(default_generator().offset(), default_offset) << "building a GPT must not move the default generator";
  auto stats = [](const Tensor& t) {
    double s = 0, s2 = 0;
    for (double v : t.to_vector()) s += v, s2 += v * v;
    double n = double(t.numel()), mean = s / n;
    return std::pair{mean, std::sqrt(s2 / n - mean * mean)};
  };
  const double proj = 0.02 / std::sqrt(2.0 * 3);
  for (auto& [name, p] : model.named_parameters()) {
    auto [mean, sd] = stats(p);
    if (p.dim() == 2) {
      double want = name.ends_with("c_proj.weight") ? proj : 0.02;
      EXPECT_NEAR(sd, want, 0.1 * want) << name;  // >= 9216 samples: the std is within a few %
      EXPECT_NEAR(mean, 0.0, 0.05 * want) << name;
    } else if (name.ends_with(".bias")) {
      EXPECT_EQ(testing::max_abs(p), 0.0) << name;
    } else {
      EXPECT_EQ(p.to_vector(), std::vector<double>(size_t(p.numel()), 1.0)) << name;
    }
  }
  Generator same(7), other(8);
  GPT again(c, same), different(c, other);
  EXPECT_EQ(again.wte->weight.to_vector(), model.wte->weight.to_vector());
  EXPECT_EQ(again.h->blocks[2]->mlp->c_proj->weight.to_vector(), model.h->blocks[2]->mlp->c_proj->weight.to_vector());
  EXPECT_NE(different.wte->weight.to_vector(), model.wte->weight.to_vector());
}

// --- forward ------------------------------------------------------------------------------------

TEST(GPT, LossIsTheCrossEntropyOfTheLogits) {
  GPT model(tiny());
  Tensor idx = ids({2, 8}, 11, 1), targets = ids({2, 8}, 11, 2);
  targets.data<int64_t>()[3] = -1;  // ignored, as nanoGPT's ignore_index
  GPTOutput out = model.forward(idx, targets);
  ASSERT_EQ(out.logits.shape(), Shape({2, 8, 11}));
  std::vector<double> l = out.logits.to_vector();
  double total = 0;
  int counted = 0;
  for (int r = 0; r < 16; ++r) {
    int64_t t = targets.data<int64_t>()[r];
    if (t < 0) continue;
    double m = -1e300, z = 0;
    for (int v = 0; v < 11; ++v) m = std::max(m, l[r * 11 + v]);
    for (int v = 0; v < 11; ++v) z += std::exp(l[r * 11 + v] - m);
    total += m + std::log(z) - l[r * 11 + t];
    ++counted;
  }
  EXPECT_NEAR(out.loss.item(), total / counted, 1e-12);
  EXPECT_FALSE(model.forward(idx, Tensor()).loss.defined());
  EXPECT_EQ(model.forward(idx).shape(), Shape({2, 8, 11}));
}

TEST(GPT, LogitsLastOnlyIsTheLastRow) {
  GPT model(tiny());
  Tensor idx = ids({3, 6}, 11, 4);
  Tensor full = model.forward(idx);
  GPTForwardOptions opts;
  opts.logits_last_only = true;
  Tensor last = model.forward(idx, Tensor(), opts).logits;
  ASSERT_EQ(last.shape(), Shape({3, 1, 11}));
  for (int64_t b = 0; b < 3; ++b)
    for (int64_t v = 0; v < 11; ++v) EXPECT_NEAR(last.at({b, 0, v}), full.at({b, 5, v}), 1e-13);
  EXPECT_TG_ERROR(model.forward(idx, ids({3, 6}, 11, 5), opts), "drop logits_last_only");
}

TEST(GPT, CausalityLaterTokensDoNotChangeEarlierLogits) {
  GPT model(tiny());
  Tensor a = ids({1, 8}, 11, 6), b = ids({1, 8}, 11, 6);
  b.data<int64_t>()[7] = (b.data<int64_t>()[7] + 1) % 11;
  Tensor la = model.forward(a), lb = model.forward(b);
  for (int64_t t = 0; t < 7; ++t)
    for (int64_t v = 0; v < 11; ++v) EXPECT_EQ(la.at({0, t, v}), lb.at({0, t, v}));
  EXPECT_NE(la.at({0, 7, 0}), lb.at({0, 7, 0}));
}

TEST(GPT, InputErrorsAreClear) {
  GPT model(tiny());
  EXPECT_TG_ERROR(model.forward(ids({1, 9}, 11, 1)), "positions 0..8 exceed n_positions = 8");
  EXPECT_TG_ERROR(model.forward(testing::uniform({1, 4}, 1)), "GPT: idx must be i64 [B, T]");
  EXPECT_TG_ERROR(model.forward(ids({4}, 11, 1)), "GPT: idx must be i64 [B, T]");
  Tensor bad = ids({1, 4}, 11, 1);
  bad.data<int64_t>()[2] = 11;
  EXPECT_TG_ERROR(model.forward(bad), "embedding");
  EXPECT_TG_ERROR(model.forward(ids({1, 4}, 11, 1), ids({1, 3}, 11, 1)), "targets must be i64 of idx's shape [1, 4]");
}

TEST(GPT, DropoutFollowsItsGeneratorAndIsOffInEval) {
  GPTConfig c = tiny();
  c.dropout = 0.3;
  Generator init(1);
  GPT model(c, init);
  Tensor idx = ids({2, 8}, 11, 3);
  Generator g1(5), g2(5), g3(6);
  model.set_dropout_generator(&g1);
  Tensor a = model.forward(idx);
  model.set_dropout_generator(&g2);
  Tensor b = model.forward(idx);
  model.set_dropout_generator(&g3);
  Tensor d = model.forward(idx);
  EXPECT_EQ(a.to_vector(), b.to_vector());
  EXPECT_GT(testing::max_abs_diff(a, d), 1e-3);
  // In eval, the same weights without dropout.
  model.eval();
  Tensor e = model.forward(idx);
  GPTConfig c0 = c;
  c0.dropout = 0;
  Generator init0(1);
  GPT plain(c0, init0);
  EXPECT_EQ(e.to_vector(), plain.forward(idx).to_vector());
  EXPECT_GT(testing::max_abs_diff(a, e), 1e-3);
}

// --- the attention variant is a config option ----------------------------------------------------

TEST(GPT, EveryAttentionVariantBuildsAndTrains) {
  GPTConfig c = tiny();
  c.attention.sparse.block_size = 2;  // T = 8: four blocks
  c.attention.sparse.window_blocks = 1;
  c.attention.sparse.global_blocks = 1;
  c.attention.sparse.random_blocks = 1;
  Tensor idx = ids({2, 8}, 11, 1), targets = ids({2, 8}, 11, 2);
  Generator g0(3);
  GPT dense(c, g0);
  GPTOutput ref = dense.forward(idx, targets);
  for (const char* name : {"dense", "flash", "sliding:3", "sliding:8", "sparse", "linear"}) {
    SCOPED_TRACE(name);
    SparseLayout layout = c.attention.sparse;
    c.attention = GPTAttention::parse(name);
    c.attention.sparse = layout;
    Generator g(3);
    GPT model(c, g);
    EXPECT_EQ(model.config.attention.name(), name);
    try {
      GPTOutput out = model.forward(idx, targets);
      backward(out.loss);
      EXPECT_TRUE(std::isfinite(out.loss.item()));
      for (auto& [pname, p] : model.named_parameters()) EXPECT_TRUE(p.grad().defined()) << pname;
      // Variants whose pattern covers causal dense attention compute dense's numbers.
      std::string n = name;
      if (n == "dense" || n == "flash" || n == "sliding:8") {
        EXPECT_LE(testing::max_abs_diff(out.logits, ref.logits), 1e-10 * testing::max_abs(ref.logits));
      }
      // Training with dropout (on the attention weights, except for linear attention).
      GPTConfig cd = c;
      cd.dropout = 0.1;
      GPT dropped(cd, g);
      Tensor loss = dropped.forward(idx, targets).loss;
      backward(loss);
      EXPECT_TRUE(std::isfinite(loss.item()));
    } catch (const Error& e) {
      ADD_FAILURE() << "attention variant " << name << " failed: " << e.what();
    }
  }
  dense.set_attention(GPTAttention::parse("sliding:4"));
  EXPECT_EQ(dense.h->blocks[1]->attn->options.window(), 4);
  EXPECT_EQ(dense.config.attention.name(), "sliding:4");
}

}  // namespace
}  // namespace tg::models
