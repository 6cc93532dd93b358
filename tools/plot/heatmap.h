#pragma once
// Attention heatmaps as SVG: a grid of panels (rows = layers, columns = heads), each a T×S
// matrix of weights in [0, 1] drawn as shaded cells, labelled with the tokens.
#include <string>
#include <vector>

namespace tg::plot {

struct Heatmap {
  std::string title;          ///< "layer 0, head 2"
  int64_t rows = 0, cols = 0;  ///< T queries, S keys
  std::vector<double> values;  ///< row-major [rows, cols], 0..1
};

/// `columns` panels per row; `row_labels`/`col_labels` (query and key tokens) on every panel.
std::string render_heatmaps(const std::vector<Heatmap>& maps, int64_t columns,
                            const std::vector<std::string>& row_labels,
                            const std::vector<std::string>& col_labels, const std::string& title);

}  // namespace tg::plot
