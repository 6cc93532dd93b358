#pragma once
// The encoder classifier (the tutorials' SimpleTransformer): token embedding + positions
// (learned or sinusoidal), L encoder blocks with bidirectional self-attention that masks the
// padding keys of each sequence, pooling (mean over the real tokens, or a CLS token put first),
// and a Linear head to n_classes. Blocks are post-LN as in the tutorials and
// torch.nn.TransformerEncoderLayer's default (x = LN(x + attn(x)); x = LN(x + FFN(x))), or pre-LN
// (x = x + attn(LN(x)); x = x + FFN(LN(x)); a final LayerNorm after the last block).
// Parameter names follow torch.nn.TransformerEncoder's: encoder.layers.N.self_attn.in_proj_weight,
// encoder.layers.N.self_attn.out_proj.*, encoder.layers.N.linear1.*, linear2.*, norm1.*, norm2.*.
#include <memory>
#include <string>
#include <vector>

#include "models/data/classification_data.h"
#include "models/encoder/encoder_config.h"
#include "models/tokenizers/vocab.h"
#include "nn/embedding.h"
#include "nn/file_io.h"
#include "nn/layer_norm.h"
#include "nn/linear.h"
#include "nn/multihead_attention.h"
#include "nn/sequential.h"

namespace tg::models {

/// One encoder block: self-attention and a Linear-GELU-Linear FFN, each with dropout and a
/// residual connection, LayerNorm after (post) or before (pre).
class EncoderLayer : public nn::Module {
 public:
  EncoderLayer(const EncoderConfig& config, DType dtype);
  /// x [B, T, C] -> [B, T, C]. call: the padding keys (key_lengths) and, optionally, where to
  /// return the attention weights [B, H, T, T] (dense only).
  Tensor forward(const Tensor& x, const nn::SelfAttentionOptions& call);

  /// Bidirectional, PyTorch's names and layout (self_attn.in_proj_weight [3C, C], ...).
  std::shared_ptr<nn::MultiheadAttention> self_attn;
  std::shared_ptr<nn::Linear> linear1, linear2;  ///< C -> ffn_width -> C
  std::shared_ptr<nn::LayerNorm> norm1, norm2;
  bool norm_first;
  double dropout_p;
};

class EncoderClassifier : public nn::Module {
 public:
  /// Checks the config; parameters drawn from default_generator() (see reset_parameters).
  explicit EncoderClassifier(const EncoderConfig& config, DType dtype = DType::f32);

  /// ids [B, T] i64 (T <= max_len), lengths: B real lengths in [1, T] (positions at and after a
  /// length are padding: masked as keys, left out of mean pooling); empty = all T.
  /// -> logits [B, n_classes].
  Tensor forward(const Tensor& ids, const std::vector<int64_t>& lengths);
  /// Every sequence of full length T.
  Tensor forward(const Tensor& ids) override { return forward(ids, {}); }
  /// The same from token embeddings tok [B, T, C] (what embed() returns): positions, CLS,
  /// blocks, pooling, head. With `weights`, each layer's attention weights [B, H, T', T'] (dense
  /// only; T' = T + 1 with a CLS token).
  Tensor forward_embeddings(const Tensor& tok, const std::vector<int64_t>& lengths,
                            std::vector<Tensor>* weights = nullptr);
  /// Token embeddings of ids [B, T] -> [B, T, C].
  Tensor embed(const Tensor& ids);
  /// Activation checkpointing of every encoder layer in training (as GPT's); off by default,
  /// never used when returning attention weights.
  void set_activation_checkpointing(bool on) { activation_checkpointing_ = on; }
  bool activation_checkpointing() const { return activation_checkpointing_; }

  /// Draws every parameter from gen: Linear weights and embeddings N(0, 0.02) (as BERT and
  /// GPT-2), biases 0, LayerNorm weight 1 and bias 0, the CLS token N(0, 0.02).
  void reset_parameters(Generator& gen);

  const EncoderConfig config;
  DType dtype;
  std::shared_ptr<nn::Embedding> embedding;      ///< [V, C]
  std::shared_ptr<nn::Embedding> pos_embedding;  ///< [n_positions, C]; learned positions only
  Tensor cls_token;                              ///< [C]; cls pooling only
  std::shared_ptr<nn::Sequential> layers;        ///< L EncoderLayers (encoder.layers.N)
  std::shared_ptr<nn::LayerNorm> final_norm;     ///< pre-LN only (encoder.norm)
  std::shared_ptr<nn::Linear> classifier;        ///< C -> n_classes

 protected:
  std::string extra_repr() const override;

 private:
  Tensor sinusoidal_;  // [n_positions, C], sinusoidal positions only (fixed, not saved)
  bool activation_checkpointing_ = false;
};

/// Sinusoidal position table [n, C] (Vaswani et al. 2017): sin(p / 10000^(2i/C)) in column 2i,
/// cos in column 2i + 1.
Tensor sinusoidal_positions(int64_t n, int64_t C, DType dtype = DType::f32);

// --- checkpoints --------------------------------------------------------------------------------
/// A checkpoint directory holds config.json, model.safetensors (names as the model's
/// state_dict) and vocab.json: encoder_checkpoint_files(). They are written into a new directory
/// swapped in as a whole: tg::Error, before anything is written, when `dir` holds anything else
/// (e.g. a GPT checkpoint's tokenizer.json; see write_directory_atomically).
void save_encoder(const std::string& dir, const EncoderClassifier& model, const data::Vocab& vocab);
/// The names an encoder checkpoint directory may hold.
const OwnNames& encoder_checkpoint_files();

struct EncoderCheckpoint {
  EncoderConfig config;
  std::shared_ptr<EncoderClassifier> model;
  data::Vocab vocab;
};
/// Loads a checkpoint directory (tg::Error naming the file that is missing or wrong, or the
/// tensors that do not fit the config). The model is in eval mode.
EncoderCheckpoint load_encoder(const std::string& dir, DType dtype = DType::f32);

// --- evaluation ---------------------------------------------------------------------------------
struct ClassifierMetrics {
  double loss = 0;      ///< mean cross-entropy
  double accuracy = 0;  ///< fraction of argmax(logits) == label
  int64_t examples = 0;
};
/// Loss and accuracy over a whole dataset, in eval mode without recording (restores the
/// model's training mode after).
ClassifierMetrics evaluate_classifier(EncoderClassifier& model, const data::ClassificationDataset& dataset,
                                      int64_t batch_size = 64);

}  // namespace tg::models
