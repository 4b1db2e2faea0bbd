// Learning-rate schedules, per optimiser step.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convkit::train {

struct ScheduleSettings {
  std::string name = "none";  // none | step | cosine | onecycle
  int64_t step_size = 5;      // step: epochs between decays
  double gamma = 0.1;         // step: decay factor
  double warmup_epochs = 0;   // any schedule: the rate rises linearly from 0 over these epochs
};

const std::vector<std::string>& schedule_names();

class LrSchedule {
 public:
  // `peak_lr` is the optimiser's learning rate; `total_steps` those of the whole run.
  LrSchedule(ScheduleSettings settings, double peak_lr, int64_t steps_per_epoch, int64_t total_steps);

  // The learning rate at `step` (0-based, counted over the whole run).
  double lr_at(int64_t step) const;

  // False when every step has the optimiser's own rate (no schedule, no warm-up).
  bool varies() const { return settings_.name != "none" || settings_.warmup_epochs > 0; }

 private:
  double scheduled_lr(int64_t step) const;  // before the warm-up's multiplier

  ScheduleSettings settings_;
  double peak_lr_;
  int64_t steps_per_epoch_, total_steps_;
};

}  // namespace convkit::train
