// `tapegrad gpt train | eval | sample | attention`: train a decoder (GPT-2 or the Llama family),
// evaluate a checkpoint, sample text from it, and draw its attention weights. A checkpoint's
// family is its config.json's model_type.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "autograd/autograd.h"
#include "models/decoders/decoder_checkpoint.h"
#include "models/decoders/generate.h"
#include "models/gpt/gpt_checkpoint.h"
#include "models/training/gpt_train.h"
#include "nn/file_checks.h"
#include "nn/file_io.h"
#include "nn/finite_check.h"
#include "nn/parallel/process_group.h"
#include "tools/cli/commands.h"
#include "tools/cli/flag_names.h"
#include "tools/cli/train_flags.h"
#include "tools/plot/heatmap.h"
#include "tools/plot/svg_plot.h"

namespace tg::cli {
namespace {

// The prompt's ids; a character the checkpoint's tokenizer lacks is named before anything runs.
std::vector<int64_t> encode_prompt(const models::GPTTokenizer& tok, const std::string& prompt) {
  if (const models::CharTokenizer* chars = tok.chars())
    if (std::optional<size_t> at = chars->first_unknown(prompt))
      fail("--prompt: character {} at offset {} is not in the vocabulary of {} ({} characters)",
           models::CharTokenizer::describe(uint8_t(prompt[*at])), *at, tok.source(), tok.vocab_size());
  return tok.encode(prompt);
}

const char* const kTokenizerHelp =
    "A BPE: a tokenizer.json, a .tiktoken file, or a directory holding tokenizer.json or vocab.json + merges.txt";

// Weights holding NaN or Inf would print noise (sample) or blank pictures (attention): refused.
void refuse_non_finite(const models::CausalLM& model, const std::string& checkpoint) {
  if (std::optional<std::string> bad = nn::first_non_finite_parameter(model))
    fail("--checkpoint: {}/{}: {}; the model's outputs would be meaningless", checkpoint, models::kModelFile, *bad);
}

void add_train(CLI::App& gpt) {
  auto o = std::make_shared<models::GPTTrainOptions>();
  CLI::App* c = gpt.add_subcommand("train", "Train a GPT-2 or Llama-family decoder on a text file (characters or a "
                                            "BPE) or token ids (.bin)");
  c->add_option("--data", o->data, "Training data: .bin (uint16 ids) or a text file")->required();
  c->add_option("--val-data", o->val_data, "Validation data (default: the last 10% of --data)");
  c->add_option("--tokenizer", o->tokenizer, std::string(kTokenizerHelp) + " (text --data is encoded with it)");
  c->add_option("--out", o->out, "Checkpoint directory")->required();
  c->add_option("--init-from", o->init_from,
                "Fine-tune from this checkpoint (Hugging Face layout: model_type gpt2, llama, mistral or qwen2)");
  c->add_option("--resume", o->resume, "Continue the run saved in this checkpoint");
  c->add_option("--model", o->model, "A new model's family: gpt2 or llama (RMSNorm, rotary positions, SwiGLU, "
                                     "grouped-query attention)")
      ->capture_default_str();
  c->add_option("--n-layer", o->n_layer, "Layers L")->capture_default_str();
  c->add_option("--n-head", o->n_head, "Heads H")->capture_default_str();
  c->add_option("--n-embd", o->n_embd, "Width C")->capture_default_str();
  c->add_option("--block-size", o->block_size, "Context length T")->capture_default_str();
  c->add_option("--dropout", o->dropout, "Dropout on embeddings, attention and residuals")->capture_default_str();
  c->add_option("--bias", o->bias, "gpt2: biases in linear layers and LayerNorms (true/false)")->capture_default_str();
  c->add_option("--n-kv-head", o->n_kv_head, "llama: key/value heads, dividing --n-head (0 = --n-head)")
      ->capture_default_str();
  c->add_option("--intermediate-size", o->intermediate_size,
                "llama: the SwiGLU MLP's width (0 = 8·n_embd/3 rounded up to a multiple of 32)")
      ->capture_default_str();
  c->add_option("--rope-theta", o->rope_theta, "llama: the rotary positions' base")->capture_default_str();
  c->add_option("--save-dtype", o->save_dtype,
                "llama: the checkpoints' dtype, float32, bfloat16 or float16 (the model trains in float32)")
      ->capture_default_str();
  c->add_option("--attention", o->attention,
                "dense, flash, sliding:W, sparse, linear, or flex:PATTERN (flex:causal, flex:sliding:W, "
                "flex:document:N, flex:prefix:N, flex:alibi, flex:softcap:C, ...)")
      ->capture_default_str();
  c->add_flag("--pack-documents", o->pack_documents,
              "Documents in one window do not see each other: a token attends to its own document only, positions "
              "restart at each document (text: documents end at blank lines; .bin: after id 50256, GPT-2's "
              "<|endoftext|>). dense, flash, sliding and sparse run as the same flex pattern with the document mask");
  add_optim_flags(c, o->optim);
  c->callback([o, c] {
    // Before anything is loaded or trained: the files named on the command line are usable.
    check_input_file(o->data, "--data");
    if (!o->val_data.empty()) check_input_file(o->val_data, "--val-data");
    if (!o->optim.log.empty()) check_output_file(o->optim.log, "--log");
    check_log_apart(o->optim.log, {{"--data", o->data}, {"--val-data", o->val_data},
                                   {"--init-from", o->init_from}, {"--resume", o->resume}});
    if (!o->init_from.empty()) check_input_dir(o->init_from, "--init-from");
    if (!o->resume.empty()) check_input_dir(o->resume, "--resume");
    models::adopt_resumed_options(*o, [c](const std::string& field) { return c->count(flag_of(field)) > 0; });
    o->report = [c](const std::string& line) { fmt::print(stderr, "{}\n", with_flag_names(line, *c)); };
    // Under mpirun every rank runs this command: data-parallel training, rank 0 reporting.
    if (distributed::launched_by_mpirun()) distributed::init_process_group();
    models::GPTTrainResult r = models::train_gpt(*o);
    // Not on an error path (the exception skips it): mpirun then sees the rank fail and ends the job.
    const bool report = distributed::get_rank() == 0;
    distributed::destroy_process_group();
    if (!report) return;
    fmt::print("trained {} steps ({} parameters): train loss {:.4f}, val loss {}, {:.0f} tokens/s (median){}\n",
               r.steps, r.num_parameters, r.train_loss, r.val_loss ? fmt::format("{:.4f}", *r.val_loss) : "-",
               r.tokens_per_s, r.interrupted ? " (interrupted)" : "");
    if (r.world_size > 1)
      fmt::print("data-parallel over {} ranks: {:.2f} ms per step waiting for gradient all-reduces after backward\n",
                 r.world_size, r.allreduce_wait_s * 1e3);
    fmt::print("checkpoint: {}\n", o->out);
    if (r.interrupted) throw CLI::RuntimeError(130);
  });
}

void add_eval(CLI::App& gpt) {
  struct Args {
    std::string checkpoint, data, tokenizer;
    int64_t block_size = 0, batch_size = 8;
  };
  auto a = std::make_shared<Args>();
  CLI::App* c = gpt.add_subcommand("eval", "Mean loss of a checkpoint over a file's consecutive windows");
  c->add_option("--checkpoint", a->checkpoint, "Checkpoint directory")->required();
  c->add_option("--data", a->data, "A .bin token file or a text file")->required();
  c->add_option("--block-size", a->block_size, "Window length (default: the model's context length)");
  c->add_option("--batch-size", a->batch_size, "Windows per forward pass")->capture_default_str();
  c->add_option("--tokenizer", a->tokenizer, std::string(kTokenizerHelp) + " (when the checkpoint has none)");
  c->callback([a] {
    check_input_dir(a->checkpoint, "--checkpoint");
    check_input_file(a->data, "--data");
    auto warn = [](const std::string& why) { fmt::print(stderr, "tapegrad gpt eval: warning: {}\n", why); };
    const double loss = models::evaluate_gpt(a->checkpoint, a->data, a->block_size, a->batch_size, warn, a->tokenizer);
    fmt::print("loss {:.6f}\n", loss);
  });
}

void add_sample(CLI::App& gpt) {
  struct Args {
    std::string checkpoint, prompt = "\n", tokenizer;
    int64_t max_new_tokens = 500, top_k = 200;
    double temperature = 0.8;
    uint64_t seed = 1337;
    bool no_kv_cache = false;
  };
  auto a = std::make_shared<Args>();
  CLI::App* c = gpt.add_subcommand("sample", "Generate text from a checkpoint (KV cache)");
  c->add_option("--checkpoint", a->checkpoint, "Checkpoint directory")->required();
  c->add_option("--prompt", a->prompt, "Text to continue (default: a newline)");
  c->add_option("--max-new-tokens", a->max_new_tokens, "Tokens to generate")->capture_default_str()->check(CLI::Range(int64_t(0), int64_t(1) << 30));
  c->add_option("--temperature", a->temperature, "Softmax temperature (0 = greedy)")->capture_default_str()->check(CLI::Range(0.0, 1e6));
  c->add_option("--top-k", a->top_k, "Sample among the k most likely tokens (0 = all)")->capture_default_str()->check(CLI::Range(int64_t(0), int64_t(1) << 30));
  c->add_option("--seed", a->seed, "Sampling seed")->capture_default_str();
  c->add_option("--tokenizer", a->tokenizer, std::string(kTokenizerHelp) + " (when the checkpoint has none)");
  c->add_flag("--no-kv-cache", a->no_kv_cache,
              "Recompute the whole context for every token instead of caching keys and values (slower; "
              "for comparison)");
  c->callback([a] {
    check_input_dir(a->checkpoint, "--checkpoint");
    TG_CHECK(std::isfinite(a->temperature), "--temperature must be a finite number, got {}", a->temperature);
    models::LoadedDecoder loaded = models::load_decoder(a->checkpoint);
    refuse_non_finite(*loaded.model, a->checkpoint);
    // The checkpoint's own tokenizer, or --tokenizer's when it has none (both, differing: refused).
    const std::optional<models::GPTTokenizer> given = models::load_tokenizer_option(a->tokenizer);
    std::optional<models::GPTTokenizer> tok =
        models::load_tokenizer(a->checkpoint, loaded.model->vocab_size(), given ? &*given : nullptr);
    TG_CHECK(tok, "gpt sample: {} has no tokenizer.json (nor tokenizer.tiktoken, nor vocab.json + merges.txt), so "
                  "text cannot be encoded; give one with --tokenizer",
             a->checkpoint);
    TG_CHECK(!a->prompt.empty(), "--prompt: give at least one character");
    Generator gen(a->seed);
    std::vector<int64_t> ids = encode_prompt(*tok, a->prompt);
    fmt::print("{}", a->prompt);
    std::fflush(stdout);
    Tensor prompt = empty({1, int64_t(ids.size())}, DType::i64);
    std::copy(ids.begin(), ids.end(), prompt.data<int64_t>());
    const auto start = std::chrono::steady_clock::now();
    models::generate(*loaded.model, prompt, a->max_new_tokens, a->temperature, a->top_k, gen, !a->no_kv_cache,
                     [&](const Tensor& next) {
                       fmt::print("{}", tok->decode({next.data<int64_t>()[0]}));
                       std::fflush(stdout);
                     });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print("\n");
    // Speed on stderr, so stdout stays the text alone.
    fmt::print(stderr, "generated {} tokens in {:.3f} s: {:.1f} tokens/s ({})\n", a->max_new_tokens, seconds,
               seconds > 0 ? double(a->max_new_tokens) / seconds : 0.0, a->no_kv_cache ? "no KV cache" : "KV cache");
  });
}

void add_attention(CLI::App& gpt) {
  struct Args {
    std::string checkpoint, prompt, out;
  };
  auto a = std::make_shared<Args>();
  CLI::App* c = gpt.add_subcommand("attention", "Draw every layer's and head's attention weights for a prompt");
  c->add_option("--checkpoint", a->checkpoint, "Checkpoint directory")->required();
  c->add_option("--prompt", a->prompt, "The text whose attention is drawn")->required();
  c->add_option("--out", a->out, "The picture (.svg)")->required();
  c->callback([a] {
    TG_CHECK(a->out.ends_with(".svg"), "--out: the heatmaps are written as SVG; give a .svg file, got {}", a->out);
    models::LoadDecoderOptions lo;
    lo.attention = models::GPTAttention{};  // dense: the only variant whose weights exist
    check_input_dir(a->checkpoint, "--checkpoint");
    check_output_file(a->out, "--out");
    models::LoadedDecoder loaded = models::load_decoder(a->checkpoint, lo);
    models::CausalLM& model = *loaded.model;
    refuse_non_finite(model, a->checkpoint);
    std::optional<models::GPTTokenizer> tok = models::load_tokenizer(a->checkpoint, model.vocab_size());
    TG_CHECK(tok, "gpt attention: {} has no tokenizer", a->checkpoint);
    std::vector<int64_t> ids = encode_prompt(*tok, a->prompt);
    TG_CHECK(!ids.empty(), "--prompt: empty");
    if (int64_t(ids.size()) > model.context_length()) ids.erase(ids.begin(), ids.end() - model.context_length());
    int64_t T = int64_t(ids.size());
    Tensor idx = empty({1, T}, DType::i64);
    std::copy(ids.begin(), ids.end(), idx.data<int64_t>());
    std::vector<Tensor> weights;
    model.eval();
    NoGradGuard no_grad;
    models::GPTForwardOptions fo;
    fo.attention_weights = &weights;
    model.forward(idx, Tensor(), fo);
    std::vector<plot::Heatmap> maps;
    const int64_t H = weights.empty() ? 0 : weights[0].size(1);
    for (size_t l = 0; l < weights.size(); ++l)
      for (int64_t h = 0; h < H; ++h) {
        plot::Heatmap m{fmt::format("layer {}, head {}", l, h), T, T, {}};
        const Tensor& w = weights[l];  // [1, H, T, T]
        for (int64_t i = 0; i < T * T; ++i) m.values.push_back(w.at({0, h, i / T, i % T}));
        maps.push_back(std::move(m));
      }
    std::vector<std::string> labels;
    for (int64_t id : ids) labels.push_back(tok->decode({id}));
    write_file_atomically(a->out, plot::render_heatmaps(maps, H, labels, labels,
                                                              fmt::format("attention of {} (rows: queries, columns: keys)", a->checkpoint)));
    fmt::print("wrote {} ({} layers × {} heads, {} tokens)\n", a->out, weights.size(), H, T);
  });
}

}  // namespace

void add_gpt_command(CLI::App& app) {
  CLI::App* gpt = app.add_subcommand("gpt", "Decoder language models (GPT-2, Llama, Mistral, Qwen2): train, eval, "
                                            "sample, attention");
  gpt->require_subcommand(1);
  add_train(*gpt);
  add_eval(*gpt);
  add_sample(*gpt);
  add_attention(*gpt);
}

}  // namespace tg::cli
