#include "autograd/checked_size.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <string>

#include "autograd/error.h"

namespace tg {

std::optional<int64_t> checked_mul(int64_t a, int64_t b) {
  int64_t out;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &out)) return std::nullopt;
  return out;
}

std::optional<int64_t> checked_add(int64_t a, int64_t b) {
  int64_t out;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &out)) return std::nullopt;
  return out;
}

std::optional<int64_t> checked_product(std::span<const int64_t> sizes) {
  // A zero anywhere makes the product 0, however large the sizes before it.
  if (std::find(sizes.begin(), sizes.end(), 0) != sizes.end() &&
      std::none_of(sizes.begin(), sizes.end(), [](int64_t s) { return s < 0; }))
    return 0;
  int64_t out = 1;
  for (int64_t s : sizes) {
    std::optional<int64_t> next = checked_mul(out, s);
    if (!next) return std::nullopt;
    out = *next;
  }
  return out;
}

int64_t product_or_fail(std::initializer_list<int64_t> sizes, std::string_view what) {
  std::optional<int64_t> p = checked_product(std::span<const int64_t>(sizes.begin(), sizes.size()));
  if (!p) fail("{}: the product {} is negative or overflows int64", what, fmt::join(sizes, " × "));
  return *p;
}

int64_t sum_or_fail(std::initializer_list<int64_t> sizes, std::string_view what) {
  int64_t out = 0;
  for (int64_t s : sizes) {
    std::optional<int64_t> next = checked_add(out, s);
    if (!next) fail("{}: the sum {} is negative or overflows int64", what, fmt::join(sizes, " + "));
    out = *next;
  }
  return out;
}

int64_t shape_bytes(const Shape& shape, int64_t element_size, std::string_view op) {
  check_sizes(shape, std::string(op).c_str());
  std::optional<int64_t> n = checked_product(shape);
  std::optional<int64_t> bytes = n ? checked_mul(*n, element_size) : std::nullopt;
  if (!bytes)
    fail("{}: a tensor of shape {} with {}-byte elements has more bytes than int64 can count", op,
         shape_str(shape), element_size);
  return *bytes;
}

}  // namespace tg
