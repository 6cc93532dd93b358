// The library's flex attention kernels: attention_flex_impl.h instantiated with the type-erased
// mods (a mask row and score rows, each called once per tile row). f32 problems whose blocks
// are whole register tiles run flash's tiled kernels instead, restricted to the block mask's
// tiles (attention_flash_tiled.h): the same function, on 16-lane tiles where the build has
// AVX-512; with a score_mod, the forward only (the backward, with the captured tensors'
// gradients, stays here).
#include "ops/kernels/attention_flex.h"

#include <type_traits>

#include "ops/kernels/attention_flash_tiled.h"
#include "ops/kernels/attention_flex_impl.h"

namespace tg::kernels {
namespace {

// The tiled kernels' view of a flex problem: q [B, T, H, D], k and v with Hkv heads, in place.
AttnDims tiled_dims(const FlexDims& d) {
  AttnDims a = d.attn();
  a.Hkv = d.Hkv;
  return a;
}

// The forward runs on the tiles with or without a score_mod (applied there a key column at a
// time); the backward only without one (the captured tensors' gradients are flex's own).
template <class T>
bool runs_on_tiles(const FlexDims& d, const FlexBlocks& blocks, const FlexMods<T>& mods, bool backward) {
  if constexpr (std::is_same_v<T, float>)
    return !(backward && mods.has_score()) && flex_tiled_applies(d, blocks);
  else
    return false;
}

}  // namespace

int64_t flex_grad_slots(const FlexDims& d, const FlexBlocks& blocks) {
  return flex::grad_slots(d, blocks);
}

template <class T>
void flex_attention_forward(const FlexDims& d, const FlexBlocks& blocks, const FlexMods<T>& mods,
                            T scale, const AttnDropout& dropout, const T* q, const T* k,
                            const T* v, T* out, T* lse) {
  if constexpr (std::is_same_v<T, float>) {
    if (runs_on_tiles(d, blocks, mods, false)) {
      const TiledBlocks tiles{blocks, mods.mask, d.q_offset, mods.has_score() ? &mods : nullptr};
      return flash_tiled_forward(tiled_dims(d), scale, AttnMask<float>{}, kNoBand, dropout, q, k, v, out, lse, &tiles);
    }
  }
  flex::forward(d, blocks, mods, scale, dropout, q, k, v, out, lse);
}

template <class T>
void flex_attention_backward(const FlexDims& d, const FlexBlocks& blocks, const FlexMods<T>& mods,
                             T scale, const AttnDropout& dropout, const T* q, const T* k,
                             const T* v, const T* out, const T* lse, const T* dout, T* delta,
                             T* dq, T* dk, T* dv) {
  if constexpr (std::is_same_v<T, float>) {
    if (runs_on_tiles(d, blocks, mods, true)) {
      const TiledBlocks tiles{blocks, mods.mask, d.q_offset};
      return flash_tiled_backward(tiled_dims(d), scale, AttnMask<float>{}, kNoBand, dropout, q, k, v, out, lse,
                                  dout, delta, dq, dk, dv, &tiles);
    }
  }
  flex::backward(d, blocks, mods, scale, dropout, q, k, v, out, lse, dout, delta, dq, dk, dv,
                 mods.grads != nullptr);
}

#define TG_INSTANTIATE(T)                                                                        \
  template void flex_attention_forward<T>(const FlexDims&, const FlexBlocks&,                    \
                                          const FlexMods<T>&, T, const AttnDropout&, const T*,   \
                                          const T*, const T*, T*, T*);                           \
  template void flex_attention_backward<T>(const FlexDims&, const FlexBlocks&,                   \
                                           const FlexMods<T>&, T, const AttnDropout&, const T*,  \
                                           const T*, const T*, const T*, const T*, const T*, T*, \
                                           T*, T*, T*);
TG_INSTANTIATE(float)
TG_INSTANTIATE(double)
#undef TG_INSTANTIATE

}  // namespace tg::kernels
