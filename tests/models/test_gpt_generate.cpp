// The KV cache and generation: cached logits equal the full forward's, the same seed gives the
// same tokens with and without the cache (also past n_positions, where the context is cropped),
// greedy decoding, and the sampler's top-k and temperature against the softmax they should draw.
#include <cmath>
#include <map>

#include "models/decoders/generate.h"
#include "models/gpt/gpt.h"
#include "nn/init.h"
#include "test_util.h"

namespace tg::models {
namespace {

GPTConfig tiny(DType dtype) {
  GPTConfig c;
  c.vocab_size = 13;
  c.n_positions = 8;
  c.n_embd = 12;
  c.n_layer = 2;
  c.n_head = 3;
  c.dtype = dtype;
  return c;
}

// GPT-2's init gives nearly uniform logits; larger random weights make the tests sharper.
std::shared_ptr<GPT> random_model(const GPTConfig& c, uint64_t seed) {
  Generator gen(seed);
  auto model = std::make_shared<GPT>(c, gen);
  for (auto& [name, p] : model->named_parameters())
    if (p.dim() == 2) nn::init::normal_(p, 0.0, 0.4, gen);
  return model;
}

Tensor ids(const Shape& shape, int64_t vocab, uint64_t seed) {
  Tensor u = testing::uniform(shape, seed, 0.0, double(vocab));
  Tensor t = empty(shape, DType::i64);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] = int64_t(u.data<double>()[i]);
  return t;
}

Tensor cols(const Tensor& x, int64_t start, int64_t n) { return narrow(x, 1, start, n).clone(); }

// Feeds seq [B, 8] through the cache in pieces (3 tokens, then 1, 1, 2, 1) and compares each
// piece's logits with the full forward's.
void expect_cached_logits_match(GPT& model, double tol) {
  NoGradGuard no_grad;
  Tensor seq = ids({2, 8}, 13, 21);
  Tensor full = model.forward(seq);  // [2, 8, V]
  KVCache cache = model.make_cache(2);
  GPTForwardOptions opts;
  opts.cache = &cache;
  int64_t pos = 0;
  for (int64_t n : {3, 1, 1, 2, 1}) {
    Tensor logits = model.forward(cols(seq, pos, n), Tensor(), opts).logits;  // [2, n, V]
    EXPECT_LE(testing::max_abs_diff(logits, narrow(full, 1, pos, n)), tol) << "positions " << pos << ".." << pos + n;
    pos += n;
    EXPECT_EQ(cache.length, pos);
  }
}

TEST(KVCache, CachedLogitsMatchTheFullForward) {
  expect_cached_logits_match(*random_model(tiny(DType::f32), 1), 1e-5);
  expect_cached_logits_match(*random_model(tiny(DType::f64), 1), 1e-12);
}

TEST(KVCache, EveryAttentionVariantDecodesLikeItsFullForward) {
  for (const char* name : {"dense", "flash", "sliding:3", "sparse", "linear"}) {
    SCOPED_TRACE(name);
    GPTConfig c = tiny(DType::f64);
    c.attention = GPTAttention::parse(name);
    c.attention.sparse = {2, 1, 1, 1, 0};  // blocks of 2 over 8 positions
    auto model = random_model(c, 2);
    try {
      // Against the uncached forward of each prefix, as generation without the cache computes it
      // (a sparse layout's random blocks may depend on the length, so not the 8-token forward).
      NoGradGuard no_grad;
      Tensor seq = ids({2, 8}, 13, 22);
      KVCache cache = model->make_cache(2);
      GPTForwardOptions opts;
      opts.cache = &cache;
      Tensor prompt = model->forward(cols(seq, 0, 3), Tensor(), opts).logits;
      EXPECT_LE(testing::max_abs_diff(prompt, model->forward(cols(seq, 0, 3))), 1e-10);
      for (int64_t t = 3; t < 8; ++t) {
        Tensor logits = model->forward(cols(seq, t, 1), Tensor(), opts).logits;
        Tensor full = model->forward(cols(seq, 0, t + 1));
        EXPECT_LE(testing::max_abs_diff(logits, narrow(full, 1, t, 1)), 1e-10) << "position " << t;
      }
    } catch (const Error& e) {
      ADD_FAILURE() << "attention variant " << name << " failed: " << e.what();
    }
  }
}

TEST(KVCache, Errors) {
  auto model = random_model(tiny(DType::f64), 1);
  KVCache cache = model->make_cache(2);
  GPTForwardOptions opts;
  opts.cache = &cache;
  EXPECT_TG_ERROR(model->forward(ids({2, 3}, 13, 1), Tensor(), opts), "run it under NoGradGuard");
  NoGradGuard no_grad;
  cache.reset();
  EXPECT_TG_ERROR(model->forward(ids({1, 3}, 13, 1), Tensor(), opts), "the KV cache has 2 layers for a batch of 2");
  model->forward(ids({2, 6}, 13, 1), Tensor(), opts);
  EXPECT_TG_ERROR(model->forward(ids({2, 3}, 13, 1), Tensor(), opts), "positions 6..8 exceed n_positions = 8");
  EXPECT_EQ(cache.length, 6);
}

TEST(Generate, SameSeedSameTokensWithAndWithoutTheCache) {
  auto model = random_model(tiny(DType::f64), 3);
  std::map<std::vector<double>, int> distinct;
  for (uint64_t seed : {1, 2, 3, 4, 5}) {
    for (int64_t top_k : {0, 4}) {
      Tensor prompt = ids({2, 3}, 13, 100 + seed);
      Generator g1(seed), g2(seed);
      // 3 + 14 tokens: the context passes n_positions = 8, so both crop (and the cache is rebuilt).
      Tensor with = generate(*model, prompt, 14, 0.9, top_k, g1, /*use_kv_cache=*/true);
      Tensor without = generate(*model, prompt, 14, 0.9, top_k, g2, /*use_kv_cache=*/false);
      ASSERT_EQ(with.shape(), Shape({2, 17}));
      EXPECT_EQ(with.to_vector(), without.to_vector()) << "seed " << seed << " top_k " << top_k;
      EXPECT_EQ(g1.offset(), g2.offset());
      EXPECT_EQ(cols(with, 0, 3).to_vector(), prompt.to_vector());
      for (double t : with.to_vector()) EXPECT_TRUE(t >= 0 && t < 13);
      ++distinct[with.to_vector()];
    }
  }
  EXPECT_GE(distinct.size(), 9u) << "different seeds should give different samples";
}

TEST(Generate, TemperatureZeroIsGreedy) {
  auto model = random_model(tiny(DType::f64), 4);
  Tensor prompt = ids({1, 2}, 13, 7);
  Generator gen(0);
  std::vector<int64_t> out = generate(*model, std::vector<int64_t>{prompt.data<int64_t>()[0], prompt.data<int64_t>()[1]},
                                      10, 0.0, 0, gen);
  EXPECT_EQ(gen.offset(), 0u) << "greedy decoding draws nothing";
  // By hand: the arg-max of the full forward over the last n_positions tokens.
  std::vector<int64_t> seq = {prompt.data<int64_t>()[0], prompt.data<int64_t>()[1]};
  NoGradGuard no_grad;
  model->eval();
  while (seq.size() < 12) {
    int64_t start = std::max<int64_t>(0, int64_t(seq.size()) - 8), n = int64_t(seq.size()) - start;
    Tensor in = empty({1, n}, DType::i64);
    std::copy(seq.begin() + start, seq.end(), in.data<int64_t>());
    std::vector<double> last = narrow(model->forward(in), 1, n - 1, 1).to_vector();
    seq.push_back(std::max_element(last.begin(), last.end()) - last.begin());
  }
  EXPECT_EQ(out, seq);
}

TEST(Generate, RestoresTrainingModeAndRecordsNothing) {
  GPTConfig c = tiny(DType::f64);
  c.dropout = 0.5;
  auto model = random_model(c, 5);
  model->train();
  Generator gen(1);
  Tensor out = generate(*model, ids({1, 2}, 13, 1), 3, 1.0, 0, gen);
  EXPECT_TRUE(model->is_training());
  EXPECT_FALSE(out.requires_grad());
  EXPECT_TG_ERROR(generate(*model, empty({1, 0}, DType::i64), 3, 1.0, 0, gen), "prompt must be i64 [B, T]");
  EXPECT_TG_ERROR(generate(*model, ids({1, 2}, 13, 1), -1, 1.0, 0, gen), "max_new_tokens must be >= 0");
}

// Draw counts against the distribution softmax(top-k(logits) / temperature).
void expect_distribution(const std::vector<double>& logits, double temperature, int64_t top_k,
                         const std::vector<double>& want) {
  const int64_t V = int64_t(logits.size()), n = 20000;
  Tensor l = tensor(logits, {1, V}, DType::f64);
  Generator gen(11);
  std::vector<double> freq(size_t(V), 0.0);
  for (int64_t i = 0; i < n; ++i) freq[size_t(sample_next(l, temperature, top_k, gen).data<int64_t>()[0])] += 1.0 / n;
  for (int64_t v = 0; v < V; ++v) EXPECT_NEAR(freq[size_t(v)], want[size_t(v)], 0.012) << "token " << v;
}

TEST(SampleNext, DrawsFromTheFilteredSoftmax) {
  std::vector<double> l = {1.0, 2.0, 0.0, 1.5};
  auto softmax_of = [](std::vector<double> x, double temp, std::vector<bool> keep) {
    double z = 0;
    for (size_t i = 0; i < x.size(); ++i) z += x[i] = keep[i] ? std::exp(x[i] / temp) : 0.0;
    for (double& v : x) v /= z;
    return x;
  };
  expect_distribution(l, 1.0, 0, softmax_of(l, 1.0, {true, true, true, true}));
  expect_distribution(l, 2.0, 0, softmax_of(l, 2.0, {true, true, true, true}));
  expect_distribution(l, 1.0, 2, softmax_of(l, 1.0, {false, true, false, true}));
  expect_distribution(l, 0.5, 3, softmax_of(l, 0.5, {true, true, false, true}));
  expect_distribution(l, 1.0, 1, {0, 1, 0, 0});
  expect_distribution(l, 1.0, 99, softmax_of(l, 1.0, {true, true, true, true}));  // k > V keeps all
  // Rows are sampled independently; temperature 0 is the first arg-max.
  Generator gen(0);
  Tensor two = tensor({0, 5, 5, 1, 9, 0, 0, 0}, {2, 4}, DType::f32);
  EXPECT_EQ(sample_next(two, 0.0, 0, gen).to_vector(), std::vector<double>({1, 0}));
  EXPECT_TG_ERROR(sample_next(two, -1.0, 0, gen), "temperature must be >= 0");
  EXPECT_TG_ERROR(sample_next(two, 1.0, -2, gen), "top_k must be >= 0");
  EXPECT_TG_ERROR(sample_next(tensor({1, 2, 3}), 1.0, 0, gen), "logits must be floating [B, V]");
}

}  // namespace
}  // namespace tg::models
