#pragma once
// Conv1D as Hugging Face's GPT-2 writes it (transformers.pytorch_utils.Conv1D): a linear layer
// whose weight is stored [in, out], y = x·W + b. Kept so GPT-2 checkpoints load without
// transposing anything. Initialised as GPT-2: weight N(0, 0.02), bias 0.
#include "autograd/random.h"
#include "nn/module.h"
#include "nn/options.h"

namespace tg::nn {

struct Conv1DOptions {
  Conv1DOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  TG_ARG(int64_t, in_features, 0);
  TG_ARG(int64_t, out_features, 0);
  TG_ARG(bool, bias, true);
  TG_ARG(DType, dtype, DType::f32);
};

class Conv1D : public Module {
 public:
  /// Draws the weight from `gen` (default_generator() when null).
  explicit Conv1D(const Conv1DOptions& options, Generator* gen = nullptr);
  /// x [..., in_features] -> [..., out_features].
  Tensor forward(const Tensor& x) override;
  /// weight N(0, std²) from `gen`, bias 0.
  void reset_parameters(Generator& gen, double std = 0.02);

  Conv1DOptions options;
  Tensor weight;  ///< [in_features, out_features] (transposed relative to nn::Linear)
  Tensor bias;    ///< [out_features], undefined when options.bias() is false

 protected:
  std::string extra_repr() const override;
};

}  // namespace tg::nn
