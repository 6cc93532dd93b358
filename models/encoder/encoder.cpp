#include "models/encoder/encoder.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "autograd/checkpoint.h"
#include "autograd/error.h"
#include "autograd/tape.h"
#include "models/training/memory_estimate.h"
#include "models/training/parameter_count.h"
#include "nn/file_io.h"
#include "nn/init.h"
#include "nn/safetensors.h"
#include "ops/flex_spec.h"
#include "ops/ops.h"

namespace tg::models {
namespace {

// The container torch.nn.TransformerEncoder is: the layers and, for pre-LN, the final norm.
struct EncoderStack : nn::Module {
  EncoderStack(std::shared_ptr<nn::Sequential> layers, std::shared_ptr<nn::LayerNorm> norm)
      : Module("TransformerEncoder") {
    register_module("layers", std::move(layers));
    if (norm) register_module("norm", std::move(norm));
  }
};

}  // namespace

namespace {

// The blocks' attention: nn::MultiheadAttention in PyTorch's layout, the kernel of
// config.attention, dropout on the weights in training (none for linear attention, which has
// no weights). Its parameters are drawn by EncoderClassifier::reset_parameters.
nn::MultiheadAttentionOptions attention_options(const EncoderConfig& c, DType dtype) {
  AttentionSpec kernel = c.attention_spec();
  return nn::MultiheadAttentionOptions(c.n_embd, c.n_head)
      .dropout(kernel.variant == AttentionVariant::linear ? 0.0 : c.dropout)
      .bias(c.bias)
      .variant(kernel.variant)
      .window(kernel.window)
      .sparse(kernel.sparse)
      .feature_map(kernel.feature_map)
      .flex(is_flex_pattern(c.attention) ? c.attention : "")
      .init_parameters(false)
      .dtype(dtype);
}

}  // namespace

EncoderLayer::EncoderLayer(const EncoderConfig& c, DType dtype)
    : Module("EncoderLayer"), norm_first(c.norm == "pre"), dropout_p(c.dropout) {
  self_attn = register_module("self_attn", std::make_shared<nn::MultiheadAttention>(attention_options(c, dtype)));
  linear1 = register_module(
      "linear1", std::make_shared<nn::Linear>(nn::LinearOptions(c.n_embd, c.ffn_width()).bias(c.bias).dtype(dtype)));
  linear2 = register_module(
      "linear2", std::make_shared<nn::Linear>(nn::LinearOptions(c.ffn_width(), c.n_embd).bias(c.bias).dtype(dtype)));
  auto ln = [&] {
    return std::make_shared<nn::LayerNorm>(
        nn::LayerNormOptions({c.n_embd}).eps(c.layer_norm_eps).bias(c.bias).dtype(dtype));
  };
  norm1 = register_module("norm1", ln());
  norm2 = register_module("norm2", ln());
}

Tensor EncoderLayer::forward(const Tensor& x, const nn::SelfAttentionOptions& call) {
  bool train = is_training();
  auto drop = [&](const Tensor& t) { return dropout(t, dropout_p, train); };
  auto ffn = [&](const Tensor& t) {  // [B, T, C] -> [B, T, ffn] -> [B, T, C]
    return linear2->forward(drop(gelu(linear1->forward(t))));
  };
  if (norm_first) {
    Tensor h = x + drop(self_attn->forward(norm1->forward(x), call));
    return h + drop(ffn(norm2->forward(h)));
  }
  Tensor h = norm1->forward(x + drop(self_attn->forward(x, call)));
  return norm2->forward(h + drop(ffn(h)));
}

Tensor sinusoidal_positions(int64_t n, int64_t C, DType dtype) {
  Tensor pe = empty({n, C}, DType::f64);
  double* p = pe.data<double>();
  for (int64_t pos = 0; pos < n; ++pos)
    for (int64_t i = 0; i < C; ++i) {
      double angle = double(pos) / std::pow(10000.0, double(i - i % 2) / double(C));
      p[pos * C + i] = i % 2 == 0 ? std::sin(angle) : std::cos(angle);
    }
  return pe.to(dtype);
}

EncoderClassifier::EncoderClassifier(const EncoderConfig& c, DType dtype_)
    : Module("EncoderClassifier"), config(c), dtype(dtype_) {
  c.validate();
  TG_CHECK(is_floating(dtype), "EncoderClassifier: dtype must be f32 or f64, got {}", dtype);
  embedding = register_module("embedding",
                              std::make_shared<nn::Embedding>(nn::EmbeddingOptions(c.vocab_size, c.n_embd).dtype(dtype)));
  if (c.pos == "learned")
    pos_embedding = register_module(
        "pos_embedding", std::make_shared<nn::Embedding>(nn::EmbeddingOptions(c.n_positions(), c.n_embd).dtype(dtype)));
  else
    sinusoidal_ = sinusoidal_positions(c.n_positions(), c.n_embd, dtype);
  if (c.pooling == "cls") cls_token = register_parameter("cls_token", zeros({c.n_embd}, dtype));
  // encoder.layers.N and encoder.norm, as torch.nn.TransformerEncoder names them.
  layers = std::make_shared<nn::Sequential>();
  for (int64_t i = 0; i < c.n_layer; ++i) layers->push_back(std::make_shared<EncoderLayer>(c, dtype));
  if (c.norm == "pre")
    final_norm = std::make_shared<nn::LayerNorm>(
        nn::LayerNormOptions({c.n_embd}).eps(c.layer_norm_eps).bias(c.bias).dtype(dtype));
  register_module("encoder", std::make_shared<EncoderStack>(layers, final_norm));
  classifier = register_module(
      "classifier", std::make_shared<nn::Linear>(nn::LinearOptions(c.n_embd, c.n_classes).bias(c.bias).dtype(dtype)));
  reset_parameters(default_generator());
}

void EncoderClassifier::reset_parameters(Generator& gen) {
  NoGradGuard no_grad;
  for (auto& [name, p] : named_parameters()) {
    bool is_norm = name.find("norm") != std::string::npos;
    bool is_bias = name.ends_with("bias");
    if (is_norm && !is_bias)
      nn::init::ones_(p);
    else if (is_bias)
      nn::init::zeros_(p);
    else
      nn::init::normal_(p, 0.0, 0.02, gen);
  }
}

Tensor EncoderClassifier::embed(const Tensor& ids) {
  TG_CHECK(ids.defined() && ids.dtype() == DType::i64 && ids.dim() == 2,
           "EncoderClassifier: ids must be i64 [B, T], got {} {}", ids.defined() ? ids.dtype() : DType::i64,
           ids.defined() ? shape_str(ids.shape()) : "undefined");
  const int64_t* p = ids.data<int64_t>();
  for (int64_t i = 0; i < ids.numel(); ++i)
    TG_CHECK(p[i] >= 0 && p[i] < config.vocab_size, "EncoderClassifier: token id {} is outside [0, vocab_size={})",
             p[i], config.vocab_size);
  return embedding->forward(ids);  // [B, T, C]
}

Tensor EncoderClassifier::forward(const Tensor& ids, const std::vector<int64_t>& lengths) {
  return forward_embeddings(embed(ids), lengths);
}

Tensor EncoderClassifier::forward_embeddings(const Tensor& tok, const std::vector<int64_t>& lengths,
                                             std::vector<Tensor>* weights) {
  const int64_t C = config.n_embd;
  TG_CHECK(tok.dim() == 3 && tok.size(2) == C && tok.dtype() == dtype,
           "EncoderClassifier: token embeddings must be {} [B, T, {}], got {} {}", dtype, C, tok.dtype(),
           shape_str(tok.shape()));
  const int64_t B = tok.size(0), T = tok.size(1);
  TG_CHECK(B >= 1 && T >= 1, "EncoderClassifier: empty batch {}", shape_str(tok.shape()));
  TG_CHECK(T <= config.max_len, "EncoderClassifier: sequences of {} tokens are longer than max_len={}", T,
           config.max_len);
  TG_CHECK(lengths.empty() || int64_t(lengths.size()) == B, "EncoderClassifier: {} lengths for a batch of {}",
           lengths.size(), B);
  for (size_t b = 0; b < lengths.size(); ++b)
    TG_CHECK(lengths[b] >= 1 && lengths[b] <= T, "EncoderClassifier: lengths[{}] = {} is outside [1, T={}]", b,
             lengths[b], T);

  bool cls = config.pooling == "cls";
  const int64_t Tp = T + (cls ? 1 : 0);  // T' with the CLS token in front
  Tensor x = tok;
  if (cls) x = cat({expand(reshape(cls_token, {1, 1, C}), {B, 1, C}), x}, 1);  // [B, T', C]
  Tensor table = pos_embedding ? pos_embedding->weight : sinusoidal_;          // [n_positions, C]
  x = x + narrow(table, 0, 0, Tp);                                              // [B, T', C]
  x = dropout(x, config.dropout, is_training());

  std::vector<int64_t> key_lengths(size_t(B), Tp);  // real tokens (and CLS) per sequence
  for (size_t b = 0; b < lengths.size(); ++b) key_lengths[b] = lengths[b] + (cls ? 1 : 0);
  bool padded = std::any_of(key_lengths.begin(), key_lengths.end(), [&](int64_t n) { return n < Tp; });
  nn::SelfAttentionOptions call;
  if (padded) call.key_lengths = key_lengths;  // no mask at all when nothing is padding

  if (weights) weights->clear();
  for (size_t i = 0; i < layers->size(); ++i) {
    auto* layer = static_cast<EncoderLayer*>((*layers)[i].get());
    Tensor w;
    if (activation_checkpointing_ && is_training() && !weights) {
      x = checkpoint([layer, call](const std::vector<Tensor>& in) { return layer->forward(in[0], call); }, {x});
    } else {
      nn::SelfAttentionOptions with_weights = call;
      with_weights.weights = weights ? &w : nullptr;
      x = layer->forward(x, with_weights);
    }
    if (weights) weights->push_back(w);
  }
  if (final_norm) x = final_norm->forward(x);

  Tensor pooled;  // [B, C]
  if (cls) {
    pooled = reshape(narrow(x, 1, 0, 1), {B, C});
  } else if (!padded) {
    pooled = mean(x, {1});
  } else {
    std::vector<double> mask(static_cast<size_t>(B * Tp), 0.0), counts(static_cast<size_t>(B), 0.0);
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t t = 0; t < key_lengths[size_t(b)]; ++t) mask[size_t(b * Tp + t)] = 1.0;
      counts[size_t(b)] = double(key_lengths[size_t(b)]);
    }
    // Sum over the real tokens [B, C], divided by their count [B, 1].
    pooled = sum(x * tensor(mask, {B, Tp, 1}, dtype), {1}) / tensor(counts, {B, 1}, dtype);
  }
  return classifier->forward(pooled);  // [B, n_classes]
}

std::string EncoderClassifier::extra_repr() const {
  return fmt::format("n_layer={}, n_head={}, n_embd={}, norm={}, pos={}, pooling={}, attention={}", config.n_layer,
                     config.n_head, config.n_embd, config.norm, config.pos, config.pooling, config.attention);
}

const OwnNames& encoder_checkpoint_files() {
  static const OwnNames names{"config.json", "model.safetensors", "vocab.json"};
  return names;
}

void save_encoder(const std::string& dir, const EncoderClassifier& model, const data::Vocab& vocab) {
  TG_CHECK(vocab.size() == model.config.vocab_size, "save_encoder: the vocabulary has {} tokens, the model {}",
           vocab.size(), model.config.vocab_size);
  // All files into a new directory swapped in at once (see write_directory_atomically).
  try {
    write_directory_atomically(dir, encoder_checkpoint_files(), [&](const std::string& tmp) {
      std::filesystem::path d(tmp);
      nn::save_safetensors((d / "model.safetensors").string(), model.state_dict(), {{"format", "pt"}});
      vocab.save((d / "vocab.json").string());
      model.config.save((d / "config.json").string());
    });
  } catch (const Error& e) {
    fail("save_encoder: {}: {}", dir, e.what());
  }
}

EncoderCheckpoint load_encoder(const std::string& dir, DType dtype) {
  std::filesystem::path d(dir);
  std::error_code ec;
  TG_CHECK(std::filesystem::is_directory(d, ec), "load_encoder: {} is not a checkpoint directory", dir);
  for (const char* name : {"config.json", "model.safetensors", "vocab.json"})
    TG_CHECK(std::filesystem::exists(d / name, ec), "load_encoder: {} is missing", (d / name).string());
  EncoderCheckpoint ck;
  ck.config = EncoderConfig::load((d / "config.json").string());
  // What config.json claims is checked against the weights file and memory before it is built.
  check_checkpoint_fits(encoder_parameter_count(ck.config), int64_t(element_size(dtype)), (d / "config.json").string(),
                        (d / "model.safetensors").string());
  ck.vocab = data::Vocab::load((d / "vocab.json").string());
  TG_CHECK(ck.vocab.size() == ck.config.vocab_size, "load_encoder: {} has {} tokens but config.json says vocab_size {}",
           (d / "vocab.json").string(), ck.vocab.size(), ck.config.vocab_size);
  ck.model = std::make_shared<EncoderClassifier>(ck.config, dtype);
  std::string weights = (d / "model.safetensors").string();
  try {
    ck.model->load_state_dict(nn::load_safetensors(weights));
  } catch (const Error& e) {
    fail("load_encoder: {}: {}", weights, e.what());
  }
  ck.model->eval();
  return ck;
}

ClassifierMetrics evaluate_classifier(EncoderClassifier& model, const data::ClassificationDataset& dataset,
                                      int64_t batch_size) {
  TG_CHECK(dataset.size() > 0, "evaluate_classifier: the dataset is empty");
  bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  ClassifierMetrics m;
  double loss_sum = 0;
  int64_t correct = 0;
  for (const auto& idx : data::sequential_batches(dataset.size(), batch_size)) {
    data::ClassificationBatch batch = dataset.batch(idx);
    Tensor logits = model.forward(batch.ids, batch.lengths);  // [B, n_classes]
    loss_sum += cross_entropy(logits, batch.labels, -100, "sum").item();
    int64_t B = logits.size(0), K = logits.size(1);
    std::vector<double> v = logits.to_vector();
    const int64_t* labels = batch.labels.data<int64_t>();
    for (int64_t b = 0; b < B; ++b) {
      int64_t best = std::max_element(v.begin() + b * K, v.begin() + (b + 1) * K) - (v.begin() + b * K);
      correct += best == labels[b];
    }
  }
  model.train(was_training);
  m.examples = dataset.size();
  m.loss = loss_sum / double(m.examples);
  m.accuracy = double(correct) / double(m.examples);
  return m;
}

}  // namespace tg::models
