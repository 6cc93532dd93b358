#pragma once
// Parameter initialisation in place, as torch.nn.init, drawing from tapegrad's counter-based
// generator (default_generator() unless given). Fans are computed as PyTorch does: for a weight
// [out, in, k...], fan_in = in * prod(k), fan_out = out * prod(k).
#include <string_view>

#include "autograd/random.h"
#include "autograd/tensor.h"

namespace tg::nn::init {

void zeros_(Tensor& t);
void ones_(Tensor& t);
void constant_(Tensor& t, double value);
/// N(mean, std²).
void normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator& gen = default_generator());
/// U(a, b).
void uniform_(Tensor& t, double a = 0.0, double b = 1.0, Generator& gen = default_generator());
/// U(-r, r), r = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(Tensor& t, double gain = 1.0, Generator& gen = default_generator());
/// N(0, std²), std = gain * sqrt(2 / (fan_in + fan_out)).
void xavier_normal_(Tensor& t, double gain = 1.0, Generator& gen = default_generator());
/// U(-r, r), r = gain * sqrt(3 / fan), gain from `nonlinearity` ("leaky_relu" with slope a,
/// "relu", "linear", "tanh"); mode "fan_in" or "fan_out".
void kaiming_uniform_(Tensor& t, double a = 0.0, std::string_view mode = "fan_in",
                      std::string_view nonlinearity = "leaky_relu",
                      Generator& gen = default_generator());
/// N(0, std²), std = gain / sqrt(fan).
void kaiming_normal_(Tensor& t, double a = 0.0, std::string_view mode = "fan_in",
                     std::string_view nonlinearity = "leaky_relu",
                     Generator& gen = default_generator());

/// {fan_in, fan_out} of a weight of rank >= 2 (error otherwise, naming `op`).
std::pair<int64_t, int64_t> fans(const Tensor& t, const char* op);
/// torch.nn.init.calculate_gain.
double calculate_gain(std::string_view nonlinearity, double param = 0.01);

}  // namespace tg::nn::init
