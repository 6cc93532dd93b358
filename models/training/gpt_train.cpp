#include "models/training/gpt_train.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <thread>

#include "autograd/autograd.h"
#include "models/data/packed_documents.h"
#include "models/data/token_data.h"
#include "models/decoders/decoder_checkpoint.h"
#include "models/gpt/gpt.h"
#include "models/gpt/gpt_checkpoint.h"
#include "models/llama/llama.h"
#include "models/llama/llama_checkpoint.h"
#include "models/tokenizers/bpe_tokenizer.h"
#include "models/training/memory_estimate.h"
#include "models/training/train_loop.h"
#include "nn/file_checks.h"
#include "nn/file_io.h"
#include "nn/finite_check.h"
#include "nn/parallel/distributed_data_parallel.h"

namespace tg::models {
namespace {

using json = nlohmann::json;

bool is_bin(const std::string& path) { return path.ends_with(".bin"); }

int encode_threads(int threads) { return threads > 0 ? threads : int(std::max(1u, std::thread::hardware_concurrency())); }

// Token ids of a file: a .bin as it is, a text through the tokenizer (a character it lacks is
// named with the line and column). A .bin holds uint16 ids (nanoGPT's), or uint32 when the
// vocabulary (the tokenizer's, else `model_vocab`) is beyond 65,536, as `tokenizer encode`
// writes them.
std::vector<uint32_t> load_tokens(const std::string& path, const GPTTokenizer* tokenizer, int threads,
                                  int64_t model_vocab = 0) {
  if (is_bin(path)) {
    const int64_t vocab = tokenizer ? tokenizer->vocab_size() : model_vocab;
    std::vector<uint32_t> tokens;
    if (vocab > 65536) {
      tokens = data::read_tokens32(path);
    } else {
      const std::vector<uint16_t> ids16 = data::read_tokens(path);
      tokens.assign(ids16.begin(), ids16.end());
    }
    if (tokenizer && tokenizer->bpe())
      for (size_t i = 0; i < tokens.size(); ++i)
        TG_CHECK(tokens[i] < tokenizer->vocab_size(), "{}: token {} is id {}, beyond the vocabulary of {} ({} tokens)",
                 path, i, tokens[i], tokenizer->source(), tokenizer->vocab_size());
    return tokens;
  }
  TG_CHECK(tokenizer, "{}: a text file needs a tokenizer (the checkpoint has none)", path);
  std::string text = read_file_bytes(path);
  if (const CharTokenizer* chars = tokenizer->chars())
    if (std::optional<size_t> at = chars->first_unknown(text)) {
      const int64_t line = 1 + std::count(text.begin(), text.begin() + int64_t(*at), '\n');
      const size_t line_start = text.rfind('\n', *at == 0 ? 0 : *at - 1);
      const size_t column = *at == 0 || line_start == std::string::npos ? *at + 1 : *at - line_start;
      fail("{}:{}:{}: character {} is not in the vocabulary of {} ({} characters)", path, line, column,
           CharTokenizer::describe(uint8_t(text[*at])), tokenizer->source(), tokenizer->vocab_size());
    }
  std::vector<uint32_t> out;
  out.reserve(text.size());
  try {
    for (int64_t id : tokenizer->encode(text, threads)) out.push_back(static_cast<uint32_t>(id));
  } catch (const Error& e) {
    fail("{}: {}", path, e.what());
  }
  return out;
}

struct Corpus {
  std::optional<GPTTokenizer> tokenizer;
  std::vector<uint32_t> train, val;
  int64_t vocab_size = 0;
};

// `tokenizer`: the checkpoint's or the option's; none: characters of a text `data`.
// `model_vocab`: a checkpoint's vocabulary (0 for a new model), which says how wide a .bin's ids are.
Corpus load_corpus(const GPTTrainOptions& o, std::optional<GPTTokenizer> tokenizer, int64_t model_vocab) {
  Corpus c;
  if (!is_bin(o.data) && !tokenizer) {
    std::string text = read_file_bytes(o.data);
    TG_CHECK(!text.empty(), "`data`: {} is empty", o.data);
    if (!o.val_data.empty() && !is_bin(o.val_data)) text += read_file_bytes(o.val_data);
    tokenizer = GPTTokenizer(CharTokenizer::from_text(text));
  }
  c.tokenizer = tokenizer;
  const GPTTokenizer* tok = c.tokenizer ? &*c.tokenizer : nullptr;
  const int threads = encode_threads(o.optim.threads);
  c.train = load_tokens(o.data, tok, threads, model_vocab);
  if (!o.val_data.empty()) {
    c.val = load_tokens(o.val_data, tok, threads, model_vocab);
  } else {
    size_t n = c.train.size() * 9 / 10;  // nanoGPT's split: the last 10% for validation
    c.val.assign(c.train.begin() + int64_t(n), c.train.end());
    c.train.resize(n);
  }
  int64_t max_id = 0;
  for (uint32_t t : c.train) max_id = std::max<int64_t>(max_id, t);
  for (uint32_t t : c.val) max_id = std::max<int64_t>(max_id, t);
  c.vocab_size = std::max<int64_t>(tok ? tok->vocab_size() : 0, max_id + 1);  // .bin ids need not fit a character tokenizer
  TG_CHECK(int64_t(c.train.size()) > o.block_size, "`data`: {} has {} training tokens, fewer than one block of {} + 1",
           o.data, c.train.size(), o.block_size);
  TG_CHECK(int64_t(c.val.size()) > o.block_size, "`val_data`: {} validation tokens, fewer than one block of {} + 1",
           c.val.size(), o.block_size);
  return c;
}

// pack_documents: where the documents of the training and validation tokens start.
struct DocumentStarts {
  std::vector<int64_t> train, val;
  int64_t eot = -1;  // the end-of-text id the documents end at (-1: at blank lines)
};

// A .bin's documents end at the end-of-text id, as a text's do when a BPE encoded it; a text's of
// characters at blank lines, found in its bytes, which are its tokens. tg::Error when the training
// data is one document.
DocumentStarts find_documents(const GPTTrainOptions& o, const Corpus& c) {
  auto text_starts = [](const std::string& path, size_t tokens) {
    std::string text = read_file_bytes(path);
    TG_CHECK(text.size() == tokens,
             "`pack_documents`: {}: text is split into documents at blank lines for a character tokenizer (one token "
             "per byte), but its {} bytes gave {} tokens",
             path, text.size(), tokens);
    return data::text_document_starts(text);
  };
  const bool bpe = c.tokenizer && c.tokenizer->bpe();  // text encoded to ids as a .bin holds them
  int64_t eot = o.eot_token_id;                         // a BPE's own <|endoftext|>, when it has one
  if (bpe)
    for (const AddedToken& a : c.tokenizer->bpe()->added_tokens())
      if (a.content == "<|endoftext|>") eot = a.id;
  DocumentStarts d;
  if (is_bin(o.data) || bpe) {
    d.eot = eot;
    d.train = data::token_document_starts(c.train, eot);
    if (o.val_data.empty()) d.val = data::token_document_starts(c.val, eot);
  } else {
    const int64_t n = int64_t(c.train.size()), held_out = o.val_data.empty() ? int64_t(c.val.size()) : 0;
    std::vector<int64_t> all = text_starts(o.data, size_t(n + held_out));
    d.train = data::document_starts_between(all, 0, n);
    if (o.val_data.empty()) d.val = data::document_starts_between(all, n, n + held_out);
  }
  if (!o.val_data.empty())
    d.val = is_bin(o.val_data) || bpe ? data::token_document_starts(c.val, eot) : text_starts(o.val_data, c.val.size());
  TG_CHECK(d.train.size() > 1, "`pack_documents`: the training tokens of {} are one document ({}): there is nothing to pack",
           o.data,
           is_bin(o.data) || bpe ? fmt::format("no end-of-text id {} before the last token; GPT-2's <|endoftext|> is 50256",
                                               eot)
                                 : std::string("no blank line between its lines"));
  return d;
}

// The line pack_documents logs: the documents, and the padding packing saves against one
// document per row; and which pattern a hand-written variant runs as.
std::string packing_summary(const GPTTrainOptions& o, const DocumentStarts& d, size_t train_tokens,
                            const GPTAttention& attention) {
  const data::PackingStats s = data::packing_stats(d.train, int64_t(train_tokens), o.block_size);
  std::string line = fmt::format(
      "`pack_documents`: {} documents in {} training tokens ({}); one document per row of `block_size` {}, padded, "
      "would take {} rows holding {} padding tokens ({:.1f}% of their slots); packed, every row is {} tokens of text, "
      "so packing saves those {} padding tokens (nanoGPT's random windows, drawn without `pack_documents`, have no "
      "padding either, but a token sees the documents before its own)",
      s.documents, s.tokens, d.eot >= 0 ? fmt::format("split after end-of-text id {}", d.eot) : "split at blank lines",
      o.block_size, s.padded_rows, s.padding_tokens,
      100.0 * double(s.padding_tokens) / double(s.padded_rows * o.block_size), o.block_size, s.padding_tokens);
  if (attention.flex.empty() && !attention.custom) {
    AttentionSpec spec;
    spec.variant = attention.variant, spec.window = attention.window, spec.sparse = attention.sparse;
    const FlexPattern p = flex_pattern_of_variant(spec);
    line += fmt::format("\n`pack_documents`: `attention` {} runs as {} with the document mask (the same pattern, each "
                        "token within its own document)",
                        attention.name(), p.name == "full" ? "flex:causal" : p.text());
  }
  return line;
}

// The options a resumed run must share with the run it continues, by their field names.
json run_options(const GPTTrainOptions& o) {
  json j{{"model", o.model},             {"n_layer", o.n_layer},       {"n_head", o.n_head},         {"n_embd", o.n_embd},
              {"block_size", o.block_size}, {"bias", o.bias},           {"attention", o.attention},
              {"optimizer", o.optim.optimizer}, {"batch_size", o.optim.batch_size},
              {"pack_documents", o.pack_documents}};
  if (o.model == "llama") {
    j["n_kv_head"] = o.n_kv_head;
    j["intermediate_size"] = o.intermediate_size;
    j["rope_theta"] = o.rope_theta;
  }
  return j;
}

// The architecture a checkpoint's config.json fixes, under the names of the options.
json checkpoint_architecture(const std::string& dir) {
  if (decoder_model_type(dir) == "gpt2") {
    const GPTConfig c = load_gpt_config(dir);
    return json{{"model", "gpt2"}, {"n_layer", c.n_layer}, {"n_head", c.n_head}, {"n_embd", c.n_embd}, {"bias", c.bias}};
  }
  const LlamaConfig c = load_llama_config(dir);
  return json{{"model", "llama"},
              {"n_layer", c.num_hidden_layers},
              {"n_head", c.num_attention_heads},
              {"n_embd", c.hidden_size},
              {"n_kv_head", c.num_key_value_heads},
              {"intermediate_size", c.intermediate_size},
              {"rope_theta", c.rope_theta}};
}

// The stored run options of a checkpoint; older checkpoints without "options" give what their
// config.json and train_state.json hold.
json stored_run_options(const json& state, const std::string& dir) {
  json s = state.contains("options") && state["options"].is_object() ? state["options"] : json::object();
  const json architecture = checkpoint_architecture(dir);  // named: items() of a temporary would dangle
  for (const auto& [key, value] : architecture.items())
    if (!s.contains(key)) s[key] = value;
  for (const char* key : {"optimizer", "batch_size", "block_size"})
    if (!s.contains(key) && state.contains(key)) s[key] = state[key];
  return s;
}

// An option's name as messages write it (`n_layer`); tools/cli shows its flag there.
std::string quoted(const std::string& key) { return "`" + key + "`"; }

std::string value_str(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

json read_train_state_json(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / kTrainingJsonFile).string();
  TG_CHECK(std::filesystem::is_regular_file(path), "`resume`: {} is missing (no training state to resume from)", path);
  json j = json::parse(read_file_bytes(path), nullptr, /*allow_exceptions=*/false);
  TG_CHECK(!j.is_discarded() && j.is_object(), "`resume`: {} is not a JSON object (truncated or corrupted?)", path);
  return j;
}

nn::StateDict prefixed(const std::string& prefix, const nn::StateDict& s) {
  nn::StateDict out;
  for (auto& [k, v] : s) out[prefix + k] = v;
  return out;
}

nn::StateDict unprefixed(const std::string& prefix, const nn::StateDict& s) {
  nn::StateDict out;
  for (auto& [k, v] : s)
    if (k.starts_with(prefix)) out[k.substr(prefix.size())] = v;
  return out;
}

// A decoder's training as the loop drives it: windows of block_size tokens drawn at random (or
// packed documents), this rank's share of each global batch, validation on the same batches at
// every evaluation, checkpoints holding the optimizer's state and the generators' offsets.
class DecoderTraining final : public TrainingTask {
 public:
  DecoderTraining(const GPTTrainOptions& o, CausalLM& model, const Corpus& corpus,
                  const std::optional<DocumentStarts>& docs, optim::Optimizer& opt, Generator& data_gen,
                  const Generator& dropout_gen)
      : o_(o), model_(model), corpus_(corpus), docs_(docs), opt_(opt), data_gen_(data_gen), dropout_gen_(dropout_gen),
        rank_(distributed::get_rank()), world_(distributed::get_world_size()) {}

  Tensor loss_on_next_batch() override {
    // A global batch of world·B windows is drawn from data_gen; this rank takes windows
    // rank·B .. rank·B + B - 1 of it (a single process takes them all).
    const int64_t B = o_.optim.batch_size;
    Generator mine(data_gen_.seed());
    mine.set_offset(data_gen_.advance(uint64_t(world_ * B)) + uint64_t(rank_ * B));
    return loss_of(batch(corpus_.train, docs_ ? &docs_->train : nullptr, mine));
  }
  int64_t tokens_in_last_batch() const override { return items_per_step(); }
  double evaluate() override {
    Generator eval_gen(o_.optim.seed + 3);  // the same validation batches at every evaluation
    double total = 0;
    for (int64_t i = 0; i < o_.optim.eval_iters; ++i)
      total += loss_of(batch(corpus_.val, docs_ ? &docs_->val : nullptr, eval_gen)).item();
    return total / double(o_.optim.eval_iters);
  }
  void save_checkpoint(int64_t step) override {
    TrainingState st;
    st.tensors = prefixed("optimizer.", opt_.state_dict());
    st.json = json{{"step", step},
                   {"seed", o_.optim.seed},
                   {"data_offset", data_gen_.offset()},
                   {"dropout_offset", dropout_gen_.offset()},
                   {"optimizer", o_.optim.optimizer},
                   {"batch_size", o_.optim.batch_size},
                   {"block_size", o_.block_size},
                   {"options", run_options(o_)}}
                  .dump(2);
    save_decoder(o_.out, model_, corpus_.tokenizer ? &*corpus_.tokenizer : nullptr, &st, o_.save_dtype);
  }
  int64_t items_per_step() const override { return world_ * o_.optim.batch_size * o_.block_size; }

 private:
  // B windows of `tokens` (packed: whole documents, with their ids and positions) drawn by `gen`.
  data::TokenBatch batch(const std::vector<uint32_t>& tokens, const std::vector<int64_t>* doc_starts,
                         Generator& gen) const {
    const int64_t B = o_.optim.batch_size, T = o_.block_size;
    return doc_starts ? data::sample_packed_batch(tokens, *doc_starts, T, B, gen) : data::sample_batch(tokens, T, B, gen);
  }
  // Packed batches carry each token's document and position; others leave them undefined.
  Tensor loss_of(const data::TokenBatch& b) {
    GPTForwardOptions fo;
    fo.document_ids = b.document_ids, fo.position_ids = b.position_ids;
    return model_.forward(b.x, b.y, fo).loss;
  }

  const GPTTrainOptions& o_;
  CausalLM& model_;
  const Corpus& corpus_;
  const std::optional<DocumentStarts>& docs_;
  optim::Optimizer& opt_;
  Generator& data_gen_;
  const Generator& dropout_gen_;
  const int rank_, world_;
};

}  // namespace

void adopt_resumed_options(GPTTrainOptions& o, const std::function<bool(const std::string& option)>& given) {
  if (!o.resume.empty() && !o.init_from.empty()) return;  // validate() reports init_from with resume
  if (!o.init_from.empty()) {
    // Fine-tuning keeps the checkpoint's architecture: a size option given that differs is refused,
    // one not given takes the checkpoint's value (so that what is stored and estimated is true).
    const json arch = checkpoint_architecture(o.init_from);
    std::vector<std::string> differ;
    auto take = [&](const char* key, auto& field) {
      if (!arch.contains(key)) return;
      const auto value = arch[key].get<std::decay_t<decltype(field)>>();
      if (given(key) && field != value)
        differ.push_back(fmt::format("{} {} (the checkpoint's is {})", quoted(key), field, value));
      field = value;
    };
    take("model", o.model), take("n_layer", o.n_layer), take("n_head", o.n_head), take("n_embd", o.n_embd);
    take("bias", o.bias), take("n_kv_head", o.n_kv_head), take("intermediate_size", o.intermediate_size);
    take("rope_theta", o.rope_theta);
    TG_CHECK(differ.empty(), "`init_from`: {}/{} fixes the architecture, and {} differ{}: leave them out to fine-tune",
             o.init_from, kConfigFile, fmt::join(differ, ", "), differ.size() == 1 ? "s" : "");
    return;
  }
  if (o.resume.empty()) return;
  json state = read_train_state_json(o.resume);
  json stored = stored_run_options(state, o.resume);
  auto take = [&](const char* key, auto& field) {
    if (!stored.contains(key) || given(key)) return;
    try {
      field = stored[key].get<std::decay_t<decltype(field)>>();
    } catch (const json::exception& e) {
      fail("`resume`: {}/{}: option '{}': {}", o.resume, kTrainingJsonFile, key, e.what());
    }
  };
  take("model", o.model), take("n_layer", o.n_layer), take("n_head", o.n_head), take("n_embd", o.n_embd);
  take("block_size", o.block_size), take("bias", o.bias), take("attention", o.attention);
  take("n_kv_head", o.n_kv_head), take("intermediate_size", o.intermediate_size), take("rope_theta", o.rope_theta);
  take("optimizer", o.optim.optimizer), take("batch_size", o.optim.batch_size);
  take("pack_documents", o.pack_documents);
}

void GPTTrainOptions::validate() const {
  TG_CHECK(!data.empty(), "`data`: required");
  TG_CHECK(!out.empty(), "`out`: required");
  TG_CHECK(init_from.empty() || resume.empty(), "`init_from` and `resume` exclude each other");
  TG_CHECK(n_layer > 0, "`n_layer` must be positive, got {}", n_layer);
  TG_CHECK(n_head > 0, "`n_head` must be positive, got {}", n_head);
  TG_CHECK(n_embd > 0, "`n_embd` must be positive, got {}", n_embd);
  TG_CHECK(n_embd % n_head == 0, "`n_embd` ({}) must be divisible by `n_head` ({})", n_embd, n_head);
  TG_CHECK(model == "gpt2" || model == "llama", "`model` must be gpt2 or llama, got '{}'", model);
  if (model == "llama") {
    TG_CHECK(n_kv_head >= 0 && (n_kv_head == 0 || n_head % n_kv_head == 0),
             "`n_kv_head` ({}) must divide `n_head` ({}) (0 = `n_head`)", n_kv_head, n_head);
    TG_CHECK((n_embd / n_head) % 2 == 0, "`model` llama: the head width `n_embd` / `n_head` = {} must be even (rotary positions)",
             n_embd / n_head);
    TG_CHECK(intermediate_size >= 0, "`intermediate_size` must be positive (or 0 for 8·n_embd/3), got {}", intermediate_size);
    TG_CHECK(std::isfinite(rope_theta) && rope_theta > 0, "`rope_theta` must be positive, got {}", rope_theta);
  }
  TG_CHECK(save_dtype == "float32" || save_dtype == "bfloat16" || save_dtype == "float16",
           "`save_dtype` must be float32, bfloat16 or float16, got '{}'", save_dtype);
  TG_CHECK(save_dtype == "float32" || model == "llama",
           "`save_dtype` {}: GPT-2 checkpoints are written in float32 (half precision is for the Llama family)",
           save_dtype);
  TG_CHECK(block_size > 0, "`block_size` must be positive, got {}", block_size);
  TG_CHECK(dropout >= 0 && dropout < 1, "`dropout` must be in [0, 1), got {}", dropout);
  optim.validate();
  TG_CHECK(optim.eval_iters > 0, "`eval_iters` must be positive, got {}", optim.eval_iters);
  try {
    GPTAttention::parse(attention);
  } catch (const Error& e) {
    fail("`attention`: {}", e.what());
  }
  TG_CHECK(!pack_documents || GPTAttention::parse(attention).variant != AttentionVariant::linear,
           "`pack_documents`: `attention` linear has no attention mask to keep documents apart; use dense, flash, "
           "sliding:W, sparse or flex:PATTERN");
  TG_CHECK(eot_token_id >= 0 && eot_token_id <= int64_t(UINT32_MAX),
           "eot_token_id {} is not a token id of a .bin (uint16 or uint32)", eot_token_id);
}

GPTTrainResult train_gpt(const GPTTrainOptions& o) {
  o.validate();
  const bool dist = distributed::is_initialized();
  const int rank = distributed::get_rank(), world = distributed::get_world_size();
  // Before hours of training: the output directory must take files (a full disk is checked once
  // the model's size is known, below).
  TG_CHECK(o.optim.log.empty() || !same_or_inside(o.optim.log, o.out),
           "`log`: {} is inside `out` {}, which holds the checkpoint's files only; write the log elsewhere", o.optim.log,
           o.out);
  if (rank == 0) check_writable_dir(o.out, "`out`", gpt_checkpoint_files());
  if (o.optim.threads > 0)
    set_num_threads(o.optim.threads);
  else if (dist)  // the ranks on one machine share its cores instead of oversubscribing them
    set_num_threads(std::max(1, int(std::thread::hardware_concurrency()) / distributed::get_local_world_size()));
  DetectAnomalyGuard anomaly(o.optim.detect_anomaly || is_anomaly_enabled());
  GPTAttention attention = GPTAttention::parse(o.attention);
  if (!o.init_from.empty())
    TG_CHECK(std::filesystem::is_directory(o.init_from), "`init_from`: {} is not a checkpoint directory", o.init_from);
  if (!o.resume.empty()) {
    TG_CHECK(std::filesystem::is_directory(o.resume), "`resume`: {} is not a checkpoint directory", o.resume);
    // The run continues only with the settings it was started with: list every one that differs.
    json stored = stored_run_options(read_train_state_json(o.resume), o.resume);
    std::vector<std::string> differ;
    const json given = run_options(o);  // named: items() of a temporary would dangle
    for (const auto& [key, value] : given.items())
      if (stored.contains(key) && stored[key] != value)
        differ.push_back(fmt::format("{} {} (given {})", quoted(key), value_str(stored[key]), value_str(value)));
    TG_CHECK(differ.empty(),
             "`resume`: {} was trained with different settings: {}; give the checkpoint's values or start a new run",
             o.resume, fmt::join(differ, ", "));
  }

  // The model: new, fine-tuned from a checkpoint (either family), or resumed with its training state.
  std::shared_ptr<CausalLM> model;
  const std::optional<GPTTokenizer> given = load_tokenizer_option(o.tokenizer);
  std::optional<GPTTokenizer> tokenizer = given;
  std::string from = !o.resume.empty() ? o.resume : o.init_from;
  if (!from.empty()) {
    LoadDecoderOptions lo;
    lo.attention = attention;
    lo.dropout = o.dropout;
    model = load_decoder(from, lo).model;
    if (std::optional<std::string> bad = nn::first_non_finite_parameter(*model))
      fail("{}/{}: {}; training from it would give a loss of nan", from, kModelFile, *bad);
    tokenizer = load_tokenizer(from, model->vocab_size(), given ? &*given : nullptr);
    TG_CHECK(o.block_size <= model->context_length(), "`block_size` {} is beyond the checkpoint's {} {} ({})",
             o.block_size, model->context_length_field(), model->context_length(), from);
  }
  Corpus corpus = load_corpus(o, tokenizer, model ? model->vocab_size() : 0);
  // Refused before it is built; the Llama family is estimated as the GPT-2 of its sizes.
  std::optional<GPTConfig> estimated;
  if (const auto* gpt = dynamic_cast<const GPT*>(model.get())) estimated = gpt->config;
  if (const auto* llama = dynamic_cast<const Llama*>(model.get())) estimated = gpt_of_sizes(llama->config);
  check_gpt_training_fits(o, corpus.vocab_size, estimated ? &*estimated : nullptr);
  if (!model) {
    Generator init(o.optim.seed);
    if (o.model == "llama") {
      model = std::make_shared<Llama>(new_llama_config(o, corpus.vocab_size), init);
    } else {
      GPTConfig cfg;
      cfg.vocab_size = corpus.vocab_size;
      cfg.n_positions = o.block_size;
      cfg.n_layer = o.n_layer, cfg.n_head = o.n_head, cfg.n_embd = o.n_embd;
      cfg.dropout = o.dropout, cfg.bias = o.bias, cfg.attention = attention;
      model = std::make_shared<GPT>(cfg, init);
    }
  }
  TG_CHECK(corpus.vocab_size <= model->vocab_size(), "`data`: {}: token ids reach {}, the model's vocab_size is {}{}",
           o.data, corpus.vocab_size - 1, model->vocab_size(), from.empty() ? "" : fmt::format(" ({}/{})", from, kConfigFile));
  std::optional<DocumentStarts> docs;
  std::string packing;
  if (o.pack_documents) {
    docs = find_documents(o, corpus);
    packing = packing_summary(o, *docs, corpus.train.size(), attention);
    if (rank == 0 && o.report) o.report(packing);
    else if (rank == 0) fmt::print(stderr, "{}\n", packing);
  }

  std::unique_ptr<optim::Optimizer> opt = o.optim.make_optimizer(*model);
  {
    // A checkpoint: the parameters, AdamW's two moments (SGD's one), and some slack for the rest.
    uint64_t param_bytes = 0;
    for (const Tensor& p : model->parameters()) param_bytes += p.nbytes();
    if (rank == 0)
      check_writable_dir(o.out, "`out`", gpt_checkpoint_files(),
                         param_bytes * (o.optim.optimizer == "sgd" ? 2 : 3) + (64 << 10));
  }
  // Each rank its own dropout stream (rank 0's is a single process's); data_gen is shared, see below.
  Generator data_gen(o.optim.seed + 1), dropout_gen(o.optim.seed + 2 + 0x9E3779B97F4A7C15ull * uint64_t(rank));
  model->set_dropout_generator(&dropout_gen);
  model->set_activation_checkpointing(o.optim.activation_checkpointing);
  int64_t start = 0;
  if (!o.resume.empty()) {
    TrainingState st = load_training_state(o.resume);
    try {
      json j = json::parse(st.json);
      start = j.at("step").get<int64_t>();
      TG_CHECK(start >= 0, "`resume`: {}/{}: step {} is negative", o.resume, kTrainingJsonFile, start);
      TG_CHECK(start <= o.optim.max_iters, "`max_iters` {}: the run in {} is at step {} already; give more steps",
               o.optim.max_iters, o.resume, start);
      data_gen.set_offset(j.at("data_offset").get<uint64_t>());
      dropout_gen.set_offset(j.at("dropout_offset").get<uint64_t>());
    } catch (const json::exception& e) {  // a field missing or of the wrong type
      fail("`resume`: {}/{}: {}", o.resume, kTrainingJsonFile, e.what());
    }
    if (std::optional<std::string> bad = nn::first_non_finite(st.tensors))
      fail("`resume`: {}/{}: {}; resuming would give a loss of nan", o.resume, kTrainingTensorsFile, *bad);
    opt->load_state_dict(unprefixed("optimizer.", st.tensors));
  }

  // Data-parallel: every rank starts from rank 0's parameters, and backward averages gradients.
  std::optional<nn::parallel::DistributedDataParallel> ddp;
  if (dist) ddp.emplace(*model, nn::parallel::DistributedDataParallelOptions{o.optim.bucket_cap_mb, o.optim.dist_timeout});

  DecoderTraining task(o, *model, corpus, docs, *opt, data_gen, dropout_gen);
  TrainLoopResult r = run_train_loop(*model, *opt, o.optim, task, start, dist);

  GPTTrainResult result;
  result.steps = r.steps_done;
  result.train_loss = r.last_loss;
  result.val_loss = r.last_val_loss;
  result.tokens_per_s = r.items_per_s;
  const auto* gpt = dynamic_cast<const GPT*>(model.get());
  result.num_parameters = gpt ? gpt->num_parameters(false) : model->num_parameters();  // nanoGPT's count for GPT-2
  result.interrupted = r.interrupted;
  result.world_size = world;
  result.packing = packing;
  if (ddp && ddp->reducer().stats().backward_passes > 0)
    result.allreduce_wait_s = ddp->reducer().stats().total_wait_seconds / double(ddp->reducer().stats().backward_passes);
  return result;
}

LlamaConfig new_llama_config(const GPTTrainOptions& o, int64_t vocab_size) {
  LlamaConfig c;
  c.vocab_size = vocab_size;
  c.hidden_size = o.n_embd;
  // Llama's SwiGLU width: two thirds of GPT-2's 4·C (the same parameters in three matrices), rounded up.
  c.intermediate_size = o.intermediate_size > 0 ? o.intermediate_size : (8 * o.n_embd / 3 + 31) / 32 * 32;
  c.num_hidden_layers = o.n_layer;
  c.num_attention_heads = o.n_head;
  c.num_key_value_heads = o.n_kv_head > 0 ? o.n_kv_head : o.n_head;
  c.max_position_embeddings = o.block_size;
  c.rope_theta = o.rope_theta;
  c.attention_dropout = o.dropout;
  c.attention = GPTAttention::parse(o.attention);
  c.rms_norm_eps = 1e-5;
  return c;
}

double evaluate_gpt(const std::string& checkpoint, const std::string& data, int64_t block_size, int64_t batch_size,
                    const std::function<void(const std::string&)>& warn, const std::string& tokenizer_path) {
  LoadedDecoder loaded = load_decoder(checkpoint);
  CausalLM& model = *loaded.model;
  if (block_size == 0) block_size = model.context_length();
  TG_CHECK(block_size > 0 && block_size <= model.context_length(), "`block_size` {} must be in [1, the model's {} {}]",
           block_size, model.context_length_field(), model.context_length());
  TG_CHECK(batch_size > 0, "`batch_size` must be positive, got {}", batch_size);
  const std::optional<GPTTokenizer> given = load_tokenizer_option(tokenizer_path);
  std::optional<GPTTokenizer> tokenizer = load_tokenizer(checkpoint, model.vocab_size(), given ? &*given : nullptr);
  std::vector<uint32_t> tokens = load_tokens(data, tokenizer ? &*tokenizer : nullptr, encode_threads(0), model.vocab_size());
  TG_CHECK(tokens.size() >= 2, "{}: needs at least 2 tokens to evaluate, has {}", data, tokens.size());
  for (uint32_t t : tokens)
    TG_CHECK(t < model.vocab_size(), "{}: token id {} is outside the model's vocabulary of {}", data, t,
             model.vocab_size());
  if (std::optional<std::string> bad = nn::first_non_finite_parameter(model); bad && warn)
    warn(fmt::format("{}/{}: {}; the loss will not be finite", checkpoint, kModelFile, *bad));
  model.eval();
  NoGradGuard no_grad;
  data::WindowBatches windows(tokens, block_size, batch_size);
  double total = 0;
  data::TokenBatch b;
  while (windows.next(b)) total += model.forward(b.x, b.y).loss.item() * double(b.y.numel());
  return total / double(windows.num_targets());
}

}  // namespace tg::models
