// Figures drawn with PLplot's cairo PNG driver. Each function writes one PNG atomically.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "report/calibration.h"

namespace convkit::report {

struct Series {
  std::string name;
  std::vector<double> x = {}, y = {};
};

// Line chart with markers and a legend.
void plot_lines(const std::filesystem::path& file, const std::string& title, const std::string& x_label,
                const std::string& y_label, const std::vector<Series>& series);

enum class ColourMap { Bone, Diverging };

struct Panel {
  std::vector<float> pixels;  // row-major, row 0 at the top; for RGB the three planes one after another
  int height = 0, width = 0;
  std::string caption;  // may be empty
  bool rgb = false;     // colour pixels 0..255, drawn as they are rather than through the colour map
};

// A grid of images without axes, each scaled to its own range (Diverging: symmetric about 0).
void plot_image_grid(const std::filesystem::path& file, const std::string& title, const std::vector<Panel>& panels,
                     int rows, int cols, ColourMap colours, int pixel_width = 900);

// Confusion matrix as a labelled heat map with the count in each cell; beyond kLabelledClasses
// classes a heat map alone, which stays readable.
inline constexpr int kLabelledClasses = 20;
void plot_confusion(const std::filesystem::path& file, const std::vector<std::vector<int64_t>>& counts,
                    const std::vector<std::string>& class_names, const std::string& title);

// 2-D scatter, one colour per class, with a legend.
void plot_scatter(const std::filesystem::path& file, const std::string& title, const std::vector<float>& x,
                  const std::vector<float>& y, const std::vector<int64_t>& labels,
                  const std::vector<std::string>& class_names);

// Reliability diagram: each non-empty bin's accuracy as a bar over its confidence range, its
// mean confidence marked on the diagonal (perfect calibration) above or below the bar's top.
void plot_reliability(const std::filesystem::path& file, const std::string& title, const Calibration& calibration);

// The learning-rate range test: the smoothed loss against the learning rate on a log axis, the
// point at `marked` (the suggestion) marked and its learning rate in the legend. At least one
// point.
void plot_lr_range(const std::filesystem::path& file, const std::string& title, const std::vector<double>& lrs,
                   const std::vector<double>& losses, size_t marked);

}  // namespace convkit::report
