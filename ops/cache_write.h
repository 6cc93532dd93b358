#pragma once
// Writing a key/value cache: the one in-place op of cached decoding, so no model copies raw
// memory into a cache itself. Reads the heads it needs straight from a packed projection.
#include "autograd/tensor.h"

namespace tg {

/// Copies heads [first_head, first_head + Hc) of every row of src [B, T, n, D] into
/// cache [B, P, Hc, D] at positions [pos, pos + T), in place (bumps cache's version). src may be
/// a packed projection [B, T, H + 2·Hkv, D]: first_head H writes the keys, H + Hkv the values.
/// Not differentiable: tg::Error when grad mode is on and src requires grad; tg::Error naming
/// the shapes when they disagree or positions pos..pos+T-1 do not fit in P.
void cache_write_(Tensor& cache, int64_t pos, const Tensor& src, int64_t first_head);

}  // namespace tg
