#include "nn/embedding.h"

#include "autograd/error.h"
#include "nn/init.h"
#include "ops/shape_ops.h"

namespace tg::nn {

Embedding::Embedding(const EmbeddingOptions& opts) : Module("Embedding"), options(opts) {
  TG_CHECK(opts.num_embeddings() > 0 && opts.embedding_dim() > 0,
           "Embedding: num_embeddings and embedding_dim must be positive, got {} and {}",
           opts.num_embeddings(), opts.embedding_dim());
  weight = register_parameter("weight", empty({opts.num_embeddings(), opts.embedding_dim()}, opts.dtype()));
  init::normal_(weight);
}

Tensor Embedding::forward(const Tensor& ids) { return embedding(weight, ids); }

std::string Embedding::extra_repr() const {
  return fmt::format("{}, {}", options.num_embeddings(), options.embedding_dim());
}

}  // namespace tg::nn
