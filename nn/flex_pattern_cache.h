#pragma once
// The flex pattern of an attention module (options.flex(), "flex:sliding:256", or a pattern
// written in C++), built for the sizes of a call and kept: the BlockMask is made once and reused
// while the sizes stay the same (every training step of a fixed block size), rebuilt when they
// change (cached decoding) or when the call's documents do (packed sequences: once per batch,
// shared by every layer).
#include <cstdint>
#include <string>
#include <vector>

#include "ops/flex_spec.h"

namespace tg::nn {

class FlexPatternCache {
 public:
  /// tg::Error naming the pattern when it does not parse.
  explicit FlexPatternCache(const std::string& pattern);
  explicit FlexPatternCache(FlexPattern pattern);
  /// No pattern yet: set_pattern() before problem().
  FlexPatternCache() = default;

  /// Uses `pattern` from now on (what was built is kept when its words are the same).
  void set_pattern(FlexPattern pattern);

  /// The pattern for H heads of T queries at positions q_offset.. over S keys (causal: also
  /// k <= q; key_lengths: one per batch, keys beyond hidden; document_ids: i64 [B, T] or
  /// undefined, a query sees keys of its own document only), scores in `dtype`.
  const FlexProblem& problem(int64_t H, int64_t T, int64_t S, int64_t q_offset, bool causal, DType dtype,
                             const std::vector<int64_t>& key_lengths, const Tensor& document_ids = {});

 private:
  struct Sizes {
    int64_t H = -1, T = -1, S = -1, q_offset = -1;
    bool causal = false;
    DType dtype = DType::f32;
    std::vector<int64_t> key_lengths;
    std::vector<int64_t> document_ids;  // compared by value: B·T ids cost nothing beside a mask
    bool operator==(const Sizes&) const = default;
  };
  FlexPattern pattern_;
  Sizes built_for_;
  FlexProblem built_;
};

}  // namespace tg::nn
