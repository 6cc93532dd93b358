#pragma once
// The flex pattern of an attention module (options.flex(), "flex:sliding:256"), built for the
// sizes of a call and kept: the BlockMask is made once and reused while the sizes stay the same
// (every training step of a fixed block size), rebuilt when they change (cached decoding).
#include <cstdint>
#include <string>
#include <vector>

#include "ops/flex_spec.h"

namespace tg::nn {

class FlexPatternCache {
 public:
  /// tg::Error naming the pattern when it does not parse.
  explicit FlexPatternCache(const std::string& pattern);

  /// The pattern for H heads of T queries at positions q_offset.. over S keys (causal: also
  /// k <= q; key_lengths: one per batch, keys beyond hidden), scores in `dtype`.
  const FlexProblem& problem(int64_t H, int64_t T, int64_t S, int64_t q_offset, bool causal, DType dtype,
                             const std::vector<int64_t>& key_lengths);

 private:
  struct Sizes {
    int64_t H = -1, T = -1, S = -1, q_offset = -1;
    bool causal = false;
    DType dtype = DType::f32;
    std::vector<int64_t> key_lengths;
    bool operator==(const Sizes&) const = default;
  };
  FlexPattern pattern_;
  Sizes built_for_;
  FlexProblem built_;
};

}  // namespace tg::nn
