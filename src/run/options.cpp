#include "run/options.h"

#include <tuple>

namespace convkit::run {

std::filesystem::path out_dir_for(const TrainOptions& o) {
  return o.out_dir.empty() ? std::filesystem::path("runs") / o.model : std::filesystem::path(o.out_dir);
}

data::DataOptions data_options(const TrainOptions& o) {
  data::DataOptions d;
  d.format = o.dataset;
  d.channels = o.channels;
  if (!o.image_size.empty()) std::tie(d.height, d.width) = data::parse_image_size(o.image_size, "--image-size");
  d.skip_bad = o.skip_bad;
  d.coarse_labels = o.label == "coarse";
  d.max_memory = static_cast<uint64_t>(o.max_memory) << 20;
  d.test_split = o.test_split;
  return d;
}

}  // namespace convkit::run
