#pragma once
// A `flex:PATTERN` cell of the attention bench (ops/flex_spec.h): the pattern built for the cell's
// sizes, its run, the plain computation it is checked against, and what it costs.
#include <cstdint>
#include <string>

#include "autograd/tensor.h"
#include "ops/flex_spec.h"

namespace tg::bench {

/// The pattern of variant `name` ("flex:document:8") for H heads of T queries over T keys.
struct FlexCell {
  FlexProblem problem;
  int64_t visible_pairs = 0;  ///< (query, key) pairs the mask lets through, per head and batch
  double blocks_run = 1;      ///< share of the (query block, key block) tiles that run
};

FlexCell make_flex_cell(const std::string& name, int64_t H, int64_t T, bool causal);

/// flex_attention(q, k, v) with the cell's mods; q, k, v, out [B, T, H, D].
Tensor run_flex_cell(const FlexCell& cell, const Tensor& q, const Tensor& k, const Tensor& v);

/// The same computed plainly (f32): [B, H, T, T] scores, the score_mod applied element by element,
/// the mask materialised, softmax, weights times v. Rows that see no key give zeros.
Tensor flex_cell_reference(const FlexCell& cell, const Tensor& q, const Tensor& k, const Tensor& v);

}  // namespace tg::bench
