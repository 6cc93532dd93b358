#pragma once
// Size arithmetic that cannot overflow silently: products and sums of element counts, byte
// counts, B·T token counts and the like, from flags, config files and file headers alike.
// Every function refuses negative sizes and results beyond int64_t.
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string_view>

#include "autograd/shape.h"

namespace tg {

/// a·b, or std::nullopt when a or b is negative or the product exceeds INT64_MAX.
std::optional<int64_t> checked_mul(int64_t a, int64_t b);
/// a + b, or std::nullopt when a or b is negative or the sum exceeds INT64_MAX.
std::optional<int64_t> checked_add(int64_t a, int64_t b);
/// The product of `sizes` (1 for none; 0 when one is 0), or std::nullopt as checked_mul.
std::optional<int64_t> checked_product(std::span<const int64_t> sizes);

/// The product of `sizes`; throws tg::Error "{what}: the product 3 × 5 × ... is negative or
/// overflows int64" otherwise. `what` names the flags, fields or file the sizes came from.
int64_t product_or_fail(std::initializer_list<int64_t> sizes, std::string_view what);
/// The sum of `sizes`; throws tg::Error naming `what` as product_or_fail does.
int64_t sum_or_fail(std::initializer_list<int64_t> sizes, std::string_view what);

/// Bytes of a contiguous tensor of `shape` with elements of `element_size` bytes; throws
/// tg::Error naming `op` and the shape for a negative size or a count beyond int64_t.
/// (Here rather than in shape.h, which nearly every file includes.)
int64_t shape_bytes(const Shape& shape, int64_t element_size, std::string_view op);

}  // namespace tg
