#pragma once
// Scalar types: f32 by default, f64 for gradient checks; i64 for indices (class ids, token ids)
// and b8 (bool) for masks, as torch.long and torch.bool. Kernels are templated on the scalar;
// dispatch() turns a runtime DType into a template argument.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "autograd/error.h"

namespace tg {

enum class DType { f32, f64, i64, b8 };

inline constexpr std::size_t element_size(DType d) {
  return d == DType::f32 ? 4 : d == DType::b8 ? 1 : 8;
}
inline constexpr std::string_view dtype_name(DType d) {
  return d == DType::f32 ? "f32" : d == DType::f64 ? "f64" : d == DType::i64 ? "i64" : "b8";
}
inline constexpr bool is_floating(DType d) { return d == DType::f32 || d == DType::f64; }

template <class T> inline constexpr DType dtype_of = DType::f32;
template <> inline constexpr DType dtype_of<double> = DType::f64;
template <> inline constexpr DType dtype_of<int64_t> = DType::i64;
template <> inline constexpr DType dtype_of<bool> = DType::b8;

/// Calls fn.template operator()<T>() with T = float or double, as `d` says:
///   dispatch(x.dtype(), [&]<class T>() { kernel<T>(x.data<T>(), ...); });
/// Throws tg::Error for an integer or bool dtype (check with is_floating first to name the op).
template <class F>
decltype(auto) dispatch(DType d, F&& fn) {
  if (d == DType::f32) return fn.template operator()<float>();
  if (d == DType::f64) return fn.template operator()<double>();
  fail("expected a floating tensor (f32 or f64), got {}", dtype_name(d));
}

/// Like dispatch(), over every dtype (float, double, int64_t, bool).
template <class F>
decltype(auto) dispatch_all(DType d, F&& fn) {
  switch (d) {
    case DType::f32: return fn.template operator()<float>();
    case DType::f64: return fn.template operator()<double>();
    case DType::i64: return fn.template operator()<int64_t>();
    default: return fn.template operator()<bool>();
  }
}

}  // namespace tg

template <>
struct fmt::formatter<tg::DType> : fmt::formatter<std::string_view> {
  auto format(tg::DType d, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(tg::dtype_name(d), ctx);
  }
};
