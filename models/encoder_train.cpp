#include "models/encoder_train.h"

#include <fmt/format.h>

#include <numeric>

#include "autograd/autograd.h"
#include "models/classification_data.h"
#include "models/encoder.h"
#include "models/listops.h"
#include "models/memory_estimate.h"
#include "models/train_loop.h"
#include "nn/file_checks.h"
#include "nn/file_io.h"
#include "nn/finite_check.h"
#include "ops/flex_spec.h"
#include "ops/loss.h"

namespace tg::models {
namespace {

// The held-out tail of a dataset (nanoGPT-style split when no validation file is given).
std::pair<data::ClassificationDataset, data::ClassificationDataset> split_tail(const std::vector<data::ListOpsExample>& all,
                                                                               const data::Vocab& vocab, int64_t max_len) {
  size_t n = all.size() * 9 / 10;
  std::vector<data::ListOpsExample> train(all.begin(), all.begin() + int64_t(n)), val(all.begin() + int64_t(n), all.end());
  return {data::encode_listops(train, vocab, max_len), data::encode_listops(val, vocab, max_len)};
}

// The first label of `examples` (read from `path`) that a classifier of `n_classes` cannot give,
// named with its line; `bound` says where n_classes came from ("--n-classes 5").
void check_labels(const std::vector<data::ListOpsExample>& examples, const std::string& path, int64_t n_classes,
                  const std::string& bound) {
  for (const data::ListOpsExample& e : examples)
    TG_CHECK(e.target < n_classes, "{}:{}: the label {} is beyond {} (labels are 0..{})", path, e.line, e.target,
             bound, n_classes - 1);
}

}  // namespace

void EncoderTrainOptions::validate() const {
  TG_CHECK(!data.empty(), "--data: required");
  TG_CHECK(!out.empty(), "--out: required");
  TG_CHECK(n_classes >= 2, "--n-classes must be at least 2, got {}", n_classes);
  TG_CHECK(max_len > 0, "--max-len must be positive, got {}", max_len);
  TG_CHECK(n_layer > 0, "--n-layer must be positive, got {}", n_layer);
  TG_CHECK(n_head > 0, "--n-head must be positive, got {}", n_head);
  TG_CHECK(ffn_dim >= 0, "--ffn-dim must be positive (or 0 for 4·--n-embd), got {}", ffn_dim);
  TG_CHECK(n_embd > 0 && n_embd % n_head == 0, "--n-embd ({}) must be positive and divisible by --n-head ({})", n_embd,
           n_head);
  TG_CHECK(dropout >= 0 && dropout < 1, "--dropout must be in [0, 1), got {}", dropout);
  TG_CHECK(pooling == "mean" || pooling == "cls", "--pooling must be mean or cls, got '{}'", pooling);
  TG_CHECK(norm == "pre" || norm == "post", "--norm must be pre or post, got '{}'", norm);
  TG_CHECK(pos == "learned" || pos == "sinusoidal", "--pos must be learned or sinusoidal, got '{}'", pos);
  optim.validate();
  try {
    if (is_flex_pattern(attention))
      parse_model_flex_pattern(attention);
    else
      parse_attention_variant(attention);
  } catch (const Error& e) {
    fail("--attention: {}", e.what());
  }
}

EncoderTrainResult train_encoder(const EncoderTrainOptions& o) {
  o.validate();
  TG_CHECK(o.optim.log.empty() || !same_or_inside(o.optim.log, o.out),
           "--log: {} is inside --out {}, which holds the checkpoint's files only; write the log elsewhere", o.optim.log,
           o.out);
  // Before any training step, not at the first checkpoint.
  check_writable_dir(o.out, "--out", encoder_checkpoint_files());
  if (o.optim.threads > 0) set_num_threads(o.optim.threads);
  DetectAnomalyGuard anomaly(o.optim.detect_anomaly || is_anomaly_enabled());
  data::Vocab vocab = data::listops_vocab();
  data::ClassificationDataset train, val;
  const std::string bound = fmt::format("--n-classes {}", o.n_classes);
  std::vector<data::ListOpsExample> examples = data::read_listops_tsv(o.data);
  check_labels(examples, o.data, o.n_classes, bound);
  if (o.val_data.empty()) {
    std::tie(train, val) = split_tail(examples, vocab, o.max_len);
  } else {
    std::vector<data::ListOpsExample> val_examples = data::read_listops_tsv(o.val_data);
    check_labels(val_examples, o.val_data, o.n_classes, bound);
    train = data::encode_listops(examples, vocab, o.max_len);
    val = data::encode_listops(val_examples, vocab, o.max_len);
  }
  TG_CHECK(train.size() > 0 && val.size() > 0, "--data: {} gives {} training and {} validation examples", o.data,
           train.size(), val.size());
  TG_CHECK(train.num_classes() <= o.n_classes, "--n-classes {} is below the data's labels (up to {})", o.n_classes,
           train.num_classes() - 1);

  EncoderConfig cfg;
  cfg.vocab_size = vocab.size();
  cfg.n_classes = o.n_classes, cfg.max_len = o.max_len;
  cfg.n_layer = o.n_layer, cfg.n_head = o.n_head, cfg.n_embd = o.n_embd, cfg.ffn_dim = o.ffn_dim;
  cfg.dropout = o.dropout, cfg.bias = o.bias;
  cfg.attention = o.attention, cfg.pooling = o.pooling, cfg.norm = o.norm, cfg.pos = o.pos;
  manual_seed(o.optim.seed);  // dropout draws from the default generator
  check_encoder_training_fits(o, cfg, train.max_length(), train.size());  // refused before it is built
  EncoderClassifier model(cfg);
  Generator init(o.optim.seed);
  model.reset_parameters(init);
  model.set_activation_checkpointing(o.optim.activation_checkpointing);

  std::unique_ptr<optim::Optimizer> opt = o.optim.make_optimizer(model);
  {
    uint64_t param_bytes = 0;
    for (const Tensor& p : model.parameters()) param_bytes += p.nbytes();
    // The checkpoint holds the weights only.
    check_writable_dir(o.out, "--out", encoder_checkpoint_files(), param_bytes + (64 << 10));
  }

  data::EpochSampler sampler(train.size(), o.optim.batch_size, /*shuffle=*/true, o.optim.seed + 1);
  if (o.bucket_by_length) {
    std::vector<int64_t> lengths(size_t(train.size()));
    for (int64_t i = 0; i < train.size(); ++i) lengths[size_t(i)] = static_cast<int64_t>(train[i].ids.size());
    sampler.bucket_by_length(std::move(lengths));
  }
  // The validation subset an evaluation covers: the first eval_iters batches, or everything.
  data::ClassificationDataset val_eval = val;
  if (o.optim.eval_iters > 0 && o.optim.eval_iters * o.optim.batch_size < val.size()) {
    std::vector<data::ClassificationExample> head;
    for (int64_t i = 0; i < o.optim.eval_iters * o.optim.batch_size; ++i) head.push_back(val[i]);
    val_eval = data::ClassificationDataset(head, val.pad_id());
  }
  ClassifierMetrics last;
  TrainLoopHooks hooks;
  hooks.items_per_step = o.optim.batch_size;
  hooks.items_name = "ex";
  int64_t batch_tokens = 0;  // real (non-padding) tokens of the last batch
  double real_tokens = 0, padded_tokens = 0;  // over the run: the padding's share
  hooks.loss_on_next_batch = [&] {
    data::ClassificationBatch b = train.batch(sampler.next());
    batch_tokens = std::accumulate(b.lengths.begin(), b.lengths.end(), int64_t(0));
    real_tokens += double(batch_tokens);
    padded_tokens += double(b.ids.numel());
    return cross_entropy(model.forward(b.ids, b.lengths), b.labels);
  };
  hooks.tokens_in_last_batch = [&] { return batch_tokens; };
  hooks.evaluate = [&] {
    last = evaluate_classifier(model, val_eval, o.optim.batch_size);
    return last.loss;
  };
  hooks.eval_summary = [&] { return fmt::format("val accuracy {:.4f}", last.accuracy); };
  hooks.save_checkpoint = [&](int64_t) { save_encoder(o.out, model, vocab); };

  TrainLoopOptions lo;
  lo.max_iters = o.optim.max_iters;
  lo.eval_interval = o.optim.eval_interval;
  lo.grad_clip = o.optim.grad_clip;
  lo.schedule = o.optim.schedule();
  lo.log_path = o.optim.log;
  lo.progress = o.optim.progress;
  TrainLoopResult r = run_train_loop(model, *opt, lo, hooks);

  EncoderTrainResult result;
  result.steps = r.steps_done;
  result.train_loss = r.last_loss;
  result.val_loss = r.last_val_loss;
  if (r.last_val_loss) result.val_accuracy = last.accuracy;
  result.examples_per_s = r.items_per_s;
  result.majority_accuracy = val.majority_accuracy();
  result.padding_share = padded_tokens > 0 ? 1.0 - real_tokens / padded_tokens : 0.0;
  result.num_parameters = model.num_parameters();
  result.interrupted = r.interrupted;
  return result;
}

double evaluate_encoder(const std::string& checkpoint, const std::string& data, int64_t batch_size,
                        const std::function<void(const std::string&)>& warn) {
  TG_CHECK(batch_size > 0, "--batch-size must be positive, got {}", batch_size);
  EncoderCheckpoint ck = load_encoder(checkpoint);
  check_labels(data::read_listops_tsv(data), data, ck.config.n_classes,
               fmt::format("the checkpoint's n_classes {} ({}/config.json)", ck.config.n_classes, checkpoint));
  if (std::optional<std::string> bad = nn::first_non_finite_parameter(*ck.model); bad && warn)
    warn(fmt::format("{}/model.safetensors: {}; the accuracy is meaningless", checkpoint, *bad));
  data::ClassificationDataset ds = data::load_listops(data, ck.vocab, ck.config.max_len);
  TG_CHECK(ds.size() > 0, "--data: {} has no examples", data);
  return evaluate_classifier(*ck.model, ds, batch_size).accuracy;
}

}  // namespace tg::models
