#pragma once
// Text for SVG: XML's special characters escaped, control characters shown as '?'.
#include <string>

namespace tg::plot {

/// `s` escaped for an SVG text node or attribute; with `token`, blanks and newlines also become
/// visible symbols (␣, ⏎), as the attention heatmaps label their prompt's tokens.
inline std::string xml_escape(const std::string& s, bool token = false) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else if (c == '"') out += "&quot;";
    else if (token && c == ' ') out += "␣";
    else if (token && c == '\n') out += "⏎";
    else if (c < 32) out += "?";
    else out += char(c);
  }
  return out;
}

}  // namespace tg::plot
