#pragma once
// Training a decoder from a C++ program (what `tapegrad gpt train` runs): a GPT-2 or a Llama-family
// model, data from a text file (tokenized by characters or a BPE) or nanoGPT token files, AdamW or
// SGD with nanoGPT's parameter groups, warmup + cosine LR, clipping, periodic validation,
// checkpoints in the family's Hugging Face layout, resume, fine-tuning from a checkpoint of either
// family.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "models/gpt/gpt_config.h"
#include "models/llama/llama_config.h"
#include "models/training/train_options.h"

namespace tg::models {

struct GPTTrainOptions {
  std::string data;        ///< .bin = token ids (uint16; uint32 for a vocabulary beyond 65,536); any other file = text, tokenized by `tokenizer` or characters
  std::string tokenizer;   ///< a BPE (GPTTokenizer::load) for text data; a new model's vocabulary is its size
  std::string val_data;    ///< empty: the last 10% of `data` is held out
  std::string out;         ///< checkpoint directory (rewritten at every evaluation and at the end)
  std::string init_from;   ///< fine-tune from this checkpoint (its architecture; new optimizer)
  std::string resume;      ///< continue this checkpoint's run (model, optimizer, step, generators)

  // The model (ignored with init_from/resume, except block_size, dropout and attention).
  /// A new model's family: "gpt2" (GPT-2's architecture) or "llama" (RMSNorm, rotary positions,
  /// SwiGLU, grouped-query attention; models/llama/llama.h).
  std::string model = "gpt2";
  int64_t n_layer = 4, n_head = 4, n_embd = 128, block_size = 64;
  double dropout = 0.0;
  bool bias = true;  ///< gpt2 only
  std::string attention = "dense";
  int64_t n_kv_head = 0;          ///< llama: key/value heads (0 = n_head)
  int64_t intermediate_size = 0;  ///< llama: the SwiGLU width (0 = 8·n_embd/3 rounded up to a multiple of 32)
  double rope_theta = 10000.0;    ///< llama
  /// llama: the dtype checkpoints are written in ("float32", "bfloat16", "float16"); the weights
  /// are rounded to it, so a run resumed from a half-precision checkpoint is not bit-exact.
  std::string save_dtype = "float32";
  /// Packed documents (models/data/packed_documents.h): windows as without, but a token attends only to
  /// earlier tokens of its own document, positions restart at each document, and a target that
  /// starts another document is ignored. Documents end at blank lines of a text of characters and
  /// after `eot_token_id` in a .bin or a text encoded by a BPE (`tokenizer`; then the BPE's own
  /// <|endoftext|> id when it has one). Every attention but linear (dense, flash, sliding and sparse run as
  /// the flex pattern computing the same, with the document mask).
  bool pack_documents = false;
  int64_t eot_token_id = 50256;  ///< the end-of-text id of a .bin or a BPE's text (GPT-2's <|endoftext|>)

  OptimOptions optim;  ///< batch size, optimizer, schedule, evaluation, seed, threads, log
  /// Where the lines a run reports at its start go (pack_documents' summary; options named by
  /// field, in backticks); empty: stderr.
  std::function<void(const std::string&)> report;

  /// tg::Error naming the first bad option by its field, in backticks (`block_size`): tools/cli
  /// shows the flag there.
  void validate() const;
};

struct GPTTrainResult {
  int64_t steps = 0;
  double train_loss = 0;               ///< the last step's batch loss
  std::optional<double> val_loss;      ///< the last evaluation's
  double tokens_per_s = 0;             ///< median over the steps
  int64_t num_parameters = 0;
  bool interrupted = false;
  int world_size = 1;                  ///< ranks that trained (data-parallel under mpirun)
  double allreduce_wait_s = 0;         ///< data-parallel: mean time per step backward waited for all-reduces at its end
  std::string packing;                 ///< with pack_documents: what was logged at the start (documents, padding saved)
};

/// For `resume`: the run options stored in the checkpoint (model, n_layer, n_head, n_embd,
/// block_size, bias, attention, optimizer, batch_size, ...) replace those not `given` (by field name, e.g.
/// "n_layer"), so a resumed run need not repeat them. train_gpt itself then requires every one
/// of them to match the checkpoint and names each that differs.
void adopt_resumed_options(GPTTrainOptions& options, const std::function<bool(const std::string& option)>& given);

/// Trains as `options` says, writing checkpoints to options.out. With a process group initialised
/// (tg::distributed::init_process_group(), under mpirun) it trains data-parallel: rank r of N
/// trains on windows r·B .. (r+1)·B - 1 of each global batch of N·B windows (so N ranks see what
/// one process with batch_size N·B sees), gradients are averaged by DistributedDataParallel,
/// and only rank 0 writes checkpoints, the log and the progress bar. Every rank must call it with
/// the same options.
GPTTrainResult train_gpt(const GPTTrainOptions& options);

/// The Llama config of a new model of `options` (model "llama") for a vocabulary of `vocab_size`.
LlamaConfig new_llama_config(const GPTTrainOptions& options, int64_t vocab_size);

/// Mean cross-entropy of a checkpoint (either family) over consecutive non-overlapping windows of `block_size`
/// tokens (0 = the model's context length) covering `data` (.bin or text with the checkpoint's
/// tokenizer, or `tokenizer_path`'s when it has none: load_tokenizer), as `tapegrad gpt eval`
/// prints. Weights holding NaN or Inf are evaluated anyway (the loss is then nan, as PyTorch's
/// would be), but `warn` is told which tensor first.
double evaluate_gpt(const std::string& checkpoint, const std::string& data, int64_t block_size = 0,
                    int64_t batch_size = 8, const std::function<void(const std::string&)>& warn = {},
                    const std::string& tokenizer_path = "");

}  // namespace tg::models
