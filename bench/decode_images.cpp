// Decodes image files to grey pixels, with convkit's decoders (libpng, libjpeg-turbo, stb for
// the rest) or with stb_image alone, and says how long it took, as JSON on stdout:
//
//   decode_images [--decoder convkit|stb] [--repeat N] [--dump DIR] [--resize-28] [--rgb] FILE...
//   decode_images --list-folder ROOT
//
// --dump writes each decoded picture to DIR/<index>.pgm (.ppm with --rgb, which decodes to RGB
// with convkit's decoders), for a comparison with PIL (tests/image_decoding.py,
// bench/decoders.py); --resize-28 first resizes it to 28x28 as image folders' pictures are
// resized (--image-size 28x28). --list-folder prints the (file, class) pairs of an image-folder
// tree in the order convkit reads them, as JSON.
#include <stb/stb_image.h>
#include <torch/torch.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image.h"
#include "data/image_file.h"
#include "data/image_folder.h"
#include "util/error.h"
#include "util/files.h"

using namespace convkit;

namespace {

data::Picture decode_with_stb(const std::vector<uint8_t>& bytes, const std::string& name) {
  int w = 0, h = 0, channels = 0;
  uint8_t* pixels = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &channels, 1);
  if (!pixels) throw file_error(name, "stb_image cannot decode it");
  data::Picture image{w, h, std::vector<uint8_t>(pixels, pixels + static_cast<size_t>(w) * h)};
  stbi_image_free(pixels);
  return image;
}

void write_pnm(const std::string& file, const data::Picture& image) {
  std::ofstream out(file, std::ios::binary);
  out << (image.channels == 3 ? "P6\n" : "P5\n") << image.width << " " << image.height << "\n255\n";
  out.write(reinterpret_cast<const char*>(image.pixels.data()), static_cast<std::streamsize>(image.pixels.size()));
  if (!out) throw file_error(file, "cannot write");
}

int list_folder(const std::string& root) {
  const data::ImageFolderListing listing = data::list_image_folder(root);
  nlohmann::json pairs = nlohmann::json::array();
  for (size_t i = 0; i < listing.files.size(); ++i) pairs.push_back({listing.files[i].string(), listing.labels[i]});
  std::cout << nlohmann::json{{"classes", listing.classes}, {"samples", pairs}}.dump() << "\n";
  return 0;
}

int run(int argc, char** argv) {
  std::string decoder = "convkit", dump;
  int repeat = 1;
  bool resize = false, rgb = false;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw Error(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--decoder")
      decoder = value();
    else if (arg == "--dump")
      dump = value();
    else if (arg == "--repeat")
      repeat = std::stoi(value());
    else if (arg == "--resize-28")
      resize = true;
    else if (arg == "--rgb")
      rgb = true;
    else if (arg == "--list-folder")
      return list_folder(value());
    else
      files.push_back(arg);
  }
  if (decoder != "convkit" && decoder != "stb") throw Error("--decoder: expected convkit or stb");
  if (files.empty() || repeat < 1)
    throw Error("usage: decode_images [--decoder convkit|stb] [--repeat N] [--dump DIR] FILE...");

  // Files are read first, so that the time is the decoders' alone.
  std::vector<std::vector<uint8_t>> contents;
  for (const auto& file : files) contents.push_back(read_file_bytes(file));
  double best = 1e300;
  uint64_t pixels = 0;
  for (int r = 0; r < repeat; ++r) {
    const auto start = std::chrono::steady_clock::now();
    pixels = 0;
    for (size_t i = 0; i < files.size(); ++i) {
      data::Picture image = decoder == "stb" ? decode_with_stb(contents[i], files[i])
                                             : data::decode_picture(contents[i], files[i], rgb ? 3 : 1);
      if (resize) {
        const torch::Tensor small =
            data::resize_images(data::picture_tensor(image).unsqueeze(0), data::kImageSize, data::kImageSize)[0]
                .permute({1, 2, 0})
                .contiguous();
        image = {data::kImageSize, data::kImageSize,
                 std::vector<uint8_t>(small.data_ptr<uint8_t>(), small.data_ptr<uint8_t>() + small.numel()),
                 image.channels};
      }
      pixels += image.pixels.size();
      if (!dump.empty() && r == 0)
        write_pnm(dump + "/" + std::to_string(i) + (image.channels == 3 ? ".ppm" : ".pgm"), image);
    }
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::cout
      << nlohmann::json{{"decoder", decoder}, {"images", files.size()}, {"pixels", pixels}, {"seconds", best}}.dump()
      << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "decode_images: " << e.what() << "\n";
    return 1;
  }
}
