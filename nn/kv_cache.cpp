#include "nn/kv_cache.h"

#include "autograd/error.h"
#include "ops/cache_write.h"
#include "ops/shape_ops.h"

namespace tg::nn {

KVCache::KVCache(int64_t batch, int64_t capacity, int64_t kv_heads, int64_t head_dim, DType dtype) {
  TG_CHECK(batch > 0 && capacity > 0 && kv_heads > 0 && head_dim > 0,
           "KVCache: batch, capacity, kv_heads and head_dim must be positive, got {}, {}, {}, {}", batch,
           capacity, kv_heads, head_dim);
  TG_CHECK(is_floating(dtype), "KVCache: dtype must be floating, got {}", dtype);
  key_buffer_ = zeros({batch, capacity, kv_heads, head_dim}, dtype);
  value_buffer_ = zeros({batch, capacity, kv_heads, head_dim}, dtype);
}

void KVCache::check_room(int64_t T, const Tensor& from) const {
  TG_CHECK(defined(), "KVCache: the cache was never sized (construct it with a batch and capacity)");
  TG_CHECK(length_ + T <= capacity(),
           "KVCache: appending {} positions ({}) after {} overflows the cache of {} positions [B, P, Hkv, D] "
           "= {}",
           T, shape_str(from.shape()), length_, capacity(), shape_str(key_buffer_.shape()));
}

void KVCache::append_packed(const Tensor& qkv, int64_t q_heads) {
  TG_CHECK(qkv.defined() && qkv.dim() == 4 && qkv.size(2) == q_heads + 2 * kv_heads(),
           "KVCache: qkv must be [B, T, H + 2 * Hkv, D] with H = {}, Hkv = {}, got {}", q_heads, kv_heads(),
           qkv.defined() ? shape_str(qkv.shape()) : "undefined");
  check_room(qkv.size(1), qkv);
  cache_write_(key_buffer_, length_, qkv, q_heads);
  cache_write_(value_buffer_, length_, qkv, q_heads + kv_heads());
  length_ += qkv.size(1);
}

void KVCache::append(const Tensor& k, const Tensor& v) {
  TG_CHECK(k.defined() && v.defined() && k.dim() == 4 && k.shape() == v.shape() && k.size(2) == kv_heads(),
           "KVCache: k and v must be [B, T, Hkv = {}, D] of one shape, got {} and {}", kv_heads(),
           k.defined() ? shape_str(k.shape()) : "undefined", v.defined() ? shape_str(v.shape()) : "undefined");
  check_room(k.size(1), k);
  cache_write_(key_buffer_, length_, k, 0);
  cache_write_(value_buffer_, length_, v, 0);
  length_ += k.size(1);
}

Tensor KVCache::keys() const { return narrow(key_buffer_, 1, 0, length_); }
Tensor KVCache::values() const { return narrow(value_buffer_, 1, 0, length_); }

}  // namespace tg::nn
