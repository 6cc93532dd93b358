// nn::MultiheadAttention with document_ids (packed sequences): each document of a row gets what
// it gets alone, output and parameter gradients, for every variant that can take the mask (the
// hand-written ones through the flex pattern computing the same); the mask is built once per ids;
// the calls it refuses.
#include "nn/multihead_attention.h"
#include "ops/binary.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "test_util.h"

namespace tg {
namespace {

using testing::expect_close;
using testing::uniform;

// Row 0: documents [0, 4), [4, 9), [9, 12); row 1: [0, 7), [7, 12).
const std::vector<std::vector<int64_t>> kDocuments = {{0, 4, 9, 12}, {0, 7, 12}};

Tensor document_ids() {
  Tensor ids = empty({2, 12}, DType::i64);
  for (int64_t b = 0; b < 2; ++b) {
    const std::vector<int64_t>& edges = kDocuments[size_t(b)];
    for (size_t d = 0; d + 1 < edges.size(); ++d)
      for (int64_t t = edges[d]; t < edges[d + 1]; ++t) ids.data<int64_t>()[b * 12 + t] = int64_t(d);
  }
  return ids;
}

std::shared_ptr<nn::MultiheadAttention> module(const nn::MultiheadAttentionOptions& o) {
  auto m = std::make_shared<nn::MultiheadAttention>(o);
  NoGradGuard no_grad;
  int i = 0;
  for (auto& [name, p] : m->named_parameters()) p.copy_(uniform(p.shape(), 30 + uint64_t(i++), -0.6, 0.6));
  return m;
}

nn::MultiheadAttentionOptions options() {
  return nn::MultiheadAttentionOptions(8, 4).kv_heads(2).causal(true).dtype(DType::f64);
}

// x[b, s:e] as a batch of one.
Tensor piece(const Tensor& x, int64_t b, int64_t s, int64_t e) { return narrow(narrow(x, 0, b, 1), 1, s, e - s); }

void expect_documents_alone(const nn::MultiheadAttentionOptions& o) {
  std::shared_ptr<nn::MultiheadAttention> m = module(o);
  Tensor x = uniform({2, 12, 8}, 7);
  nn::SelfAttentionOptions packed;
  packed.document_ids = document_ids();
  Tensor out = m->forward(x, packed);  // [2, 12, 8]
  Tensor loss = sum(mul(out, out));
  backward(loss);
  std::vector<Tensor> packed_grads;
  for (Tensor& p : m->parameters()) packed_grads.push_back(p.grad().clone()), p.zero_grad();

  Tensor alone_loss = zeros({}, DType::f64);
  for (int64_t b = 0; b < 2; ++b) {
    const std::vector<int64_t>& edges = kDocuments[size_t(b)];
    for (size_t d = 0; d + 1 < edges.size(); ++d) {
      SCOPED_TRACE(fmt::format("row {} document {}", b, d));
      Tensor alone = m->forward(piece(x, b, edges[d], edges[d + 1]), nn::SelfAttentionOptions{});
      expect_close(piece(out, b, edges[d], edges[d + 1]), alone, 1e-12, 1e-12);
      alone_loss = add(alone_loss, sum(mul(alone, alone)));
    }
  }
  backward(alone_loss);
  std::vector<Tensor> params = m->parameters();
  for (size_t i = 0; i < params.size(); ++i) expect_close(packed_grads[i], params[i].grad(), 1e-11, 1e-12);
}

TEST(MultiheadAttentionDocuments, EachDocumentGetsWhatItGetsAlone) {
  {
    SCOPED_TRACE("dense");
    expect_documents_alone(options());
  }
  {
    SCOPED_TRACE("flash");
    expect_documents_alone(options().variant(AttentionVariant::flash));
  }
  {
    SCOPED_TRACE("sliding_window 3");
    expect_documents_alone(options().variant(AttentionVariant::sliding_window).window(3));
  }
  {
    SCOPED_TRACE("flex:alibi");  // a score_mod of relative positions
    expect_documents_alone(options().flex("flex:alibi"));
  }
}

// The documents change the output; the same ids reuse the mask, other ids rebuild it.
TEST(MultiheadAttentionDocuments, MaskFollowsTheIds) {
  std::shared_ptr<nn::MultiheadAttention> m = module(options());
  Tensor x = uniform({2, 12, 8}, 8);
  nn::SelfAttentionOptions packed;
  packed.document_ids = document_ids();
  Tensor a = m->forward(x, packed);
  EXPECT_GT(testing::max_abs_diff(a, m->forward(x, nn::SelfAttentionOptions{})), 1e-3);
  expect_close(m->forward(x, packed), a, 0, 0);
  nn::SelfAttentionOptions one_document;
  one_document.document_ids = zeros({2, 12}, DType::i64);
  expect_close(m->forward(x, one_document), m->forward(x, nn::SelfAttentionOptions{}), 1e-12, 1e-12);
}

// Modules sharing their caches (a model's layers) build a batch's mask once and stay right when
// the ids change between them.
TEST(MultiheadAttentionDocuments, SharedCachesFollowTheIds) {
  std::shared_ptr<nn::MultiheadAttention> a = module(options()), b = module(options());
  Tensor x = uniform({2, 12, 8}, 10);
  nn::SelfAttentionOptions packed, whole;
  packed.document_ids = document_ids();
  whole.document_ids = zeros({2, 12}, DType::i64);
  Tensor expected_a = a->forward(x, packed), expected_b = b->forward(x, whole);
  b->share_flex_caches(*a);
  expect_close(b->forward(x, whole), expected_b, 0, 0);
  expect_close(a->forward(x, packed), expected_a, 0, 0);
  EXPECT_TG_ERROR(module(options().flex("flex:alibi"))->share_flex_caches(*a),
                  "share_flex_caches between the patterns 'flex:alibi' and ''");
}

TEST(MultiheadAttentionDocuments, Errors) {
  std::shared_ptr<nn::MultiheadAttention> m = module(options());
  Tensor x = uniform({2, 12, 8}, 9);
  nn::SelfAttentionOptions call;
  call.document_ids = zeros({2, 11}, DType::i64);
  EXPECT_TG_ERROR(m->forward(x, call), "document_ids must be i64 [B, T] = [2, 12] like x [2, 12, 8], got i64 [2, 11]");
  call.document_ids = zeros({2, 12});
  EXPECT_TG_ERROR(m->forward(x, call), "document_ids must be i64 [B, T] = [2, 12] like x [2, 12, 8], got f32");
  call.document_ids = document_ids();
  Tensor weights;
  call.weights = &weights;
  EXPECT_TG_ERROR(m->forward(x, call), "document_ids run flex_attention, which returns no weights");
  call.weights = nullptr;
  nn::KVCache cache = m->make_cache(2, 16);
  call.cache = &cache;
  NoGradGuard no_grad;
  EXPECT_TG_ERROR(m->forward(x, call), "not for cached decoding");
  EXPECT_EQ(cache.length(), 0);
  std::shared_ptr<nn::MultiheadAttention> linear = module(options().variant(AttentionVariant::linear));
  call.cache = nullptr;
  EXPECT_TG_ERROR(linear->forward(x, call), "document_ids: attention: the linear variant has no attention mask");
}

}  // namespace
}  // namespace tg
