#include "report/tsne.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <vector>

#include "report/analysis.h"

namespace convkit::report {

namespace {

// Conditional probabilities p_{j|i} over the k nearest neighbours of each point, with the
// Gaussian's precision found by binary search so the entropy equals log(perplexity); then
// symmetrised and normalised to sum to 1. Returned as per-point neighbour lists.
struct SparseP {
  std::vector<std::vector<std::pair<int64_t, double>>> rows;
};

SparseP joint_probabilities(const torch::Tensor& x, double perplexity) {
  const int64_t n = x.size(0);
  const int64_t k = std::min<int64_t>(n - 1, static_cast<int64_t>(3 * perplexity + 1));
  const torch::Tensor d2 = torch::cdist(x.to(torch::kFloat), x.to(torch::kFloat)).pow(2);
  d2.diagonal().fill_(std::numeric_limits<float>::infinity());
  const auto nearest = d2.topk(k, 1, /*largest=*/false);
  const torch::Tensor dist = std::get<0>(nearest).to(torch::kDouble).contiguous();
  const torch::Tensor index = std::get<1>(nearest).contiguous();
  const auto dist_a = dist.accessor<double, 2>();
  const auto index_a = index.accessor<int64_t, 2>();

  const double target_entropy = std::log(perplexity);
  std::vector<std::vector<double>> conditional(n, std::vector<double>(k));
  at::parallel_for(0, n, 16, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double beta = 1, lo = 0, hi = std::numeric_limits<double>::infinity();
      std::vector<double>& p = conditional[i];
      for (int step = 0; step < 100; ++step) {
        double sum = 0, weighted = 0;
        for (int64_t j = 0; j < k; ++j) {
          p[j] = std::exp(-(dist_a[i][j] - dist_a[i][0]) * beta);  // shifted for stability
          sum += p[j];
          weighted += (dist_a[i][j] - dist_a[i][0]) * p[j];
        }
        const double entropy = std::log(sum) + beta * weighted / sum;
        for (double& v : p) v /= sum;
        if (std::abs(entropy - target_entropy) < 1e-5) break;
        if (entropy > target_entropy) {
          lo = beta;
          beta = std::isinf(hi) ? beta * 2 : (beta + hi) / 2;
        } else {
          hi = beta;
          beta = (beta + lo) / 2;
        }
      }
    }
  });

  // Symmetrise: p_ij = (p_{j|i} + p_{i|j}) / 2n.
  std::vector<std::map<int64_t, double>> sym(n);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < k; ++j) {
      const int64_t other = index_a[i][j];
      const double v = conditional[i][j] / (2.0 * n);
      sym[i][other] += v;
      sym[other][i] += v;
    }
  }
  SparseP out;
  out.rows.resize(n);
  for (int64_t i = 0; i < n; ++i) out.rows[i].assign(sym[i].begin(), sym[i].end());
  return out;
}

// A 2-D Barnes-Hut tree over the embedding: each cell keeps its centre of mass and count.
class QuadTree {
 public:
  QuadTree(const std::vector<std::array<double, 2>>& points) {
    double min_x = 1e300, min_y = 1e300, max_x = -1e300, max_y = -1e300;
    for (const auto& p : points) {
      min_x = std::min(min_x, p[0]);
      max_x = std::max(max_x, p[0]);
      min_y = std::min(min_y, p[1]);
      max_y = std::max(max_y, p[1]);
    }
    const double half = std::max(max_x - min_x, max_y - min_y) / 2 + 1e-5;
    nodes_.push_back(Node{{(min_x + max_x) / 2, (min_y + max_y) / 2}, half});
    for (size_t i = 0; i < points.size(); ++i) insert(0, points[i], 0);
  }

  // Adds the repulsive force on `p` to `force` and returns the sum of q over the tree.
  double repulse(const std::array<double, 2>& p, double theta, std::array<double, 2>& force) const {
    double z = 0;
    int stack[4 * 64];  // depth-first: at most 3 pending siblings per level, depth <= 42
    int top = 0;
    stack[top++] = 0;
    while (top > 0) {
      const Node& node = nodes_[stack[--top]];
      if (node.count == 0) continue;
      const double dx = p[0] - node.mass_x / node.count, dy = p[1] - node.mass_y / node.count;
      const double d2 = dx * dx + dy * dy;
      const bool leaf = node.child[0] < 0;
      if ((leaf || 2 * node.half * 2 * node.half < theta * theta * d2)) {
        if (leaf && d2 < 1e-24) {  // the point itself (or a duplicate): no self-interaction
          if (node.count == 1) continue;
        }
        const double q = 1.0 / (1.0 + d2);
        const double count = leaf && d2 < 1e-24 ? node.count - 1 : node.count;
        z += count * q;
        force[0] += count * q * q * dx;
        force[1] += count * q * q * dy;
      } else {
        for (int c : node.child) stack[top++] = c;
      }
    }
    return z;
  }

 private:
  struct Node {
    std::array<double, 2> centre;
    double half;
    double mass_x = 0, mass_y = 0;
    int count = 0;
    std::array<int, 4> child = {-1, -1, -1, -1};
    std::array<double, 2> point{};  // the single point of a leaf
  };

  void insert(int index, const std::array<double, 2>& p, int depth) {
    while (true) {
      Node& node = nodes_[index];
      node.mass_x += p[0];
      node.mass_y += p[1];
      node.count += 1;
      if (node.child[0] < 0) {
        if (node.count == 1 || depth > 40) {  // empty leaf, or duplicates piled at max depth
          if (node.count == 1) node.point = p;
          return;
        }
        split(index);
        const std::array<double, 2> old = nodes_[index].point;
        const int q_old = quadrant(nodes_[index], old);
        Node& child = nodes_[nodes_[index].child[q_old]];
        child.mass_x += old[0];
        child.mass_y += old[1];
        child.count += 1;
        child.point = old;
      }
      const int q = quadrant(nodes_[index], p);
      index = nodes_[index].child[q];
      ++depth;
      if (nodes_[index].count == 0) {
        Node& leaf = nodes_[index];
        leaf.mass_x = p[0];
        leaf.mass_y = p[1];
        leaf.count = 1;
        leaf.point = p;
        return;
      }
    }
  }

  static int quadrant(const Node& node, const std::array<double, 2>& p) {
    return (p[0] > node.centre[0] ? 1 : 0) + (p[1] > node.centre[1] ? 2 : 0);
  }

  void split(int index) {
    const double h = nodes_[index].half / 2;
    const auto c = nodes_[index].centre;
    for (int q = 0; q < 4; ++q) {
      nodes_.push_back(Node{{c[0] + (q & 1 ? h : -h), c[1] + (q & 2 ? h : -h)}, h});
      nodes_[index].child[q] = static_cast<int>(nodes_.size()) - 1;
    }
  }

  std::vector<Node> nodes_;
};

}  // namespace

torch::Tensor tsne_2d(const torch::Tensor& x, const TsneOptions& o) {
  const int64_t n = x.size(0);
  TORCH_CHECK(n > 3 * o.perplexity, "t-SNE needs more points than 3 x perplexity");
  const SparseP p = joint_probabilities(x, o.perplexity);

  // scikit-learn's init="pca": the PCA projection scaled to a standard deviation of 1e-4.
  torch::Tensor init = pca_2d(x).to(torch::kDouble);
  init = init / init.select(1, 0).std() * 1e-4;
  std::vector<std::array<double, 2>> y(n), update(n, {0, 0}), gains(n, {1, 1}), grad(n);
  for (int64_t i = 0; i < n; ++i) y[i] = {init[i][0].item<double>(), init[i][1].item<double>()};

  const double learning_rate = std::max(n / o.early_exaggeration / 4, 50.0);  // scikit-learn's "auto"
  std::vector<double> z_parts(n);
  for (int it = 0; it < o.iterations; ++it) {
    const bool early = it < o.exaggeration_iterations;
    const double exaggeration = early ? o.early_exaggeration : 1.0;
    const double momentum = early ? 0.5 : 0.8;
    const QuadTree tree(y);
    std::vector<std::array<double, 2>> repulsive(n, {0, 0});
    at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) z_parts[i] = tree.repulse(y[i], o.theta, repulsive[i]);
    });
    double z = 0;
    for (double v : z_parts) z += v;
    at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        double ax = 0, ay = 0;
        for (const auto& [j, pij] : p.rows[i]) {
          const double dx = y[i][0] - y[j][0], dy = y[i][1] - y[j][1];
          const double q = 1.0 / (1.0 + dx * dx + dy * dy);
          ax += pij * q * dx;
          ay += pij * q * dy;
        }
        grad[i] = {4 * (exaggeration * ax - repulsive[i][0] / z), 4 * (exaggeration * ay - repulsive[i][1] / z)};
      }
    });
    for (int64_t i = 0; i < n; ++i) {
      for (int d = 0; d < 2; ++d) {
        // Delta-bar-delta gains, as scikit-learn's gradient descent.
        const bool same_sign = (grad[i][d] > 0) == (update[i][d] > 0);
        gains[i][d] = std::max(same_sign ? gains[i][d] * 0.8 : gains[i][d] + 0.2, 0.01);
        update[i][d] = momentum * update[i][d] - learning_rate * gains[i][d] * grad[i][d];
        y[i][d] += update[i][d];
      }
    }
  }
  torch::Tensor out = torch::empty({n, 2}, torch::kFloat);
  for (int64_t i = 0; i < n; ++i) {
    out[i][0] = static_cast<float>(y[i][0]);
    out[i][1] = static_cast<float>(y[i][1]);
  }
  return out;
}

}  // namespace convkit::report
