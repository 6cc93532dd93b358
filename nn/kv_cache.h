#pragma once
// The key/value cache of one attention layer for incremental decoding: keys and values of the
// positions decoded so far, preallocated to the longest context and sized for the kv heads.
#include "autograd/tensor.h"

namespace tg::nn {

class KVCache {
 public:
  KVCache() = default;
  /// Room for `capacity` positions of a batch of `batch`: keys and values [B, capacity, Hkv, D].
  KVCache(int64_t batch, int64_t capacity, int64_t kv_heads, int64_t head_dim, DType dtype = DType::f32);

  /// Appends the keys and values of T new positions at length(), read from a packed projection
  /// qkv [B, T, H + 2·Hkv, D] (H = q_heads query heads, then the keys, then the values), and
  /// advances length() by T. tg::Error when the positions overflow the capacity.
  void append_packed(const Tensor& qkv, int64_t q_heads);
  /// The same from k [B, T, Hkv, D] and v [B, T, Hkv, D].
  void append(const Tensor& k, const Tensor& v);

  /// The cached keys and values [B, length(), Hkv, D] (copies unless B = 1).
  Tensor keys() const;
  Tensor values() const;

  int64_t length() const { return length_; }
  int64_t capacity() const { return key_buffer_.defined() ? key_buffer_.size(1) : 0; }
  int64_t batch() const { return key_buffer_.defined() ? key_buffer_.size(0) : 0; }
  int64_t kv_heads() const { return key_buffer_.defined() ? key_buffer_.size(2) : 0; }
  int64_t head_dim() const { return key_buffer_.defined() ? key_buffer_.size(3) : 0; }
  bool defined() const { return key_buffer_.defined(); }
  /// Forgets the cached positions (keeps the buffers).
  void reset() { length_ = 0; }

 private:
  void check_room(int64_t T, const Tensor& from) const;

  Tensor key_buffer_;    // [B, capacity, Hkv, D]
  Tensor value_buffer_;  // [B, capacity, Hkv, D]
  int64_t length_ = 0;   // positions 0..length_-1 are filled
};

}  // namespace tg::nn
