// `tapegrad encoder train | eval`: the encoder classifier on ListOps-style TSV files.
#include <fmt/format.h>

#include "models/training/encoder_train.h"
#include "nn/file_checks.h"
#include "tools/cli/commands.h"
#include "tools/cli/train_flags.h"

namespace tg::cli {
namespace {

void add_train(CLI::App& encoder) {
  auto o = std::make_shared<models::EncoderTrainOptions>();
  CLI::App* c = encoder.add_subcommand("train", "Train the encoder classifier on a Source\\tTarget TSV file");
  c->add_option("--data", o->data, "Training examples (train.tsv)")->required();
  c->add_option("--val-data", o->val_data, "Validation examples (default: the last 10% of --data)");
  c->add_option("--out", o->out, "Checkpoint directory")->required();
  c->add_option("--n-classes", o->config.n_classes, "Classes")->capture_default_str();
  c->add_option("--max-len", o->config.max_len, "Longest input in tokens (longer ones are cut, as LRA does)")->capture_default_str();
  c->add_option("--n-layer", o->config.n_layer, "Encoder blocks L")->capture_default_str();
  c->add_option("--n-head", o->config.n_head, "Heads H")->capture_default_str();
  c->add_option("--n-embd", o->config.n_embd, "Width C")->capture_default_str();
  c->add_option("--ffn-dim", o->config.ffn_dim, "FFN hidden width (0 = 4·C)")->capture_default_str();
  c->add_option("--dropout", o->config.dropout, "Dropout")->capture_default_str();
  c->add_option("--bias", o->config.bias, "Biases in linear layers and LayerNorms (true/false)")->capture_default_str();
  c->add_option("--attention", o->config.attention,
                "dense, flash, sliding:W, sparse, linear, or flex:PATTERN (flex:causal, flex:sliding:W, "
                "flex:document:N, flex:prefix:N, flex:alibi, flex:softcap:C, ...)")
      ->capture_default_str();
  c->add_option("--pooling", o->config.pooling, "mean or cls")->capture_default_str();
  c->add_option("--norm", o->config.norm, "post (as the tutorials) or pre")->capture_default_str();
  c->add_option("--pos", o->config.pos, "learned or sinusoidal positions")->capture_default_str();
  c->add_flag("--bucket-by-length", o->bucket_by_length,
              "Batches of examples of similar lengths (pools of 50 batches sorted by length, batches shuffled): "
              "less padding");
  add_optim_flags(c, o->optim);
  c->callback([o] {
    // Before anything is loaded or trained: the files named on the command line are usable.
    check_input_file(o->data, "--data");
    if (!o->val_data.empty()) check_input_file(o->val_data, "--val-data");
    if (!o->optim.log.empty()) check_output_file(o->optim.log, "--log");
    check_log_apart(o->optim.log, {{"--data", o->data}, {"--val-data", o->val_data}});
    models::EncoderTrainResult r = models::train_encoder(*o);
    fmt::print("trained {} steps ({} parameters): train loss {:.4f}, val accuracy {} (majority class {:.4f}), "
               "{:.1f} examples/s (median), padding {:.1f}% of the batches' tokens{}\n",
               r.steps, r.num_parameters, r.train_loss,
               r.val_accuracy ? fmt::format("{:.4f}", *r.val_accuracy) : "-", r.majority_accuracy, r.examples_per_s,
               100 * r.padding_share, r.interrupted ? " (interrupted)" : "");
    fmt::print("checkpoint: {}\n", o->out);
    if (r.interrupted) throw CLI::RuntimeError(130);
  });
}

void add_eval(CLI::App& encoder) {
  struct Args {
    std::string checkpoint, data;
    int64_t batch_size = 64;
  };
  auto a = std::make_shared<Args>();
  CLI::App* c = encoder.add_subcommand("eval", "Accuracy of a checkpoint on a TSV file");
  c->add_option("--checkpoint", a->checkpoint, "Checkpoint directory")->required();
  c->add_option("--data", a->data, "Examples (test.tsv)")->required();
  c->add_option("--batch-size", a->batch_size, "Examples per forward pass")->capture_default_str();
  c->callback([a] {
    check_input_dir(a->checkpoint, "--checkpoint");
    check_input_file(a->data, "--data");
    auto warn = [](const std::string& why) { fmt::print(stderr, "tapegrad encoder eval: warning: {}\n", why); };
    fmt::print("accuracy {:.6f}\n", models::evaluate_encoder(a->checkpoint, a->data, a->batch_size, warn));
  });
}

}  // namespace

void add_encoder_command(CLI::App& app) {
  CLI::App* encoder = app.add_subcommand("encoder", "Encoder classifiers: train, eval");
  encoder->require_subcommand(1);
  add_train(*encoder);
  add_eval(*encoder);
}

}  // namespace tg::cli
