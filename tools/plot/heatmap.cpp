#include "tools/plot/heatmap.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "tools/plot/xml_escape.h"

namespace tg::plot {
namespace {

// White (0) to dark blue (1), with a square root so small weights stay visible.
std::string shade(double v) {
  double t = std::sqrt(std::clamp(v, 0.0, 1.0));
  int r = int(255 - t * (255 - 8)), g = int(255 - t * (255 - 48)), b = int(255 - t * (255 - 107));
  return fmt::format("#{:02x}{:02x}{:02x}", r, g, b);
}

}  // namespace

std::string render_heatmaps(const std::vector<Heatmap>& maps, int64_t columns, const std::vector<std::string>& row_labels,
                            const std::vector<std::string>& col_labels, const std::string& title) {
  int64_t T = maps.empty() ? 0 : maps[0].rows, S = maps.empty() ? 0 : maps[0].cols;
  double cell = std::clamp(320.0 / double(std::max<int64_t>(T, S)), 4.0, 18.0);
  double label_w = 24, panel_w = label_w + cell * double(S) + 16, panel_h = 22 + cell * double(T) + label_w + 10;
  int64_t cols = std::max<int64_t>(1, columns), rows = (int64_t(maps.size()) + cols - 1) / cols;
  double width = panel_w * double(cols) + 10, height = 36 + panel_h * double(rows);
  bool show_labels = cell >= 8;
  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{1}" viewBox="0 0 {0} {1}" font-family="monospace">)"
      R"(<rect width="100%" height="100%" fill="white"/>)"
      R"(<text x="10" y="22" font-size="15" font-family="sans-serif" font-weight="bold">{2}</text>)",
      width, height, xml_escape(title));
  for (size_t m = 0; m < maps.size(); ++m) {
    double ox = 5 + panel_w * double(int64_t(m) % cols), oy = 36 + panel_h * double(int64_t(m) / cols);
    svg += fmt::format(R"(<text x="{}" y="{}" font-size="11" font-family="sans-serif">{}</text>)", ox + label_w, oy + 12,
                       xml_escape(maps[m].title));
    double gx = ox + label_w, gy = oy + 18;
    for (int64_t t = 0; t < T; ++t)
      for (int64_t s = 0; s < S; ++s)
        svg += fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}"/>)", gx + cell * s,
                           gy + cell * t, cell, cell, shade(maps[m].values[size_t(t * S + s)]));
    svg += fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#888"/>)", gx, gy, cell * S, cell * T);
    if (!show_labels) continue;
    double fs = std::min(cell * 0.8, 11.0);
    for (int64_t t = 0; t < T && t < int64_t(row_labels.size()); ++t)
      svg += fmt::format(R"(<text x="{}" y="{:.1f}" font-size="{:.1f}" text-anchor="end">{}</text>)", gx - 3,
                         gy + cell * (t + 0.75), fs, xml_escape(row_labels[size_t(t)], true));
    for (int64_t s = 0; s < S && s < int64_t(col_labels.size()); ++s)
      svg += fmt::format(R"(<text x="{:.1f}" y="{:.1f}" font-size="{:.1f}" text-anchor="middle">{}</text>)",
                         gx + cell * (s + 0.5), gy + cell * T + fs + 2, fs, xml_escape(col_labels[size_t(s)], true));
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace tg::plot
