#include "tools/plot/svg_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "autograd/error.h"
#include "tools/plot/xml_escape.h"

namespace tg::plot {
namespace {

constexpr double kPanelW = 460, kPanelH = 340, kLeft = 70, kRight = 20, kTop = 40, kBottom = 55;
const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"};

struct Axis {
  bool log;
  double lo, hi;
  double map(double v, double from, double to) const {
    double a = log ? std::log10(lo) : lo, b = log ? std::log10(hi) : hi, x = log ? std::log10(v) : v;
    double f = b > a ? (x - a) / (b - a) : 0.5;
    return from + f * (to - from);
  }
};

Axis fit(const std::vector<double>& values, bool log) {
  double lo = INFINITY, hi = -INFINITY;
  for (double v : values)
    if (std::isfinite(v) && (!log || v > 0)) lo = std::min(lo, v), hi = std::max(hi, v);
  if (!std::isfinite(lo)) lo = 1, hi = 10;
  if (log) {
    lo = std::pow(10, std::floor(std::log10(lo)));
    hi = std::pow(10, std::ceil(std::log10(hi)));
    if (hi <= lo) hi = lo * 10;
  } else {
    if (hi <= lo) hi = lo + 1;
    double pad = 0.05 * (hi - lo);
    lo -= pad, hi += pad;
  }
  return {log, lo, hi};
}

// Tick values: powers of 10 (log y), the data's own x values (log x, e.g. sequence lengths), or
// five even steps (linear).
std::vector<double> ticks(const Axis& a, const std::vector<double>& data_x, bool is_x) {
  std::vector<double> t;
  if (a.log && is_x) {
    t = data_x;
    std::sort(t.begin(), t.end());
    t.erase(std::unique(t.begin(), t.end()), t.end());
  } else if (a.log) {
    for (double v = a.lo; v <= a.hi * 1.0001; v *= 10) t.push_back(v);
  } else {
    for (int i = 0; i <= 4; ++i) t.push_back(a.lo + (a.hi - a.lo) * i / 4);
  }
  return t;
}

std::string label(double v) {
  if (v >= 1e4 || (v < 1e-2 && v > 0)) return fmt::format("{:.0e}", v);
  return fmt::format("{:g}", v);
}

void render_panel(std::string& svg, const Panel& p, double ox, const std::map<std::string, const char*>& colour) {
  std::vector<double> xs, ys;
  for (const Series& s : p.series) {
    xs.insert(xs.end(), s.x.begin(), s.x.end());
    ys.insert(ys.end(), s.y.begin(), s.y.end());
  }
  Axis ax = fit(xs, p.log_x), ay = fit(ys, p.log_y);
  double x0 = ox + kLeft, x1 = ox + kPanelW - kRight, y0 = kTop + kPanelH - kBottom, y1 = kTop;
  svg += fmt::format(R"(<text x="{}" y="{}" font-size="15" text-anchor="middle" font-weight="bold">{}</text>)",
                     (x0 + x1) / 2, kTop - 14, xml_escape(p.title));
  svg += fmt::format(R"(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#333"/>)", x0, y1,
                     x1 - x0, y0 - y1);
  for (double t : ticks(ax, xs, true)) {
    double x = ax.map(t, x0, x1);
    svg += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" stroke="#ddd"/>)", x, y0, y1);
    svg += fmt::format(R"(<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>)", x, y0 + 15, label(t));
  }
  for (double t : ticks(ay, ys, false)) {
    double y = ay.map(t, y0, y1);
    svg += fmt::format(R"(<line x1="{0}" y1="{1}" x2="{2}" y2="{1}" stroke="#ddd"/>)", x0, y, x1);
    svg += fmt::format(R"(<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>)", x0 - 5, y + 4, label(t));
  }
  svg += fmt::format(R"(<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>)", (x0 + x1) / 2,
                     y0 + 38, xml_escape(p.x_label));
  svg += fmt::format(R"svg(<text x="{0}" y="{1}" font-size="12" text-anchor="middle" transform="rotate(-90 {0} {1})">{2}</text>)svg",
                     ox + 16, (y0 + y1) / 2, xml_escape(p.y_label));
  for (const Series& s : p.series) {
    std::string points;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if ((p.log_x && s.x[i] <= 0) || (p.log_y && s.y[i] <= 0) || !std::isfinite(s.y[i])) continue;
      double x = ax.map(s.x[i], x0, x1), y = ay.map(s.y[i], y0, y1);
      points += fmt::format("{:.1f},{:.1f} ", x, y);
      svg += fmt::format(R"(<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"/>)", x, y, colour.at(s.name));
    }
    svg += fmt::format(R"(<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>)", points,
                       colour.at(s.name));
  }
}

}  // namespace

std::string render_svg(const std::vector<Panel>& panels) {
  std::map<std::string, const char*> colour;
  std::vector<std::string> order;
  for (const Panel& p : panels)
    for (const Series& s : p.series)
      if (!colour.count(s.name)) {
        colour[s.name] = kColours[order.size() % std::size(kColours)];
        order.push_back(s.name);
      }
  double width = kPanelW * std::max<size_t>(panels.size(), 1), legend_h = 30;
  double height = kTop + kPanelH + legend_h;
  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{0}" height="{1}" viewBox="0 0 {0} {1}" font-family="sans-serif">)"
      R"(<rect width="100%" height="100%" fill="white"/>)",
      width, height);
  for (size_t i = 0; i < panels.size(); ++i) render_panel(svg, panels[i], kPanelW * i, colour);
  double lx = kLeft, ly = kTop + kPanelH + 10;
  for (const std::string& name : order) {
    svg += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="3"/>)", lx, ly, lx + 22, ly,
                       colour[name]);
    svg += fmt::format(R"(<text x="{}" y="{}" font-size="12">{}</text>)", lx + 28, ly + 4, xml_escape(name));
    lx += 40 + 8.0 * name.size();
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace tg::plot
