#include "ops/cache_write.h"

#include <cstring>

#include "autograd/error.h"
#include "autograd/tape.h"

namespace tg {

void cache_write_(Tensor& cache, int64_t pos, const Tensor& src, int64_t first_head) {
  TG_CHECK(cache.defined() && src.defined() && cache.dim() == 4 && src.dim() == 4,
           "cache_write_: cache must be [B, P, Hc, D] and src [B, T, n, D]; got {} and {}",
           cache.defined() ? shape_str(cache.shape()) : "undefined",
           src.defined() ? shape_str(src.shape()) : "undefined");
  const int64_t B = src.size(0), T = src.size(1), n = src.size(2), D = src.size(3);
  const int64_t P = cache.size(1), Hc = cache.size(2);
  TG_CHECK(cache.dtype() == src.dtype() && cache.size(0) == B && cache.size(3) == D && first_head >= 0 &&
               first_head + Hc <= n,
           "cache_write_: cache {} {} cannot take heads {}..{} of src {} {}", cache.dtype(),
           shape_str(cache.shape()), first_head, first_head + Hc - 1, src.dtype(), shape_str(src.shape()));
  TG_CHECK(pos >= 0 && pos + T <= P,
           "cache_write_: the cache {} holds {} positions; cannot write positions {}..{} (src {})",
           shape_str(cache.shape()), P, pos, pos + T - 1, shape_str(src.shape()));
  TG_CHECK(!(is_grad_enabled() && src.requires_grad()),
           "cache_write_: the cache is for inference and takes no gradient; run it under NoGradGuard");
  const size_t es = element_size(src.dtype()), piece = size_t(Hc * D) * es;
  auto* dst = static_cast<char*>(cache.raw_data());
  const auto* from = static_cast<const char*>(src.raw_data());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t)
      std::memcpy(dst + size_t(((b * P + pos + t) * Hc) * D) * es,
                  from + size_t(((b * T + t) * n + first_head) * D) * es, piece);
  cache.bump_version();
}

}  // namespace tg
