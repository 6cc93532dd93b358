// The library's flex attention kernels: attention_flex_impl.h instantiated with the type-erased
// mods (a mask row and score rows, each called once per tile row).
#include "ops/kernels/attention_flex.h"

#include "ops/kernels/attention_flex_impl.h"

namespace tg::kernels {

int64_t flex_grad_slots(const FlexDims& d, const FlexBlocks& blocks) {
  return flex::grad_slots(d, blocks);
}

template <class T>
void flex_attention_forward(const FlexDims& d, const FlexBlocks& blocks, const FlexMods<T>& mods,
                            T scale, const AttnDropout& dropout, const T* q, const T* k,
                            const T* v, T* out, T* lse) {
  flex::forward(d, blocks, mods, scale, dropout, q, k, v, out, lse);
}

template <class T>
void flex_attention_backward(const FlexDims& d, const FlexBlocks& blocks, const FlexMods<T>& mods,
                             T scale, const AttnDropout& dropout, const T* q, const T* k,
                             const T* v, const T* out, const T* lse, const T* dout, T* delta,
                             T* dq, T* dk, T* dv) {
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
