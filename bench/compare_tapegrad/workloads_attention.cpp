// bench/compare's attention workloads on tapegrad (issue 17): one attention kernel alone,
// forward + backward, q, k, v [B, T, H, D] (the layout tapegrad's projections write), against
// PyTorch's F.scaled_dot_product_attention on [B, H, T, D] at the same sizes.
#include "autograd/autograd.h"
#include "bench/compare_tapegrad/workloads.h"
#include "ops/attention.h"
#include "ops/ops.h"

namespace tg::compare {

// config: batch_size, n_head, head_dim, seq_len, causal (bool), variant ("flash", "dense", ...),
// mode ("fwdbwd" or "fwd"). A fwdbwd step is the forward and the backward from a fixed gradient
// into q, k and v.
Reply run_attention(const Request& r) {
  const int64_t B = config_int(r, "batch_size"), H = config_int(r, "n_head");
  const int64_t D = config_int(r, "head_dim"), T = config_int(r, "seq_len");
  const std::string variant = config_string(r, "variant", "flash"), mode = config_string(r, "mode", "fwdbwd");
  TG_CHECK(mode == "fwdbwd" || mode == "fwd", "compare_tapegrad: attention: mode must be fwdbwd or fwd, got '{}'", mode);
  AttentionSpec spec;
  spec.variant = parse_attention_variant(variant, &spec);
  spec.causal = r.config.value("causal", true);
  Generator gen(1);
  Tensor q = randn({B, T, H, D}, gen), k = randn({B, T, H, D}, gen), v = randn({B, T, H, D}, gen);
  Tensor dy = randn({B, T, H, D}, gen);
  const bool backward_too = mode == "fwdbwd";
  for (Tensor* x : {&q, &k, &v}) x->requires_grad_(backward_too);
  auto step = [&] {
    if (!backward_too) {
      NoGradGuard no_grad;
      (void)attention(q, k, v, spec);
      return;
    }
    for (Tensor* x : {&q, &k, &v}) x->set_grad(Tensor());
    backward(attention(q, k, v, spec), dy);
  };
  Reply reply = time_steps(r, step);
  reply.extra["attention"] = variant;
  return reply;
}

}  // namespace tg::compare
