#include "report/plots.h"

#include <plplot/plplot.h>

#include <algorithm>
#include <cmath>

#include "util/error.h"
#include "util/files.h"
#include "util/format.h"

namespace convkit::report {
namespace {

// matplotlib's tab10, so the figures look like the tutorial's.
constexpr int kPalette[10][3] = {{31, 119, 180}, {255, 127, 14},  {44, 160, 44},   {214, 39, 40},  {148, 103, 189},
                                 {140, 86, 75},  {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}};
constexpr int kFirstSeriesColour = 2;                      // cmap0: 0 background, 1 axes and text
constexpr int kBarColour = kFirstSeriesColour;             // tab10's blue
constexpr int kConfidenceColour = kFirstSeriesColour + 3;  // tab10's red
constexpr int kDiagonalColour = kFirstSeriesColour + 7;    // tab10's grey
constexpr int kFilledCircle = 850;                         // Hershey symbol

// One PLplot figure: starts a PNG stream on a temp file and renames it into place on close.
class Figure {
 public:
  Figure(const std::filesystem::path& file, int width, int height) : file_(file), tmp_(file) {
    tmp_ += ".tmp";
    plsdev("pngcairo");
    plsfnam(tmp_.string().c_str());
    plspage(0, 0, width, height, 0, 0);
    plscmap0n(16);
    plscol0(0, 255, 255, 255);
    plscol0(1, 20, 20, 20);
    for (int i = 0; i < 10; ++i) plscol0(kFirstSeriesColour + i, kPalette[i][0], kPalette[i][1], kPalette[i][2]);
    plscol0(12, 200, 200, 200);
    plinit();
    plfontld(1);
  }
  ~Figure() {
    if (!closed_) {
      plend();
      std::error_code ec;
      std::filesystem::remove(tmp_, ec);
    }
  }
  void close() {
    plend();
    closed_ = true;
    std::error_code ec;
    std::filesystem::rename(tmp_, file_, ec);
    if (ec) throw file_error(file_.string(), "cannot write figure: " + ec.message());
  }

 private:
  std::filesystem::path file_, tmp_;
  bool closed_ = false;
};

void set_colour_map(ColourMap colours) {
  if (colours == ColourMap::Bone) {
    // matplotlib's 'bone' (its red/green/blue break points merged).
    PLFLT pos[] = {0.0, 0.365079, 0.746032, 1.0};
    PLFLT r[] = {0.0, 0.319444, 0.652778, 1.0};
    PLFLT g[] = {0.0, 0.319444, 0.777778, 1.0};
    PLFLT b[] = {0.0, 0.444444, 0.777778, 1.0};
    plscmap1l(1, 4, pos, r, g, b, nullptr);
  } else {
    PLFLT pos[] = {0.0, 0.5, 1.0};
    PLFLT r[] = {0.23, 0.97, 0.71}, g[] = {0.30, 0.97, 0.02}, b[] = {0.75, 0.97, 0.15};
    plscmap1l(1, 3, pos, r, g, b, nullptr);
  }
  plscmap1n(256);
}

// Draws `values` (row-major, row 0 at the top) as filled cells over [0,cols]x[0,rows] in world
// coordinates, coloured through cmap1 between lo and hi. (plimage places its samples on cell
// edges, which shifts small grids by a cell.)
void draw_cells(const std::vector<float>& values, int rows, int cols, double lo, double hi) {
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const double v = (values[static_cast<size_t>(r) * cols + c] - lo) / (hi - lo);
      plcol1(std::clamp(v, 0.0, 1.0));
      PLFLT x[] = {PLFLT(c), PLFLT(c + 1), PLFLT(c + 1), PLFLT(c)};
      PLFLT y[] = {PLFLT(rows - r - 1), PLFLT(rows - r - 1), PLFLT(rows - r), PLFLT(rows - r)};
      plfill(4, x, y);
    }
  }
}

// An RGB panel's cells, each in its own colour (cmap0's last entry, set for each cell).
void draw_rgb_cells(const Panel& p) {
  const size_t plane = static_cast<size_t>(p.height) * p.width;
  constexpr PLINT kScratch = 15;
  for (int r = 0; r < p.height; ++r) {
    for (int c = 0; c < p.width; ++c) {
      const size_t i = static_cast<size_t>(r) * p.width + c;
      const auto level = [&](size_t at) { return static_cast<PLINT>(std::clamp(p.pixels[at], 0.f, 255.f)); };
      plscol0(kScratch, level(i), level(plane + i), level(2 * plane + i));
      plcol0(kScratch);
      PLFLT x[] = {PLFLT(c), PLFLT(c + 1), PLFLT(c + 1), PLFLT(c)};
      PLFLT y[] = {PLFLT(p.height - r - 1), PLFLT(p.height - r - 1), PLFLT(p.height - r), PLFLT(p.height - r)};
      plfill(4, x, y);
    }
  }
}

// Splits "first\nsecond" captions so each line is drawn on its own.
std::vector<std::string> caption_lines(const std::string& caption) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = caption.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(caption.substr(start, nl - start));
  lines.push_back(caption.substr(start));
  return lines;
}

void draw_accuracy_bars(const Calibration& calibration) {
  for (const CalibrationBin& b : calibration.bins) {
    if (b.count == 0) continue;
    PLFLT x[] = {b.lower, b.upper, b.upper, b.lower, b.lower};
    PLFLT y[] = {0, 0, b.accuracy, b.accuracy, 0};
    plcol0(kBarColour);
    plfill(4, x, y);
    plcol0(1);
    plline(5, x, y);
  }
}

// A dot on the diagonal at each bin's mean confidence, joined to the bar's top: the bin's gap.
void draw_confidence_marks(const Calibration& calibration) {
  std::vector<PLFLT> at;
  plcol0(kConfidenceColour);
  plwidth(2);
  for (const CalibrationBin& b : calibration.bins) {
    if (b.count == 0) continue;
    pljoin(b.confidence, b.accuracy, b.confidence, b.confidence);
    at.push_back(b.confidence);
  }
  plwidth(1);
  plssym(0, 0.8);
  plsym(static_cast<PLINT>(at.size()), at.data(), at.data(), kFilledCircle);
}

void draw_diagonal() {
  plcol0(kDiagonalColour);
  pllsty(2);
  pljoin(0, 0, 1, 1);
  pllsty(1);
}

void reliability_legend() {
  const PLINT opts[] = {PL_LEGEND_COLOR_BOX, PL_LEGEND_SYMBOL, PL_LEGEND_LINE};
  const char* texts[] = {"accuracy", "mean confidence", "perfect calibration"};
  const PLINT text_colours[] = {1, 1, 1};
  const PLINT box_colours[] = {kBarColour, 0, 0}, box_patterns[] = {0, 0, 0};
  const PLFLT box_scales[] = {0.8, 0, 0}, box_widths[] = {1, 0, 0};
  const PLINT line_colours[] = {0, 0, kDiagonalColour}, line_styles[] = {1, 1, 2};
  const PLFLT line_widths[] = {0, 0, 1.5};
  const PLINT symbol_colours[] = {0, kConfidenceColour, 0}, symbol_numbers[] = {0, 1, 0};
  const PLFLT symbol_scales[] = {0, 1.2, 0};
  const char* symbols[] = {"", "#(850)", ""};
  PLFLT width, height;
  pllegend(&width, &height, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
           PL_POSITION_INSIDE | PL_POSITION_LEFT | PL_POSITION_TOP, 0.02, 0.02, 0.1, 0, 1, 1, 0, 0, 3, opts, 1.0, 1.0,
           2.0, 1.0, text_colours, texts, box_colours, box_patterns, box_scales, box_widths, line_colours, line_styles,
           line_widths, symbol_colours, symbol_scales, symbol_numbers, symbols);
}

void lr_range_legend(const std::string& suggestion) {
  const PLINT opts[] = {PL_LEGEND_LINE, PL_LEGEND_SYMBOL | PL_LEGEND_LINE};
  const char* texts[] = {"smoothed loss", suggestion.c_str()};
  const PLINT text_colours[] = {1, 1};
  const PLINT box_colours[] = {0, 0}, box_patterns[] = {0, 0};
  const PLFLT box_scales[] = {0, 0}, box_widths[] = {0, 0};
  const PLINT line_colours[] = {kFirstSeriesColour, kConfidenceColour}, line_styles[] = {1, 2};
  const PLFLT line_widths[] = {2.5, 1.5};
  const PLINT symbol_colours[] = {0, kConfidenceColour}, symbol_numbers[] = {0, 1};
  const PLFLT symbol_scales[] = {0, 1.2};
  const char* symbols[] = {"", "#(850)"};
  PLFLT width, height;
  pllegend(&width, &height, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
           PL_POSITION_INSIDE | PL_POSITION_LEFT | PL_POSITION_BOTTOM, 0.02, 0.02, 0.1, 0, 1, 1, 0, 0, 2, opts, 1.0,
           1.0, 2.0, 1.0, text_colours, texts, box_colours, box_patterns, box_scales, box_widths, line_colours,
           line_styles, line_widths, symbol_colours, symbol_scales, symbol_numbers, symbols);
}

// The suggestion: a dashed line across the plot at its learning rate, a dot on the curve.
void draw_lr_mark(PLFLT x, PLFLT y, PLFLT y_low, PLFLT y_high) {
  plcol0(kConfidenceColour);
  pllsty(2);
  plwidth(1.5);
  pljoin(x, y_low, x, y_high);
  pllsty(1);
  plwidth(1);
  plssym(0, 1.0);
  plsym(1, &x, &y, kFilledCircle);
}

}  // namespace

void plot_lines(const std::filesystem::path& file, const std::string& title, const std::string& x_label,
                const std::string& y_label, const std::vector<Series>& series) {
  Figure fig(file, 800, 560);
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& s : series) {
    for (double v : s.x) x0 = std::min(x0, v), x1 = std::max(x1, v);
    for (double v : s.y) y0 = std::min(y0, v), y1 = std::max(y1, v);
  }
  if (x1 <= x0) x0 -= 1, x1 += 1;
  if (y1 <= y0) y0 -= 0.5, y1 += 0.5;
  const double pad_y = (y1 - y0) * 0.08, pad_x = (x1 - x0) * 0.03;
  pladv(0);
  plvpor(0.1, 0.95, 0.12, 0.9);
  plwind(x0 - pad_x, x1 + pad_x, y0 - pad_y, y1 + pad_y);
  plcol0(12);
  plbox("g", 0, 0, "g", 0, 0);
  plcol0(1);
  plbox("bcnst", 0, 0, "bcnstv", 0, 0);
  pllab(x_label.c_str(), y_label.c_str(), title.c_str());
  std::vector<PLINT> opts, styles, line_colours;
  std::vector<PLFLT> widths;
  std::vector<const char*> texts;
  for (size_t i = 0; i < series.size(); ++i) {
    const PLINT colour = kFirstSeriesColour + static_cast<PLINT>(i % 10);
    plcol0(colour);
    plwidth(2.5);
    plline(static_cast<PLINT>(series[i].x.size()), series[i].x.data(), series[i].y.data());
    plpoin(static_cast<PLINT>(series[i].x.size()), series[i].x.data(), series[i].y.data(), 17);
    opts.push_back(PL_LEGEND_LINE);
    line_colours.push_back(colour);
    styles.push_back(1);
    widths.push_back(2.5);
    texts.push_back(series[i].name.c_str());
  }
  plwidth(1);
  PLFLT legend_w, legend_h;
  std::vector<PLINT> zeros(series.size(), 0), text_colours(series.size(), 1);
  std::vector<PLFLT> zero_f(series.size(), 0);
  std::vector<const char*> no_symbols(series.size(), "");
  pllegend(&legend_w, &legend_h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
           PL_POSITION_INSIDE | PL_POSITION_RIGHT | PL_POSITION_BOTTOM, 0.02, 0.02, 0.1, 0, 1, 1, 0, 0,
           static_cast<PLINT>(series.size()), opts.data(), 1.0, 1.0, 2.0, 1.0, text_colours.data(), texts.data(),
           zeros.data(), zeros.data(), zero_f.data(), zero_f.data(), line_colours.data(), styles.data(), widths.data(),
           zeros.data(), zero_f.data(), zeros.data(), no_symbols.data());
  fig.close();
}

void plot_image_grid(const std::filesystem::path& file, const std::string& title, const std::vector<Panel>& panels,
                     int rows, int cols, ColourMap colours, int pixel_width) {
  const bool captions = std::any_of(panels.begin(), panels.end(), [](const Panel& p) { return !p.caption.empty(); });
  const double cell_aspect = captions ? 1.4 : 1.0;
  const int height = static_cast<int>(pixel_width * rows * cell_aspect / cols) + (title.empty() ? 0 : 50);
  Figure fig(file, pixel_width, height);
  set_colour_map(colours);
  const double top = title.empty() ? 1.0 : 1.0 - 50.0 / height;
  pladv(0);
  if (!title.empty()) {
    plvpor(0, 1, top, 1);
    plwind(0, 1, 0, 1);
    plcol0(1);
    plschr(0, 0.9);
    plptex(0.5, 0.35, 1, 0, 0.5, title.c_str());
  }
  const double cw = 1.0 / cols, ch = top / rows;
  for (size_t k = 0; k < panels.size() && static_cast<int>(k) < rows * cols; ++k) {
    const Panel& p = panels[k];
    const int r = static_cast<int>(k) / cols, c = static_cast<int>(k) % cols;
    const double x0 = c * cw + cw * 0.06, x1 = (c + 1) * cw - cw * 0.06;
    const double y1 = top - r * ch - ch * (captions ? 0.3 : 0.05), y0 = top - (r + 1) * ch + ch * 0.05;
    plvpor(x0, x1, y0, y1);
    plwind(0, p.width, 0, p.height);
    if (p.rgb) {
      draw_rgb_cells(p);
    } else {
      auto [lo_it, hi_it] = std::minmax_element(p.pixels.begin(), p.pixels.end());
      double lo = *lo_it, hi = *hi_it;
      if (colours == ColourMap::Diverging) hi = std::max(std::abs(lo), std::abs(hi)), lo = -hi;
      if (hi <= lo) hi = lo + 1;
      draw_cells(p.pixels, p.height, p.width, lo, hi);
    }
    plcol0(1);
    plschr(0, 0.6);
    const auto lines = caption_lines(p.caption);
    for (size_t l = 0; l < lines.size(); ++l) {
      plmtex("t", 0.9 + 1.5 * (lines.size() - 1 - l), 0.5, 0.5, lines[l].c_str());
    }
  }
  fig.close();
}

void plot_confusion(const std::filesystem::path& file, const std::vector<std::vector<int64_t>>& counts,
                    const std::vector<std::string>& class_names, const std::string& title) {
  const int n = static_cast<int>(counts.size());
  Figure fig(file, 900, 820);
  // A white-to-blue scale like matplotlib's 'Blues'.
  PLFLT pos[] = {0.0, 1.0}, r[] = {0.97, 0.03}, g[] = {0.98, 0.19}, b[] = {1.0, 0.42};
  plscmap1l(1, 2, pos, r, g, b, nullptr);
  plscmap1n(256);
  pladv(0);
  plvpor(0.2, 0.95, 0.2, 0.92);
  plwind(0, n, 0, n);
  double max_count = 1;
  for (const auto& row : counts)
    for (int64_t v : row) max_count = std::max(max_count, static_cast<double>(v));
  std::vector<float> cells;
  for (const auto& row : counts)
    for (int64_t v : row) cells.push_back(static_cast<float>(v));
  draw_cells(cells, n, n, 0, max_count);
  plcol0(1);
  plbox("bc", 1, 0, "bc", 1, 0);
  plschr(0, 0.75);
  const bool labelled = n <= kLabelledClasses;
  for (int t = 0; t < n && labelled; ++t) {
    for (int p = 0; p < n; ++p) {
      const double v = static_cast<double>(counts[t][p]);
      plcol0(v > 0.5 * max_count ? 0 : 1);
      plptex(p + 0.5, n - t - 0.5 - 0.12, 1, 0, 0.5, std::to_string(counts[t][p]).c_str());
    }
  }
  plcol0(1);
  plschr(0, 0.8);
  for (int k = 0; k < n && labelled; ++k) {
    plmtex("lv", 0.8, (n - k - 0.5) / n, 1.0, class_names[k].c_str());
    plmtex("bv", 0.8, (k + 0.5) / n, 1.0, class_names[k].c_str());
  }
  plschr(0, 1.0);
  plmtex("t", 1.5, 0.5, 0.5, title.c_str());
  plmtex("l", 8.5, 0.5, 0.5, "True class");
  plmtex("b", 9.0, 0.5, 0.5, "Predicted class");
  fig.close();
}

void plot_scatter(const std::filesystem::path& file, const std::string& title, const std::vector<float>& x,
                  const std::vector<float>& y, const std::vector<int64_t>& labels,
                  const std::vector<std::string>& class_names) {
  Figure fig(file, 900, 760);
  const auto [x0, x1] = std::minmax_element(x.begin(), x.end());
  const auto [y0, y1] = std::minmax_element(y.begin(), y.end());
  const double px = (*x1 - *x0) * 0.05 + 1e-9, py = (*y1 - *y0) * 0.05 + 1e-9;
  pladv(0);
  plvpor(0.08, 0.74, 0.1, 0.92);
  plwind(*x0 - px, *x1 + px, *y0 - py, *y1 + py);
  plcol0(1);
  plbox("bcnst", 0, 0, "bcnstv", 0, 0);
  pllab("", "", title.c_str());
  plssym(0, 0.55);
  const int classes = static_cast<int>(class_names.size());
  for (int c = 0; c < classes; ++c) {
    std::vector<PLFLT> cx, cy;
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == c) cx.push_back(x[i]), cy.push_back(y[i]);
    plcol0(kFirstSeriesColour + c % 10);
    plsym(static_cast<PLINT>(cx.size()), cx.data(), cy.data(), kFilledCircle);
  }
  std::vector<PLINT> opts(classes, PL_LEGEND_SYMBOL), colours(classes), zeros(classes, 0), ones(classes, 1);
  std::vector<PLFLT> scales(classes, 1.2), zero_f(classes, 0);
  std::vector<const char*> texts(classes), symbols(classes, "#(850)");
  for (int c = 0; c < classes; ++c) colours[c] = kFirstSeriesColour + c % 10, texts[c] = class_names[c].c_str();
  std::vector<PLINT> text_colours(classes, 1);
  PLFLT w, h;
  pllegend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX, PL_POSITION_OUTSIDE | PL_POSITION_RIGHT, 0.02, 0.0,
           0.1, 0, 1, 1, 0, 0, classes, opts.data(), 1.0, 1.0, 2.0, 1.0, text_colours.data(), texts.data(),
           zeros.data(), zeros.data(), zero_f.data(), zero_f.data(), zeros.data(), ones.data(), zero_f.data(),
           colours.data(), scales.data(), ones.data(), symbols.data());
  fig.close();
}

void plot_reliability(const std::filesystem::path& file, const std::string& title, const Calibration& calibration) {
  Figure fig(file, 760, 720);
  pladv(0);
  plvpor(0.1, 0.95, 0.1, 0.92);
  plwind(0, 1, 0, 1);
  plcol0(12);
  plbox("g", 0.1, 0, "g", 0.1, 0);
  draw_accuracy_bars(calibration);
  draw_diagonal();
  draw_confidence_marks(calibration);
  plcol0(1);
  plbox("bcnst", 0.1, 0, "bcnstv", 0.1, 0);
  pllab("Confidence (highest probability)", "Accuracy", title.c_str());
  reliability_legend();
  fig.close();
}

void plot_lr_range(const std::filesystem::path& file, const std::string& title, const std::vector<double>& lrs,
                   const std::vector<double>& losses, size_t marked) {
  Figure fig(file, 800, 560);
  // PLplot's log axes label the decades of data given as their logarithms.
  std::vector<PLFLT> x, y(losses.begin(), losses.end());
  for (double lr : lrs) x.push_back(std::log10(lr));
  const auto [x0, x1] = std::minmax_element(x.begin(), x.end());
  const auto [y0, y1] = std::minmax_element(y.begin(), y.end());
  double lo_x = *x0, hi_x = *x1, lo_y = *y0, hi_y = *y1;
  if (hi_x <= lo_x) lo_x -= 1, hi_x += 1;
  if (hi_y <= lo_y) lo_y -= 0.5, hi_y += 0.5;
  const double pad_x = (hi_x - lo_x) * 0.03, pad_y = (hi_y - lo_y) * 0.08;
  lo_x -= pad_x, hi_x += pad_x, lo_y -= pad_y, hi_y += pad_y;
  pladv(0);
  plvpor(0.1, 0.95, 0.12, 0.9);
  plwind(lo_x, hi_x, lo_y, hi_y);
  plcol0(12);
  plbox("g", 0, 0, "g", 0, 0);
  plcol0(1);
  plbox("bclnst", 0, 0, "bcnstv", 0, 0);
  pllab("Learning rate", "Smoothed training loss", title.c_str());
  plcol0(kFirstSeriesColour);
  plwidth(2.5);
  plline(static_cast<PLINT>(x.size()), x.data(), y.data());
  plwidth(1);
  draw_lr_mark(x[marked], y[marked], lo_y, hi_y);
  lr_range_legend(strprintf("steepest descent: lr %.3g", lrs[marked]));
  fig.close();
}

}  // namespace convkit::report
