#include "deploy/export_model.h"

#include "deploy/exportable_network.h"
#include "deploy/onnx_export.h"
#include "deploy/torchscript_export.h"
#include "util/files.h"
#include "util/format.h"

namespace convkit::deploy {

ExportSummary export_model(eval::LoadedModel& loaded, ExportFormat format, const std::filesystem::path& out,
                           const ExportSettings& settings) {
  check_export_settings(settings);
  const ExportableNetwork net = exportable_network(*loaded.model, settings.fold_bn);
  const std::string bytes = format == ExportFormat::Onnx ? onnx_model_bytes(net, loaded.info, settings)
                                                         : torchscript_module_bytes(net, loaded.info, settings);
  write_file_atomically(out, bytes);

  ExportSummary s;
  s.format = format == ExportFormat::Onnx ? "onnx" : "torchscript";
  s.file = out;
  s.bytes = static_cast<int64_t>(bytes.size());
  for (const auto& entry : net.tensors) s.parameters += entry.second.numel();
  const auto& g = net.graph;
  const char* pixels = settings.pixel_type == PixelType::Uint8 ? "uint8" : "float";
  s.input = strprintf("%s %s [batch,%lld,%lld,%lld]", settings.with_preprocessing ? "pixels" : "input",
                      settings.with_preprocessing ? pixels : "float (normalised)", static_cast<long long>(g.channels),
                      static_cast<long long>(g.height), static_cast<long long>(g.width));
  s.output =
      strprintf("%s [batch,%lld]", settings.softmax ? "probabilities" : "logits", static_cast<long long>(g.classes));
  return s;
}

}  // namespace convkit::deploy
