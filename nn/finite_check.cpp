#include "nn/finite_check.h"

#include <fmt/format.h>

#include <cmath>

namespace tg::nn {

namespace {

// "NAME holds NaN (element i of [shape])" for the first value of `t` that is not finite.
std::optional<std::string> non_finite_in(const std::string& name, const Tensor& t) {
  if (!is_floating(t.dtype())) return std::nullopt;
  return dispatch(t.dtype(), [&]<class T>() -> std::optional<std::string> {
    const T* x = t.template data<T>();
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(x[i]))
        return fmt::format("{} holds {} (element {} of {})", name, std::isnan(x[i]) ? "NaN" : "Inf", i,
                           shape_str(t.shape()));
    return std::nullopt;
  });
}

}  // namespace

std::optional<std::string> first_non_finite_parameter(const Module& module) {
  for (const auto& [name, p] : module.named_parameters())
    if (std::optional<std::string> found = non_finite_in(name, p)) return found;
  return std::nullopt;
}

std::optional<std::string> first_non_finite(const StateDict& tensors) {
  for (const auto& [name, t] : tensors)
    if (std::optional<std::string> found = non_finite_in(name, t)) return found;
  return std::nullopt;
}

}  // namespace tg::nn
