// bench/compare's Llama-shaped workloads on tapegrad (issue 19, "Speed"): a models::Llama train
// step on tiny Shakespeare's characters and KV-cache generation with it. The same loops, batches
// and optimizer as the GPT rows (workloads_train.cpp); the parameters carry transformers' names,
// which the PyTorch (torch_llama.py) and JAX (jax_llama.py) models use too, so one
// model.safetensors gives all three the same initial weights.
#include <algorithm>

#include "bench/compare_tapegrad/workloads.h"
#include "models/llama/llama.h"
#include "models/llama/llama_checkpoint.h"
#include "nn/safetensors.h"

namespace tg::compare {
namespace {

// The request's sizes (transformers' field names; block_size is the longest context) as a
// LlamaConfig of vocabulary V: untied head, no biases, dropout 0.
models::LlamaConfig llama_config_of(const Request& r, int64_t V) {
  models::LlamaConfig c;
  c.vocab_size = V;
  c.hidden_size = config_int(r, "hidden_size");
  c.intermediate_size = config_int(r, "intermediate_size");
  c.num_hidden_layers = config_int(r, "num_hidden_layers");
  c.num_attention_heads = config_int(r, "num_attention_heads");
  c.num_key_value_heads = config_int(r, "num_key_value_heads");
  c.max_position_embeddings = config_int(r, "block_size");
  c.rope_theta = config_double(r, "rope_theta", 10000.0);
  c.rms_norm_eps = config_double(r, "rms_norm_eps", 1e-5);
  c.tie_word_embeddings = false;
  c.attention_dropout = 0.0;
  c.attention = models::GPTAttention::parse(config_string(r, "attention", "dense"));
  return c;  // validated by the Llama constructor (kv heads dividing heads, an even head width, ...)
}

}  // namespace

Reply run_llama_train(const Request& r) {
  const int64_t B = config_int(r, "batch_size"), T = config_int(r, "block_size");
  std::vector<int64_t> tokens = text_tokens(r);
  const int64_t V = *std::max_element(tokens.begin(), tokens.end()) + 1;
  std::vector<TrainBatch> pool = gpt_batches(tokens, config_int(r, "batches"), B, T);
  Generator init(1337);
  models::Llama model(llama_config_of(r, V), init);
  // Optional: start from a checkpoint's weights (transformers' names), or write the initial ones out.
  if (std::string dir = config_string(r, "init_from", ""); !dir.empty())
    models::load_llama_weights(model, nn::load_safetensors(dir + "/" + models::kModelFile), dir);
  if (std::string dir = config_string(r, "save_init", ""); !dir.empty()) models::save_llama(dir, model);
  model.train();
  Reply reply = train_steps(r, model, [&](int64_t i) {
    const TrainBatch& b = pool[size_t(i) % pool.size()];
    return model.forward(b.x, b.y).loss;
  });
  reply.extra["attention"] = model.config.attention.name();
  reply.extra["vocab_size"] = V;
  return reply;
}

// One timed step = one models::generate call of new_tokens tokens from a one-token prompt.
Reply run_llama_generate(const Request& r) {
  Generator init(1337);
  models::Llama model(llama_config_of(r, config_int(r, "vocab_size")), init);
  Reply reply = generate_steps(r, model, config_int(r, "new_tokens"), r.config.value("kv_cache", true));
  reply.extra["attention"] = model.config.attention.name();
  return reply;
}

}  // namespace tg::compare
