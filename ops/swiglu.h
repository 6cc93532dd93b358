#pragma once
// SwiGLU's gating as the Llama family's MLP computes it, on the output of one fused gate/up
// projection: one pass forward and one backward instead of silu, then mul (each with its saved
// input and its own passes over memory).
#include "autograd/tensor.h"

namespace tg {

/// x [..., 2I] (the gate's I values, then the up projection's I) -> silu(x[..., :I]) · x[..., I:]
/// [..., I]. Halves split as torch.nn.functional.glu(x, dim=-1) splits them, with SiLU applied to
/// the first half. Saves x.
Tensor swiglu(const Tensor& x);

}  // namespace tg
