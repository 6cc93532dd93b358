// bench/compare's flex rows on tapegrad (issue 16): flex_attention with a ready pattern, forward
// or forward + backward, q, k, v [B, T, H, D], against PyTorch's flex_attention (compiled) and
// F.scaled_dot_product_attention with the materialised mask (bench/compare_py/flex_torch.py).
#include "autograd/autograd.h"
#include "bench/compare_tapegrad/workloads.h"
#include "ops/flex_attention.h"
#include "ops/flex_spec.h"
#include "ops/ops.h"

namespace tg::compare {

// config: batch_size, n_head, head_dim, seq_len, pattern ("causal", "sliding:256", "document:8",
// "alibi"; intersected with causal masking), mode ("fwd" or "fwdbwd": the backward from a fixed
// gradient into q, k and v). The block mask is built once, outside the timed steps (as
// PyTorch's create_block_mask).
Reply run_flex_attention(const Request& r) {
  const int64_t B = config_int(r, "batch_size"), H = config_int(r, "n_head");
  const int64_t D = config_int(r, "head_dim"), T = config_int(r, "seq_len");
  const std::string pattern = config_string(r, "pattern", "causal"), mode = config_string(r, "mode", "fwd");
  TG_CHECK(mode == "fwdbwd" || mode == "fwd", "compare_tapegrad: flex_attention: mode must be fwdbwd or fwd, got '{}'",
           mode);
  const FlexProblem problem = build_flex_problem(parse_flex_pattern("flex:" + pattern), H, T, T, /*causal=*/true);
  Generator gen(1);
  Tensor q = randn({B, T, H, D}, gen), k = randn({B, T, H, D}, gen), v = randn({B, T, H, D}, gen);
  Tensor dy = randn({B, T, H, D}, gen);
  const bool backward_too = mode == "fwdbwd";
  for (Tensor* x : {&q, &k, &v}) x->requires_grad_(backward_too);
  auto step = [&] {
    if (!backward_too) {
      NoGradGuard no_grad;
      (void)flex_attention(q, k, v, problem.score_mod, problem.block_mask);
      return;
    }
    for (Tensor* x : {&q, &k, &v}) x->set_grad(Tensor());
    backward(flex_attention(q, k, v, problem.score_mod, problem.block_mask), dy);
  };
  Reply reply = time_steps(r, step);
  reply.extra["pattern"] = pattern;
  return reply;
}

}  // namespace tg::compare
