#include "nn/init.h"

#include <cmath>

#include "autograd/error.h"
#include "autograd/tape.h"

namespace tg::nn::init {
namespace {

// Values computed in f64 from the generator, then copied in (so f32 and f64 parameters of the
// same seed start from the same numbers, rounded).
void assign(Tensor& t, const Tensor& values) {
  NoGradGuard no_grad;
  t.copy_(values);
}

double fan_for(const Tensor& t, std::string_view mode, const char* op) {
  auto [fan_in, fan_out] = fans(t, op);
  TG_CHECK(mode == "fan_in" || mode == "fan_out", "{}: mode must be fan_in or fan_out, got '{}'", op,
           mode);
  return static_cast<double>(mode == "fan_in" ? fan_in : fan_out);
}

}  // namespace

void zeros_(Tensor& t) { constant_(t, 0.0); }
void ones_(Tensor& t) { constant_(t, 1.0); }

void constant_(Tensor& t, double value) {
  NoGradGuard no_grad;
  t.fill_(value);
}

void normal_(Tensor& t, double mean, double std, Generator& gen) {
  TG_CHECK(std >= 0, "normal_: std must be >= 0, got {}", std);
  Tensor v = randn(t.shape(), gen, DType::f64);
  double* p = v.data<double>();
  for (int64_t i = 0; i < v.numel(); ++i) p[i] = mean + std * p[i];
  assign(t, v);
}

void uniform_(Tensor& t, double a, double b, Generator& gen) {
  TG_CHECK(a <= b, "uniform_: need a <= b, got a={} b={}", a, b);
  Tensor v = rand(t.shape(), gen, DType::f64);
  double* p = v.data<double>();
  for (int64_t i = 0; i < v.numel(); ++i) p[i] = a + (b - a) * p[i];
  assign(t, v);
}

std::pair<int64_t, int64_t> fans(const Tensor& t, const char* op) {
  TG_CHECK(t.dim() >= 2, "{}: fan in and fan out need a tensor of rank >= 2, got shape {}", op,
           shape_str(t.shape()));
  int64_t receptive = 1;
  for (int64_t i = 2; i < t.dim(); ++i) receptive *= t.size(i);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

double calculate_gain(std::string_view nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "sigmoid") return 1.0;
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  fail("calculate_gain: unknown nonlinearity '{}'", nonlinearity);
}

void xavier_uniform_(Tensor& t, double gain, Generator& gen) {
  auto [fan_in, fan_out] = fans(t, "xavier_uniform_");
  double r = gain * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  uniform_(t, -r, r, gen);
}

void xavier_normal_(Tensor& t, double gain, Generator& gen) {
  auto [fan_in, fan_out] = fans(t, "xavier_normal_");
  normal_(t, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fan_in + fan_out)), gen);
}

void kaiming_uniform_(Tensor& t, double a, std::string_view mode, std::string_view nonlinearity,
                      Generator& gen) {
  double fan = fan_for(t, mode, "kaiming_uniform_");
  double r = calculate_gain(nonlinearity, a) * std::sqrt(3.0 / fan);
  uniform_(t, -r, r, gen);
}

void kaiming_normal_(Tensor& t, double a, std::string_view mode, std::string_view nonlinearity,
                     Generator& gen) {
  double fan = fan_for(t, mode, "kaiming_normal_");
  normal_(t, 0.0, calculate_gain(nonlinearity, a) / std::sqrt(fan), gen);
}

}  // namespace tg::nn::init
