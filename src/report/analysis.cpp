#include "report/analysis.h"

#include <torch/torch.h>

namespace convkit::report {

ClassificationReport classification_report(const torch::Tensor& truth, const torch::Tensor& predicted,
                                           int64_t classes) {
  ClassificationReport r;
  r.confusion = torch::bincount(truth.to(torch::kInt64) * classes + predicted.to(torch::kInt64), {}, classes * classes)
                    .view({classes, classes});
  const auto c = r.confusion.accessor<int64_t, 2>();
  const int64_t total = truth.size(0);
  int64_t correct = 0;
  auto safe_div = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  for (int64_t k = 0; k < classes; ++k) {
    int64_t predicted_k = 0, actual_k = 0;
    for (int64_t j = 0; j < classes; ++j) {
      predicted_k += c[j][k];
      actual_k += c[k][j];
    }
    ClassScores s;
    s.precision = safe_div(c[k][k], predicted_k);
    s.recall = safe_div(c[k][k], actual_k);
    s.f1 = safe_div(2 * s.precision * s.recall, s.precision + s.recall);
    s.support = actual_k;
    r.per_class.push_back(s);
    correct += c[k][k];
    r.macro.precision += s.precision / classes;
    r.macro.recall += s.recall / classes;
    r.macro.f1 += s.f1 / classes;
    r.weighted.precision += s.precision * safe_div(s.support, total);
    r.weighted.recall += s.recall * safe_div(s.support, total);
    r.weighted.f1 += s.f1 * safe_div(s.support, total);
  }
  r.macro.support = r.weighted.support = total;
  r.accuracy = safe_div(correct, total);
  return r;
}

torch::Tensor most_confident_mistakes(const torch::Tensor& probabilities, const torch::Tensor& labels, int64_t count) {
  // argmax, as eval::predict_all's predictions, which the captions name.
  const torch::Tensor wrong = probabilities.argmax(1).ne(labels).nonzero().squeeze(1);
  const torch::Tensor confidence = std::get<0>(probabilities.max(1));
  const torch::Tensor order = confidence.index_select(0, wrong).argsort(0, /*descending=*/true);
  return wrong.index_select(0, order.slice(0, 0, count));
}

torch::Tensor pca_2d(const torch::Tensor& x) {
  const torch::Tensor centred = x.to(torch::kDouble) - x.to(torch::kDouble).mean(0, true);
  const auto svd = torch::linalg_svd(centred, /*full_matrices=*/false);
  const torch::Tensor components = std::get<2>(svd).slice(0, 0, 2);  // rows of Vh
  return centred.mm(components.t()).to(torch::kFloat);
}

}  // namespace convkit::report
