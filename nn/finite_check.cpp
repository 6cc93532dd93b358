#include "nn/finite_check.h"

#include <fmt/format.h>

#include <cmath>

namespace tg::nn {

std::optional<std::string> first_non_finite_parameter(const Module& module) {
  for (const auto& [name, p] : module.named_parameters()) {
    if (!is_floating(p.dtype())) continue;
    std::optional<std::string> found = dispatch(p.dtype(), [&]<class T>() -> std::optional<std::string> {
      const T* x = p.template data<T>();
      for (int64_t i = 0; i < p.numel(); ++i)
        if (!std::isfinite(x[i]))
          return fmt::format("{} holds {} (element {} of {})", name, std::isnan(x[i]) ? "NaN" : "Inf", i,
                             shape_str(p.shape()));
      return std::nullopt;
    });
    if (found) return found;
  }
  return std::nullopt;
}

}  // namespace tg::nn
