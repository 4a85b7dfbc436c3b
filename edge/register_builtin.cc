// The one explicit list of built-in modules. A capability becomes part of the daemon by adding its
// factory here and its section to EnabledModules().
#include <prometheus/registry.h>

#include "drivers/storage/storage.h"
#include "edge/labels/node_labels_module.h"
#include "edge/module_context.h"
#include "edge/plugin_loader.h"
#include "edge/process_metrics.h"
#include "mqtt/zigbee_module/zigbee_module.h"

namespace edged {

Status RegisterBuiltinModules(ModuleRegistry& registry) {
  RETURN_IF_ERROR(registry.Add("zigbee", [](ModuleContext& context) -> StatusOr<std::unique_ptr<Module>> {
    mqtt::zigbee_module::ZigbeeModuleOptions options;
    options.network.state_dir = context.state_dir / "zigbee";
    options.version = EdgedVersion();
    ASSIGN_OR_RETURN(auto module,
                     mqtt::zigbee_module::NewZigbeeModule(context.config, context.mqtt, &context.registry, std::move(options)));
    return std::unique_ptr<Module>(std::move(module));
  }));
  RETURN_IF_ERROR(registry.Add("labels", [](ModuleContext& context) {
    return labels::NewHardwareLabelsModule(context.config.labels, context.registry);
  }));
  RETURN_IF_ERROR(registry.Add("storage", [](ModuleContext& context) -> StatusOr<std::unique_ptr<Module>> {
    ASSIGN_OR_RETURN(auto module, storage::NewStorageModule(context.config.storage, context.registry));
    return std::unique_ptr<Module>(std::move(module));
  }));
  RETURN_IF_ERROR(registry.Add("cameras", [](ModuleContext& context) {
    return LoadModulePlugin("libedged_cameras.so", "edged_create_cameras_module", context);
  }));
  return OkStatus();
}

std::vector<std::string> EnabledModules(const config::Config& config) {
  std::vector<std::string> names;
  if (config.zigbee.enabled) names.push_back("zigbee");  // first: the coordinator takes longest to come up
  if (config.storage.enabled) names.push_back("storage");
  if (config.labels.enabled) names.push_back("labels");
  bool any_camera = false;
  for (const auto& [name, camera] : config.cameras.streams) any_camera = any_camera || camera.enabled;
  if (any_camera) names.push_back("cameras");
  return names;
}

}  // namespace edged
