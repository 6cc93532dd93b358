// An attention pattern of your own, written as a C++ lambda, trained in a GPT on tiny Shakespeare.
//
//   build/example_custom_attention --data data/tinyshakespeare.txt --steps 300 [--out DIR]
//
// The pattern is the "fixed" pattern of Sparse Transformers (Child et al. 2019), which tapegrad
// does not ship: a token sees the 16 tokens before it and every 8th token further back (the
// last of each group of 8 summarises it). It is a mask_mod, a function of (batch, head, query,
// key); the GPT applies its causal mask on top and runs it through flex_attention, whose block
// mask skips the tiles the pattern leaves empty, forward and backward.
//
// Prints the validation loss before and after training (the same batches each time) and exits
// 0 when it fell by at least --min-drop. With --out, writes the checkpoint and loads it again:
// config.json names the pattern ("flex:custom:strided") but cannot hold the lambda, so loading
// gives the pattern again.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <chrono>

#include "models/tokenizers/char_tokenizer.h"
#include "models/gpt/gpt.h"
#include "models/gpt/gpt_checkpoint.h"
#include "models/data/token_data.h"
#include "nn/file_io.h"
#include "nn/optim/adamw.h"
#include "nn/optim/clip_grad.h"
#include "ops/flex_patterns.h"
#include "tapegrad.h"

using namespace tg;

namespace {

struct Args {
  std::string data = "data/tinyshakespeare.txt", out, pattern = "strided";
  int64_t steps = 300, batch_size = 12, block_size = 64, n_layer = 4, n_head = 4, n_embd = 128, eval_batches = 20;
  double lr = 1e-3, min_drop = 0.5;
  uint64_t seed = 1337;
};

// Mean loss over the same validation batches every time (eval mode, no tape).
double validation_loss(models::GPT& model, const std::vector<uint16_t>& val, const Args& a) {
  model.eval();
  NoGradGuard no_grad;
  Generator gen(a.seed + 1);
  double total = 0;
  for (int64_t i = 0; i < a.eval_batches; ++i) {
    data::TokenBatch b = data::sample_batch(val, a.block_size, a.batch_size, gen);
    total += model.forward(b.x, b.y).loss.item();
  }
  model.train();
  return total / double(a.eval_batches);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app("A GPT with a custom attention pattern (a C++ lambda) on tiny Shakespeare");
  app.add_option("--data", a.data, "A text file (tokenized by characters)")->capture_default_str();
  app.add_option("--out", a.out, "Write the checkpoint here, then load it again");
  app.add_option("--pattern", a.pattern, "strided (the lambda below), or dense (plain causal attention, to compare)")
      ->check(CLI::IsMember({"strided", "dense"}))
      ->capture_default_str();
  app.add_option("--steps", a.steps, "Training steps")->capture_default_str();
  app.add_option("--batch-size", a.batch_size)->capture_default_str();
  app.add_option("--block-size", a.block_size)->capture_default_str();
  app.add_option("--n-layer", a.n_layer)->capture_default_str();
  app.add_option("--n-head", a.n_head)->capture_default_str();
  app.add_option("--n-embd", a.n_embd)->capture_default_str();
  app.add_option("--lr", a.lr)->capture_default_str();
  app.add_option("--eval-batches", a.eval_batches)->capture_default_str();
  app.add_option("--min-drop", a.min_drop, "Exit 1 unless the validation loss falls by this much")->capture_default_str();
  app.add_option("--seed", a.seed)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    std::string text = read_file_bytes(a.data);
    models::CharTokenizer tok = models::CharTokenizer::from_text(text);
    std::vector<uint16_t> ids;
    for (int64_t id : tok.encode(text)) ids.push_back(uint16_t(id));
    const auto split = ids.begin() + int64_t(ids.size() * 9 / 10);
    std::vector<uint16_t> train(ids.begin(), split), val(split, ids.end());

    // --- the pattern: a few lines of C++ -----------------------------------------------------
    MaskMod strided = mask_mod("strided", [](int64_t /*b*/, int64_t /*h*/, int64_t q, int64_t k) {
      return q - k < 16 || k % 8 == 7;  // the last 16 tokens, and every 8th before them
    });
    models::GPTConfig cfg;
    cfg.vocab_size = tok.vocab_size(), cfg.n_positions = a.block_size;
    cfg.n_layer = a.n_layer, cfg.n_head = a.n_head, cfg.n_embd = a.n_embd, cfg.dropout = 0;
    cfg.attention = models::GPTAttention::from_pattern(FlexPattern::custom("strided", strided));
    // ------------------------------------------------------------------------------------------
    if (a.pattern == "dense") cfg.attention = models::GPTAttention::parse("dense");

    Generator gen(a.seed);
    models::GPT model(cfg, gen);
    optim::AdamW opt(optim::decay_groups(model, 0.1), optim::AdamWOptions(a.lr).beta2(0.99));
    const double before = validation_loss(model, val, a);
    fmt::print("attention {}: {} parameters, val loss {:.4f} before training\n", cfg.attention.name(),
               model.num_parameters(false), before);
    const auto start = std::chrono::steady_clock::now();
    for (int64_t step = 0; step < a.steps; ++step) {
      data::TokenBatch batch = data::sample_batch(train, a.block_size, a.batch_size, gen);
      Tensor loss = model.forward(batch.x, batch.y).loss;
      opt.zero_grad();
      backward(loss);
      optim::clip_grad_norm_(model.parameters(), 1.0);
      opt.step();
      if (step % 100 == 0 || step + 1 == a.steps) fmt::print("step {} loss {:.4f}\n", step, loss.item());
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double after = validation_loss(model, val, a);
    fmt::print("val loss {:.4f} after {} steps ({:.1f} s, {:.0f} ms/step)\n", after, a.steps, seconds,
               1e3 * seconds / double(std::max<int64_t>(a.steps, 1)));

    if (!a.out.empty()) {
      models::save_checkpoint(a.out, model, &tok);
      models::LoadGPTOptions again;
      again.attention = cfg.attention;  // config.json names the pattern; the lambda is given again
      models::LoadedGPT loaded = models::load_gpt(a.out, again);
      const double reloaded = validation_loss(*loaded.model, val, a);
      fmt::print("checkpoint {} reloaded with the pattern: val loss {:.4f}\n", a.out, reloaded);
      if (reloaded != after) return 1;
    }
    return after <= before - a.min_drop ? 0 : 1;
  } catch (const Error& e) {
    fmt::print(stderr, "example_custom_attention: {}\n", e.what());
    return 1;
  }
}
