// Every run setting once: its key in run.json and --config files, its flag on `convkit train`,
// its help text, where it lives in TrainOptions and what values it takes. run.json, --config,
// sweep files, the CLI and validation all read this one table.
#pragma once

#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <variant>
#include <vector>

#include "run/options.h"

namespace convkit::run {

template <class T>
using FieldOf = T& (*)(TrainOptions&);
using Field = std::variant<FieldOf<std::string>, FieldOf<int64_t>, FieldOf<uint64_t>, FieldOf<int>, FieldOf<double>,
                           FieldOf<bool>>;

struct Setting {
  const char* key;   // in run.json and --config files
  const char* flag;  // on `convkit train`; nullptr: none
  std::string help;
  Field field;
  // The rule a value breaks ("must be a positive integer"), or "" when it is valid.
  std::string (*problem)(const TrainOptions&) = nullptr;
  bool recorded = true;  // written to run.json (the device is chosen again by each process)

  // The flag when there is one, else the key: how messages name the setting.
  std::string name() const { return flag ? flag : key; }
};

const std::vector<Setting>& settings();

// Sets one setting from a flag's text, which must be a value of the setting's type to the last
// character; an Error naming the flag otherwise.
void set_from_text(const Setting& setting, TrainOptions& options, const std::string& text);

// The setting's value as a flag would give it (for --help).
std::string text_of(const Setting& setting, const TrainOptions& options);

// Copies one setting's value from `from` to `to`.
void copy_setting(const Setting& setting, const TrainOptions& from, TrainOptions& to);

// Throws an Error naming the first setting whose value breaks its rule, and the value; with a
// `source`, the message starts with that file's name.
void validate(const TrainOptions& options, const std::string& source = "");

// Sets the options named in `settings` (the keys of run.json, e.g. {"lr": 0.01, "aug_hflip":
// true}; "preset" first resets to that preset); an Error naming `source` and the key for an
// unknown key or a value of the wrong type or range.
void apply_settings(TrainOptions& options, const nlohmann::json& settings, const std::string& source);

// The recorded settings as run.json holds them, with the thread count the run used.
nlohmann::json settings_json(const TrainOptions& options, int threads);

// The settings a run was started with (RUN_DIR/run.json), for --resume.
TrainOptions read_run_options(const std::filesystem::path& run_dir);

}  // namespace convkit::run
