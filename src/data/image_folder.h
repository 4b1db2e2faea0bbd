// Image-folder datasets laid out as torchvision's ImageFolder reads them: ROOT/<class>/.../<file>,
// the classes being the sorted names of ROOT's folders and each class's files taken in sorted
// order (subfolders included, as os.walk visits them).
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace convkit::data {

struct ImageFolderListing {
  std::vector<std::string> classes;
  std::vector<std::filesystem::path> files;  // class by class, each in sorted order
  std::vector<int64_t> labels;               // per file, an index into `classes`
};

// How many of the listing's files are read: the first `limit`, or all when `limit` is 0.
int64_t files_to_read(const ImageFolderListing& listing, int64_t limit);

// Bounds on a tree: the files it may hold and how deep its folders may nest.
inline constexpr size_t kMaxFolderImages = size_t{10} << 20;
inline constexpr int kMaxFolderDepth = 32;

// Whether a file name is taken as an image: torchvision's IMG_EXTENSIONS (.jpg .jpeg .png .ppm
// .bmp .pgm .tif .tiff .webp) plus .gif and .tga, in any case. Names starting with "." are not.
bool is_image_file_name(const std::string& name);

// ROOT's class folders and their image files. Given `classes` (the training tree's), ROOT's
// folders must be among them and labels index into them. An Error naming the folder for no
// class folder, a class folder without images, or a class that `classes` lacks.
ImageFolderListing list_image_folder(const std::filesystem::path& root,
                                     const std::vector<std::string>* classes = nullptr);

// One tree's files split into training and test: within each class a shuffle with a fixed seed
// picks round(test_share * n) files for the test (at least one, and one fewer than n, for a class
// of two files or more), the rest train; both keep the listing's order. The same tree and share
// always give the same split, whatever the run's seed, so eval tests on what training left out.
std::pair<ImageFolderListing, ImageFolderListing> split_image_folder(const ImageFolderListing& all, double test_share);

// The shape a tree's images are decoded to, and how many there are.
struct FolderShape {
  ImageShape shape;
  int64_t images = 0;
};

// Reads the header of every file to be decoded (the first `limit` of each listing; 0: all) in
// parallel. The channels are `options.channels`, else 3 when any file is colour, else 1; the
// size is `options.height` x `options.width`, else the one size all files share. An Error naming
// two files of different sizes when they do not share one, or naming a file whose header cannot
// be read (unless `options.skip_bad`, which leaves it to the decoding to skip).
FolderShape survey_image_folders(const std::vector<const ImageFolderListing*>& listings, int64_t limit,
                                 const DataOptions& options);

struct DecodedFolder {
  Split split;
  int64_t skipped = 0;        // files that could not be decoded, with skip_bad
  std::string first_skipped;  // the first of them and why
};

// Decodes the first `limit` files (0: all) in parallel, with a progress bar on a terminal, into
// uint8 [N, C, H, W] images of `shape` and int64 labels: colour turned grey as PIL's
// convert("L"), or grey repeated as RGB, and pictures of another size resized (bilinear,
// antialiased, as torchvision's Resize). An Error naming the first file (in listing order) that
// cannot be decoded, unless `skip_bad`.
DecodedFolder decode_image_folder(const ImageFolderListing& listing, ImageShape shape, int64_t limit = 0,
                                  bool skip_bad = false);

}  // namespace convkit::data
