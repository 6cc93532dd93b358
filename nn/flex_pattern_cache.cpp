#include "nn/flex_pattern_cache.h"

namespace tg::nn {

FlexPatternCache::FlexPatternCache(const std::string& pattern) : pattern_(parse_flex_pattern(pattern)) {}

const FlexProblem& FlexPatternCache::problem(int64_t H, int64_t T, int64_t S, int64_t q_offset, bool causal,
                                             DType dtype, const std::vector<int64_t>& key_lengths) {
  Sizes now{H, T, S, q_offset, causal, dtype, key_lengths};
  if (!(now == built_for_)) {
    built_ = build_flex_problem(pattern_, H, T, S, causal, dtype, kFlexDefaultBlock, q_offset, key_lengths);
    built_for_ = std::move(now);
  }
  return built_;
}

}  // namespace tg::nn
