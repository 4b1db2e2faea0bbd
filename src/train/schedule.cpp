#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace convkit::train {

const std::vector<std::string>& schedule_names() {
  static const std::vector<std::string> names = {"none", "step", "cosine", "onecycle"};
  return names;
}

LrSchedule::LrSchedule(ScheduleSettings settings, double peak_lr, int64_t steps_per_epoch, int64_t total_steps)
    : settings_(std::move(settings)), peak_lr_(peak_lr), steps_per_epoch_(steps_per_epoch), total_steps_(total_steps) {}

namespace {

// The multiplier a linear warm-up puts on step `step`: (step + 1) / warm-up steps, then 1.
double warmup_factor(int64_t step, double warmup_epochs, int64_t steps_per_epoch) {
  const double warmup_steps = warmup_epochs * static_cast<double>(steps_per_epoch);
  return warmup_steps > 0 ? std::min(1.0, static_cast<double>(step + 1) / warmup_steps) : 1.0;
}

}  // namespace

double LrSchedule::lr_at(int64_t step) const {
  return scheduled_lr(step) * warmup_factor(step, settings_.warmup_epochs, steps_per_epoch_);
}

double LrSchedule::scheduled_lr(int64_t step) const {
  const double lr = peak_lr_;
  const double t = total_steps_ > 1 ? static_cast<double>(step) / (total_steps_ - 1) : 1.0;
  const std::string& name = settings_.name;
  if (name == "step") {
    return lr * std::pow(settings_.gamma, static_cast<double>((step / steps_per_epoch_) / settings_.step_size));
  }
  if (name == "cosine") return lr * 0.5 * (1 + std::cos(M_PI * t));
  if (name == "onecycle") {
    // PyTorch's OneCycleLR defaults: 30% warm-up from lr/25, cosine annealing to lr/25/1e4.
    const double start = lr / 25, end = start / 1e4, warm = 0.3;
    auto cosine = [](double from, double to, double u) { return to + (from - to) * 0.5 * (1 + std::cos(M_PI * u)); };
    return t < warm ? cosine(start, lr, t / warm) : cosine(lr, end, (t - warm) / (1 - warm));
  }
  return lr;
}

}  // namespace convkit::train
