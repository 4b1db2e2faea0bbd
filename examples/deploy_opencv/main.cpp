// Classifies image files with OpenCV's dnn module alone: no LibTorch, no convkit library.
// The model is exported with `convkit export RUN --with-preprocessing --softmax`, so it takes raw
// pixels and returns probabilities; the class names come from model.json beside model.pt.
//   deploy_opencv MODEL.onnx MODEL.json IMAGE...
// Prints the lines `convkit predict` prints: "FILE: NAME (P%) | top 3: NAME P%, ...".
// It prepares pictures for grey 28x28 networks (FashionMNIST's kind) and refuses others.
#include <opencv2/dnn.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

// convkit's preparation of a photo: light-on-dark (inverted when the border is mostly light),
// padded to a square with the background, then 28x28 by area averaging (LibTorch's adaptive
// average pooling: each output pixel averages the whole input pixels its cell touches) when
// shrinking, bilinear when enlarging.
cv::Mat to_input(const cv::Mat& grey) {
  cv::Mat x;
  grey.convertTo(x, CV_32F);
  cv::Mat border = cv::Mat::ones(x.size(), CV_8U);
  border(cv::Rect(1, 1, std::max(0, x.cols - 2), std::max(0, x.rows - 2))).setTo(0);
  if (cv::mean(x, border)[0] > 127.5) x = 255.f - x;
  const int side = std::max(x.cols, x.rows), px = side - x.cols, py = side - x.rows;
  cv::copyMakeBorder(x, x, py / 2, py - py / 2, px / 2, px - px / 2, cv::BORDER_CONSTANT, 0);
  cv::Mat out(28, 28, CV_32F);
  if (side < 28) {
    cv::resize(x, out, out.size(), 0, 0, cv::INTER_LINEAR);
  } else {
    for (int i = 0; i < 28; ++i)
      for (int j = 0; j < 28; ++j) {
        const int y0 = i * side / 28, y1 = ((i + 1) * side + 27) / 28, x0 = j * side / 28,
                  x1 = ((j + 1) * side + 27) / 28;
        out.at<float>(i, j) = static_cast<float>(cv::mean(x(cv::Range(y0, y1), cv::Range(x0, x1)))[0]);
      }
  }
  return out;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL.onnx MODEL.json IMAGE...\n", argv[0]);
    return 2;
  }
  try {
    cv::dnn::Net net = cv::dnn::readNetFromONNX(argv[1]);
    std::vector<std::string> classes;
    cv::FileStorage info(argv[2], cv::FileStorage::READ | cv::FileStorage::FORMAT_JSON);
    for (const auto& name : info["classes"]) classes.push_back(name.string());
    const cv::FileNode input = info["input"];  // absent in files written before shapes were recorded
    if (!input.empty() && (static_cast<int>(input["channels"]) != 1 || static_cast<int>(input["height"]) != 28 ||
                           static_cast<int>(input["width"]) != 28)) {
      std::fprintf(stderr,
                   "deploy_opencv: %s: the network takes %dx%dx%d images; this example prepares grey 28x28 ones\n",
                   argv[2], static_cast<int>(input["channels"]), static_cast<int>(input["height"]),
                   static_cast<int>(input["width"]));
      return 2;
    }
    int failures = 0;
    for (int a = 3; a < argc; ++a) {
      const cv::Mat grey = cv::imread(argv[a], cv::IMREAD_GRAYSCALE);
      if (grey.empty()) {
        std::fprintf(stderr, "deploy_opencv: %s: cannot read the image\n", argv[a]);
        ++failures;
        continue;
      }
      const cv::Mat input = to_input(grey);
      net.setInput(cv::dnn::blobFromImage(input));
      const cv::Mat probabilities = net.forward().reshape(1, 1);
      std::vector<int> order(probabilities.cols);
      for (int c = 0; c < probabilities.cols; ++c) order[c] = c;
      std::stable_sort(order.begin(), order.end(),
                       [&](int l, int r) { return probabilities.at<float>(l) > probabilities.at<float>(r); });
      auto percent = [&](int c) { return 100.0 * probabilities.at<float>(c); };
      const int top = std::min(3, probabilities.cols);
      std::printf("%s: %s (%.1f%%) | top %d:", argv[a], classes.at(order[0]).c_str(), percent(order[0]), top);
      for (int k = 0; k < top; ++k)
        std::printf(" %s %.1f%%%s", classes.at(order[k]).c_str(), percent(order[k]), k + 1 < top ? "," : "\n");
    }
    return failures ? 1 : 0;
  } catch (const std::exception& e) {  // cv::Exception, a class index beyond model.json's names
    std::fprintf(stderr, "deploy_opencv: %s\n", e.what());
    return 1;
  }
}
