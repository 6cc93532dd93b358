#pragma once
// Embedding: a lookup table of num_embeddings rows of embedding_dim, as torch.nn.Embedding
// (initialised N(0, 1)).
#include "nn/module.h"
#include "nn/options.h"

namespace tg::nn {

struct EmbeddingOptions {
  EmbeddingOptions(int64_t num_embeddings, int64_t embedding_dim)
      : num_embeddings_(num_embeddings), embedding_dim_(embedding_dim) {}
  TG_ARG(int64_t, num_embeddings, 0);
  TG_ARG(int64_t, embedding_dim, 0);
  TG_ARG(DType, dtype, DType::f32);
};

class Embedding : public Module {
 public:
  explicit Embedding(const EmbeddingOptions& options);
  /// ids (i64, any shape [...]) -> [..., embedding_dim].
  Tensor forward(const Tensor& ids) override;

  EmbeddingOptions options;
  Tensor weight;  ///< [num_embeddings, embedding_dim]

 protected:
  std::string extra_repr() const override;
};

}  // namespace tg::nn
