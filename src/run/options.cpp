#include "run/options.h"

namespace convkit::run {

std::filesystem::path out_dir_for(const TrainOptions& o) {
  return o.out_dir.empty() ? std::filesystem::path("runs") / o.model : std::filesystem::path(o.out_dir);
}

data::FolderOptions folder_options(const TrainOptions& o) { return {!o.image_size.empty(), o.skip_bad}; }

}  // namespace convkit::run
