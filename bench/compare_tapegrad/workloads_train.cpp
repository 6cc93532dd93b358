// bench/compare's model workloads on tapegrad: GPT and encoder train steps, GPT generation, and
// the train and generation loops the Llama workloads share (workloads_llama.cpp).
// Batches come from pools every framework builds the same way (bench/compare_py/data.py), so
// tapegrad, PyTorch and JAX see the same tokens.
#include <algorithm>
#include <cmath>

#include "autograd/autograd.h"
#include "bench/compare_tapegrad/workloads.h"
#include "models/decoders/generate.h"
#include "models/encoder/encoder.h"
#include "models/gpt/gpt.h"
#include "models/gpt/gpt_checkpoint.h"
#include "models/tokenizers/char_tokenizer.h"
#include "nn/file_io.h"
#include "nn/optim/adamw.h"
#include "nn/optim/clip_grad.h"
#include "nn/safetensors.h"
#include "ops/loss.h"

namespace tg::compare {
namespace {

Tensor i64_tensor(const std::vector<int64_t>& values, const Shape& shape) {
  Tensor t = empty(shape, DType::i64);
  std::copy(values.begin(), values.end(), t.data<int64_t>());
  return t;
}

// Token (j, b, t) = ((j·B + b)·T + t) · 2654435761 mod 2³² mod V; label (j·B + b) mod n_classes
// (bench/compare_py/data.py: encoder_batches).
std::vector<TrainBatch> encoder_batches(int64_t count, int64_t B, int64_t T, int64_t V, int64_t n_classes) {
  std::vector<TrainBatch> out;
  for (int64_t j = 0; j < count; ++j) {
    std::vector<int64_t> x, y;
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t t = 0; t < T; ++t) x.push_back(int64_t((uint64_t((j * B + b) * T + t) * 2654435761ull) % (1ull << 32)) % V);
      y.push_back((j * B + b) % n_classes);
    }
    out.push_back({i64_tensor(x, {B, T}), i64_tensor(y, {B})});
  }
  return out;
}

models::GPTConfig gpt_config(const Request& r, int64_t vocab_size) {
  models::GPTConfig c;
  c.vocab_size = vocab_size;
  c.n_layer = config_int(r, "n_layer"), c.n_head = config_int(r, "n_head"), c.n_embd = config_int(r, "n_embd");
  c.n_positions = config_int(r, "block_size");
  c.dropout = 0.0, c.bias = true;
  c.attention = models::GPTAttention::parse(config_string(r, "attention", "dense"));
  return c;
}

// AdamW as the references: lr 1e-3, betas (0.9, 0.99), weight decay 0.1 on rank >= 2 tensors.
optim::AdamW make_adamw(const nn::Module& model, const Request& r) {
  double wd = config_double(r, "weight_decay", 0.1);
  return optim::AdamW(optim::decay_groups(model, wd), optim::AdamWOptions(config_double(r, "lr", 1e-3))
                                                          .beta1(0.9)
                                                          .beta2(0.99)
                                                          .weight_decay(wd));
}

}  // namespace

// Batch j, row b starts at ((j·B + b) · 104729) mod (N − T − 1) of the text's N tokens; y is x
// shifted by one (bench/compare_py/data.py: gpt_batches).
std::vector<TrainBatch> gpt_batches(const std::vector<int64_t>& tokens, int64_t count, int64_t B, int64_t T) {
  const int64_t N = int64_t(tokens.size());
  TG_CHECK(N > T + 1, "compare_tapegrad: the text has {} tokens, fewer than one block of {} + 1", N, T);
  std::vector<TrainBatch> out;
  for (int64_t j = 0; j < count; ++j) {
    std::vector<int64_t> x, y;
    for (int64_t b = 0; b < B; ++b) {
      int64_t o = ((j * B + b) * 104729) % (N - T - 1);
      x.insert(x.end(), tokens.begin() + o, tokens.begin() + o + T);
      y.insert(y.end(), tokens.begin() + o + 1, tokens.begin() + o + T + 1);
    }
    out.push_back({i64_tensor(x, {B, T}), i64_tensor(y, {B, T})});
  }
  return out;
}

std::vector<int64_t> text_tokens(const Request& r) {
  std::string text = read_file_bytes(config_string(r, "data", ""));
  return models::CharTokenizer::from_text(text).encode(text);
}

// Every step's loss and pre-clip global gradient norm go to reply.extra["losses"] /
// ["grad_norms"], so a run can be compared step by step with the references'
// (bench/compare_py/step_compare.py).
Reply train_steps(const Request& r, nn::Module& model, const std::function<Tensor(int64_t)>& loss_of_step) {
  optim::AdamW opt = make_adamw(model, r);
  const double clip = config_double(r, "grad_clip", 1.0);
  std::vector<Tensor> params = model.parameters();
  Reply reply;
  reply.params = model.num_parameters();
  reply.has_loss = true;
  json losses = json::array(), grad_norms = json::array();
  auto step = [&](int64_t i) {
    opt.zero_grad();
    Tensor loss = loss_of_step(i);
    backward(loss);
    // clip_grad_norm_ with an infinite bound measures the norm and scales by 1.
    grad_norms.push_back(optim::clip_grad_norm_(params, clip > 0 ? clip : HUGE_VAL));
    opt.step();
    losses.push_back(loss.item());
    return loss.item();
  };
  int64_t live = 0;
  for (int64_t i = 0; i < r.warmup + r.steps; ++i) {
    if (i == r.warmup) reset_peak_memory_stats(), live = memory_allocated();
    auto start = std::chrono::steady_clock::now();
    double value = step(i);
    if (i >= r.warmup) reply.step_s.push_back(seconds_since(start));
    if (i == 0) reply.loss_first = value;
    reply.loss_last = value;
  }
  reply.peak_bytes = max_memory_allocated() - live;
  reply.extra["losses"] = losses;  // the warm-up and timed steps (not the memory step below)
  reply.extra["grad_norms"] = grad_norms;
  if (r.memory) reply.rss_peak_bytes = rss_peak_growth([&] { step(r.warmup + r.steps); });
  return reply;
}

Reply generate_steps(const Request& r, models::CausalLM& model, int64_t new_tokens, bool kv_cache) {
  Generator sampler(7);
  Tensor prompt = zeros({1, 1}, DType::i64);
  Reply reply;
  reply.params = model.num_parameters();
  for (int64_t i = 0; i < r.warmup + r.steps; ++i) {
    auto start = std::chrono::steady_clock::now();
    Tensor out = models::generate(model, prompt, new_tokens, /*temperature=*/1.0, /*top_k=*/0, sampler, kv_cache);
    TG_CHECK(out.size(1) == 1 + new_tokens, "compare_tapegrad: generate returned {} tokens", out.size(1));
    if (i >= r.warmup) reply.step_s.push_back(seconds_since(start));
  }
  reply.extra["kv_cache"] = kv_cache;
  return reply;
}

Reply run_gpt_train(const Request& r) {
  const int64_t B = config_int(r, "batch_size"), T = config_int(r, "block_size");
  std::vector<int64_t> tokens = text_tokens(r);
  const int64_t V = *std::max_element(tokens.begin(), tokens.end()) + 1;
  std::vector<TrainBatch> pool = gpt_batches(tokens, config_int(r, "batches"), B, T);
  Generator init(1337);
  models::GPT model(gpt_config(r, V), init);
  // Optional: start from a checkpoint's weights (GPT-2 layout), or write the initial weights out.
  if (std::string dir = config_string(r, "init_from", ""); !dir.empty())
    models::load_gpt_weights(model, nn::load_safetensors(dir + "/" + models::kModelFile), dir);
  if (std::string dir = config_string(r, "save_init", ""); !dir.empty()) models::save_checkpoint(dir, model);
  model.train();
  const bool checkpointing = r.config.value("checkpointing", false);
  model.set_activation_checkpointing(checkpointing);  // each block recomputed in backward
  Reply reply = train_steps(r, model, [&](int64_t i) {
    const TrainBatch& b = pool[size_t(i) % pool.size()];
    return model.forward(b.x, b.y).loss;
  });
  reply.extra["attention"] = model.config.attention.name();
  reply.extra["vocab_size"] = V;
  reply.extra["checkpointing"] = checkpointing;
  return reply;
}

Reply run_encoder_train(const Request& r) {
  models::EncoderConfig c;
  c.vocab_size = config_int(r, "vocab_size"), c.n_classes = config_int(r, "n_classes");
  c.max_len = config_int(r, "block_size");
  c.n_layer = config_int(r, "n_layer"), c.n_head = config_int(r, "n_head"), c.n_embd = config_int(r, "n_embd");
  c.dropout = 0.0, c.norm = "post", c.pos = "learned", c.pooling = "mean";
  c.attention = config_string(r, "attention", "dense");
  const int64_t B = config_int(r, "batch_size");
  std::vector<TrainBatch> pool = encoder_batches(config_int(r, "batches"), B, c.max_len, c.vocab_size, c.n_classes);
  models::EncoderClassifier model(c);
  Generator init(1337);
  model.reset_parameters(init);
  model.train();
  Reply reply = train_steps(r, model, [&](int64_t i) {
    const TrainBatch& b = pool[size_t(i) % pool.size()];
    return cross_entropy(model.forward(b.x), b.y);
  });
  reply.extra["attention"] = c.attention;
  return reply;
}

// One timed step = one generate() call of new_tokens tokens from a one-token prompt.
Reply run_generate(const Request& r) {
  const int64_t V = config_int(r, "vocab_size"), new_tokens = config_int(r, "new_tokens");
  Generator init(1337);
  models::GPT model(gpt_config(r, V), init);
  Reply reply = generate_steps(r, model, new_tokens, r.config.value("kv_cache", true));
  reply.extra["attention"] = model.config.attention.name();
  return reply;
}

}  // namespace tg::compare
