#include "models/training/encoder_train.h"

#include <fmt/format.h>

#include <numeric>

#include "autograd/autograd.h"
#include "models/data/classification_data.h"
#include "models/data/listops.h"
#include "models/encoder/encoder.h"
#include "models/training/memory_estimate.h"
#include "models/training/train_loop.h"
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
// named with its line; `bound` says where n_classes came from ("`n_classes` 5").
void check_labels(const std::vector<data::ListOpsExample>& examples, const std::string& path, int64_t n_classes,
                  const std::string& bound) {
  for (const data::ListOpsExample& e : examples)
    TG_CHECK(e.target < n_classes, "{}:{}: the label {} is beyond {} (labels are 0..{})", path, e.line, e.target,
             bound, n_classes - 1);
}

// The encoder's training as the loop drives it: shuffled (or length-bucketed) epochs of padded
// batches, the validation subset's loss and accuracy, the weights as the checkpoint.
class EncoderTraining final : public TrainingTask {
 public:
  EncoderTraining(const EncoderTrainOptions& o, EncoderClassifier& model, const data::Vocab& vocab,
                  const data::ClassificationDataset& train, const data::ClassificationDataset& val)
      : o_(o), model_(model), vocab_(vocab), train_(train), val_(evaluated_subset(val, o.optim)),
        sampler_(train.size(), o.optim.batch_size, /*shuffle=*/true, o.optim.seed + 1) {
    if (o.bucket_by_length) {
      std::vector<int64_t> lengths(size_t(train.size()));
      for (int64_t i = 0; i < train.size(); ++i) lengths[size_t(i)] = static_cast<int64_t>(train[i].ids.size());
      sampler_.bucket_by_length(std::move(lengths));
    }
  }

  Tensor loss_on_next_batch() override {
    data::ClassificationBatch b = train_.batch(sampler_.next());
    batch_tokens_ = std::accumulate(b.lengths.begin(), b.lengths.end(), int64_t(0));
    real_tokens_ += double(batch_tokens_);
    padded_tokens_ += double(b.ids.numel());
    return cross_entropy(model_.forward(b.ids, b.lengths), b.labels);
  }
  int64_t tokens_in_last_batch() const override { return batch_tokens_; }
  double evaluate() override {
    last_ = evaluate_classifier(model_, val_, o_.optim.batch_size);
    return last_.loss;
  }
  std::string eval_summary() const override { return fmt::format("val accuracy {:.4f}", last_.accuracy); }
  void save_checkpoint(int64_t) override { save_encoder(o_.out, model_, vocab_); }
  int64_t items_per_step() const override { return o_.optim.batch_size; }
  const char* items_name() const override { return "ex"; }

  /// The last evaluation's loss and accuracy.
  const ClassifierMetrics& last_evaluation() const { return last_; }
  /// The share of the tokens drawn so far that were padding.
  double padding_share() const { return padded_tokens_ > 0 ? 1.0 - real_tokens_ / padded_tokens_ : 0.0; }

 private:
  // The validation subset an evaluation covers: the first eval_iters batches, or everything.
  static data::ClassificationDataset evaluated_subset(const data::ClassificationDataset& val, const OptimOptions& o) {
    if (o.eval_iters == 0 || o.eval_iters * o.batch_size >= val.size()) return val;
    std::vector<data::ClassificationExample> head;
    for (int64_t i = 0; i < o.eval_iters * o.batch_size; ++i) head.push_back(val[i]);
    return data::ClassificationDataset(head, val.pad_id());
  }

  const EncoderTrainOptions& o_;
  EncoderClassifier& model_;
  const data::Vocab& vocab_;
  const data::ClassificationDataset& train_;
  data::ClassificationDataset val_;
  data::EpochSampler sampler_;
  ClassifierMetrics last_;
  int64_t batch_tokens_ = 0;                   // real (non-padding) tokens of the last batch
  double real_tokens_ = 0, padded_tokens_ = 0;  // over the run
};

}  // namespace

void EncoderTrainOptions::validate() const {
  TG_CHECK(!data.empty(), "`data`: required");
  TG_CHECK(!out.empty(), "`out`: required");
  TG_CHECK(config.n_classes >= 2, "`n_classes` must be at least 2, got {}", config.n_classes);
  TG_CHECK(config.max_len > 0, "`max_len` must be positive, got {}", config.max_len);
  TG_CHECK(config.n_layer > 0, "`n_layer` must be positive, got {}", config.n_layer);
  TG_CHECK(config.n_head > 0, "`n_head` must be positive, got {}", config.n_head);
  TG_CHECK(config.ffn_dim >= 0, "`ffn_dim` must be positive (or 0 for 4·`n_embd`), got {}", config.ffn_dim);
  TG_CHECK(config.n_embd > 0 && config.n_embd % config.n_head == 0,
           "`n_embd` ({}) must be positive and divisible by `n_head` ({})", config.n_embd, config.n_head);
  TG_CHECK(config.dropout >= 0 && config.dropout < 1, "`dropout` must be in [0, 1), got {}", config.dropout);
  TG_CHECK(config.pooling == "mean" || config.pooling == "cls", "`pooling` must be mean or cls, got '{}'",
           config.pooling);
  TG_CHECK(config.norm == "pre" || config.norm == "post", "`norm` must be pre or post, got '{}'", config.norm);
  TG_CHECK(config.pos == "learned" || config.pos == "sinusoidal", "`pos` must be learned or sinusoidal, got '{}'",
           config.pos);
  optim.validate();
  try {
    if (is_flex_pattern(config.attention))
      parse_model_flex_pattern(config.attention);
    else
      parse_attention_variant(config.attention);
  } catch (const Error& e) {
    fail("`attention`: {}", e.what());
  }
}

EncoderTrainResult train_encoder(const EncoderTrainOptions& o) {
  o.validate();
  TG_CHECK(o.optim.log.empty() || !same_or_inside(o.optim.log, o.out),
           "`log`: {} is inside `out` {}, which holds the checkpoint's files only; write the log elsewhere", o.optim.log,
           o.out);
  // Before any training step, not at the first checkpoint.
  check_writable_dir(o.out, "`out`", encoder_checkpoint_files());
  if (o.optim.threads > 0) set_num_threads(o.optim.threads);
  DetectAnomalyGuard anomaly(o.optim.detect_anomaly || is_anomaly_enabled());
  data::Vocab vocab = data::listops_vocab();
  data::ClassificationDataset train, val;
  const std::string bound = fmt::format("`n_classes` {}", o.config.n_classes);
  std::vector<data::ListOpsExample> examples = data::read_listops_tsv(o.data);
  check_labels(examples, o.data, o.config.n_classes, bound);
  if (o.val_data.empty()) {
    std::tie(train, val) = split_tail(examples, vocab, o.config.max_len);
  } else {
    std::vector<data::ListOpsExample> val_examples = data::read_listops_tsv(o.val_data);
    check_labels(val_examples, o.val_data, o.config.n_classes, bound);
    train = data::encode_listops(examples, vocab, o.config.max_len);
    val = data::encode_listops(val_examples, vocab, o.config.max_len);
  }
  TG_CHECK(train.size() > 0 && val.size() > 0, "`data`: {} gives {} training and {} validation examples", o.data,
           train.size(), val.size());
  TG_CHECK(train.num_classes() <= o.config.n_classes, "`n_classes` {} is below the data's labels (up to {})",
           o.config.n_classes, train.num_classes() - 1);

  EncoderConfig cfg = o.config;
  cfg.vocab_size = vocab.size();
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
    check_writable_dir(o.out, "`out`", encoder_checkpoint_files(), param_bytes + (64 << 10));
  }

  EncoderTraining task(o, model, vocab, train, val);
  TrainLoopResult r = run_train_loop(model, *opt, o.optim, task);

  EncoderTrainResult result;
  result.steps = r.steps_done;
  result.train_loss = r.last_loss;
  result.val_loss = r.last_val_loss;
  if (r.last_val_loss) result.val_accuracy = task.last_evaluation().accuracy;
  result.examples_per_s = r.items_per_s;
  result.majority_accuracy = val.majority_accuracy();
  result.padding_share = task.padding_share();
  result.num_parameters = model.num_parameters();
  result.interrupted = r.interrupted;
  return result;
}

double evaluate_encoder(const std::string& checkpoint, const std::string& data, int64_t batch_size,
                        const std::function<void(const std::string&)>& warn) {
  TG_CHECK(batch_size > 0, "`batch_size` must be positive, got {}", batch_size);
  EncoderCheckpoint ck = load_encoder(checkpoint);
  check_labels(data::read_listops_tsv(data), data, ck.config.n_classes,
               fmt::format("the checkpoint's n_classes {} ({}/config.json)", ck.config.n_classes, checkpoint));
  if (std::optional<std::string> bad = nn::first_non_finite_parameter(*ck.model); bad && warn)
    warn(fmt::format("{}/model.safetensors: {}; the accuracy is meaningless", checkpoint, *bad));
  data::ClassificationDataset ds = data::load_listops(data, ck.vocab, ck.config.max_len);
  TG_CHECK(ds.size() > 0, "`data`: {} has no examples", data);
  return evaluate_classifier(*ck.model, ds, batch_size).accuracy;
}

}  // namespace tg::models
