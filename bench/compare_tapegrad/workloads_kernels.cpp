// bench/compare's layer and op workloads on tapegrad: MultiheadAttention forward + backward,
// single ops forward + backward (LayerNorm, softmax, GELU, cross-entropy), one AdamW step over a
// GPT's parameters, the sgemm peak (tg::matmul, within 1-3% of cblas_sgemm: see bench_gemm), and
// a training step's linear-layer GEMMs alone (the ceiling of its speed).
#include "autograd/autograd.h"
#include "bench/compare_tapegrad/workloads.h"
#include "bench/train_linear_gemms.h"
#include "models/gpt/gpt.h"
#include "nn/multihead_attention.h"
#include "nn/optim/adamw.h"
#include "ops/ops.h"

namespace tg::compare {
namespace {

Shape config_shape(const Request& r) {
  TG_CHECK(r.config.contains("shape") && r.config["shape"].is_array() && !r.config["shape"].empty(),
           "compare_tapegrad: {}: config \"shape\" (a list of sizes) is required", r.workload);
  Shape s;
  for (const json& v : r.config["shape"]) {
    TG_CHECK(v.is_number_integer() && v.get<int64_t>() > 0, "compare_tapegrad: {}: \"shape\" holds {}, not a positive size",
             r.workload, v.dump());
    s.push_back(v.get<int64_t>());
  }
  return s;
}

}  // namespace

// Self-attention x [B, T, C] -> [B, T, C], not causal, no weights returned; backward from a
// fixed gradient into x and every parameter.
Reply run_mha(const Request& r) {
  const int64_t B = config_int(r, "batch_size"), T = config_int(r, "seq_len"), C = config_int(r, "n_embd");
  const int64_t H = config_int(r, "n_head");
  AttentionSpec spec;
  const std::string attention = config_string(r, "attention", "dense");
  AttentionVariant variant = parse_attention_variant(attention, &spec);
  manual_seed(1337);
  nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(C, H).variant(variant).window(spec.window).sparse(spec.sparse));
  Generator gen(1);
  Tensor x = randn({B, T, C}, gen).requires_grad_();
  Tensor dy = randn({B, T, C}, gen);
  Reply reply = time_steps(r, [&] {
    mha.zero_grad();
    x.set_grad(Tensor());
    Tensor y = mha.forward(x, x, x, Tensor(), /*need_weights=*/false).output;
    backward(y, dy);
  });
  reply.params = mha.num_parameters();
  reply.extra["attention"] = attention;
  return reply;
}

// One op, forward then backward from a fixed gradient (cross-entropy: from its scalar mean).
Reply run_single_op(const Request& r) {
  const Shape shape = config_shape(r);
  Generator gen(1);
  Tensor x = randn(shape, gen).requires_grad_();
  Tensor dy = randn(shape, gen);
  if (r.workload == "cross_entropy") {
    TG_CHECK(shape.size() == 2, "compare_tapegrad: cross_entropy: \"shape\" must be [N, V]");
    Tensor target = empty({shape[0]}, DType::i64);
    for (int64_t i = 0; i < shape[0]; ++i) target.data<int64_t>()[i] = (i * 7) % shape[1];
    return time_steps(r, [&] {
      x.set_grad(Tensor());
      backward(cross_entropy(x, target));
    });
  }
  if (r.workload == "layer_norm") {
    const int64_t C = shape.back();
    Tensor w = ones({C}).requires_grad_(), b = zeros({C}).requires_grad_();
    return time_steps(r, [&] {
      x.set_grad(Tensor()), w.set_grad(Tensor()), b.set_grad(Tensor());
      backward(layer_norm(x, {C}, w, b), dy);
    });
  }
  const bool is_softmax = r.workload == "softmax";
  return time_steps(r, [&] {
    x.set_grad(Tensor());
    backward(is_softmax ? softmax(x, -1) : gelu(x, "tanh"), dy);
  });
}

// One AdamW step (lr 1e-3, betas 0.9/0.99, weight decay 0.1 on rank >= 2) over a GPT's
// parameters, gradients set once beforehand.
Reply run_adamw_step(const Request& r) {
  models::GPTConfig c;
  c.vocab_size = config_int(r, "vocab_size"), c.n_positions = config_int(r, "block_size");
  c.n_layer = config_int(r, "n_layer"), c.n_head = config_int(r, "n_head"), c.n_embd = config_int(r, "n_embd");
  c.dropout = 0.0;
  Generator init(1337), gen(2);
  models::GPT model(c, init);
  for (Tensor& p : model.parameters()) p.set_grad(randn(p.shape(), gen) * 1e-3);
  optim::AdamW opt(optim::decay_groups(model, 0.1), optim::AdamWOptions(1e-3).beta1(0.9).beta2(0.99).weight_decay(0.1));
  Reply reply = time_steps(r, [&] { opt.step(); });
  reply.params = model.num_parameters();
  return reply;
}

// The linear layers' products of one training step alone (bench/train_linear_gemms.h), timed
// beside each training workload: config rows (batch · block), n_embd, n_layer, head (absent: none);
// a Llama's also qkv (the fused projection's outputs), mlp (its width) and gated (SwiGLU).
Reply run_linear_gemms(const Request& r) {
  bench::TrainShapes t{config_int(r, "rows"), config_int(r, "n_embd"), config_int(r, "n_layer"), 0};
  if (r.config.contains("head")) t.head = config_int(r, "head");
  if (r.config.contains("qkv")) t.qkv = config_int(r, "qkv");
  if (r.config.contains("mlp")) t.mlp = config_int(r, "mlp");
  t.gated = r.config.value("gated", false);
  bench::TrainLinearGemms gemms(t);
  Reply reply = time_steps(r, [&] { gemms.run(); });
  reply.extra["flops"] = t.flops();
  return reply;
}

// [n, n] · [n, n] under NoGradGuard; the driver turns the median into GFLOP/s (2n³ per product).
Reply run_sgemm_peak(const Request& r) {
  const int64_t n = config_int(r, "n");
  Generator gen(3);
  Tensor a = randn({n, n}, gen), b = randn({n, n}, gen);
  NoGradGuard no_grad;
  return time_steps(r, [&] { (void)matmul(a, b); });
}

}  // namespace tg::compare
