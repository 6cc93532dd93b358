#include "nn/flex_pattern_cache.h"

#include "autograd/error.h"

namespace tg::nn {

FlexPatternCache::FlexPatternCache(const std::string& pattern) : pattern_(parse_flex_pattern(pattern)) {}

FlexPatternCache::FlexPatternCache(FlexPattern pattern) : pattern_(std::move(pattern)) {}

void FlexPatternCache::set_pattern(FlexPattern pattern) {
  if (pattern.text() == pattern_.text()) return;
  pattern_ = std::move(pattern);
  built_for_ = Sizes{};
  built_ = FlexProblem{};
}

const FlexProblem& FlexPatternCache::problem(int64_t H, int64_t T, int64_t S, int64_t q_offset, bool causal,
                                             DType dtype, const std::vector<int64_t>& key_lengths,
                                             const Tensor& document_ids) {
  TG_CHECK(!pattern_.name.empty(), "FlexPatternCache: no pattern set");
  Sizes now{H, T, S, q_offset, causal, dtype, key_lengths, {}};
  if (document_ids.defined()) {
    TG_CHECK(document_ids.dtype() == DType::i64 && document_ids.dim() == 2,
             "attention pattern {}: document_ids must be i64 [B, T], got {} {}", pattern_.text(),
             dtype_name(document_ids.dtype()), shape_str(document_ids.shape()));
    const int64_t* ids = document_ids.data<int64_t>();  // tensors are contiguous
    now.document_ids.assign(ids, ids + document_ids.numel());
    now.document_ids.push_back(document_ids.size(0));  // the shape too: [2, 6] and [3, 4] differ
  }
  if (!(now == built_for_)) {
    built_ = build_flex_problem(pattern_, H, T, S, causal, dtype, kFlexDefaultBlock, q_offset, key_lengths,
                                document_ids);
    built_for_ = std::move(now);
  }
  return built_;
}

}  // namespace tg::nn
