#include "eval/batched_forward.h"

#include <torch/torch.h>

#include "util/interrupt.h"

namespace convkit::eval {

void forward_in_batches(models::ClassifierImpl& model, const torch::Tensor& pixels, const data::Normalization& norm,
                        const torch::Device& device,
                        const std::function<void(int64_t start, const models::Output& output)>& consume,
                        int64_t batch_size, const PixelTransform& transform) {
  torch::InferenceMode inference;
  model.eval();
  for (int64_t start = 0; start < pixels.size(0); start += batch_size) {
    const torch::Tensor batch = pixels.slice(0, start, start + batch_size);
    const torch::Tensor x = data::to_model_input(transform ? transform(batch) : batch, norm).to(device);
    consume(start, model.forward(x));
    stop_if_interrupted();
  }
}

}  // namespace convkit::eval
