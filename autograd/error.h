#pragma once
// tg::Error: every user-facing failure. Its message names the op (or file) and the shapes.
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace tg {

/// The exception tapegrad throws for bad input and misuse. what() names the op and the shapes.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

/// Throws tg::Error with a fmt-formatted message.
template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace tg

/// Checks a condition on user input (in Release builds too); throws tg::Error otherwise.
#define TG_CHECK(cond, ...)                 \
  do {                                      \
    if (!(cond)) ::tg::fail(__VA_ARGS__);   \
  } while (0)
