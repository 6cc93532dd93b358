#pragma once
// The lines of a text held in memory, for the tokenizers' line formats (GPT-2's merges.txt,
// tiktoken's rank files).
#include <cstddef>
#include <string_view>

namespace tg::models {

/// fn(row, line) for each line of `text` in order, `line` counted from 1 and `row` without its
/// '\n' nor a '\r' before it (a file written on Windows). A last line without '\n' is a line; the
/// empty text has none, and a final '\n' does not start one.
template <class F>
void for_each_line(std::string_view text, F&& fn) {
  size_t line = 0;
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    std::string_view row = text.substr(at, end - at);
    at = end + 1;
    if (!row.empty() && row.back() == '\r') row.remove_suffix(1);
    fn(row, ++line);
  }
}

}  // namespace tg::models
