#pragma once
// Line charts as SVG, for the benches: one panel per quantity, one line per series, linear or
// logarithmic axes. Self-contained (no plotting library).
#include <string>
#include <vector>

namespace tg::plot {

struct Series {
  std::string name;
  std::vector<double> x, y;  ///< points in x order; non-positive values are skipped on log axes
};

struct Panel {
  std::string title;
  std::string x_label, y_label;
  bool log_x = true, log_y = true;
  std::vector<Series> series;
};

/// The panels side by side, with a shared legend (series matched by name, one colour each).
std::string render_svg(const std::vector<Panel>& panels);

}  // namespace tg::plot
