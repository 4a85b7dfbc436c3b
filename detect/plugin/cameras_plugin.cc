// libedged_cameras.so: the camera pipeline as a plugin the daemon loads only when cameras are
// configured, so that a node without cameras never maps OpenCV, FFmpeg and the image codecs (about
// 60 MB resident). The daemon is linked with exported symbols, so this library binds to the daemon's
// own copy of base/, config/ and mqtt/ (one MQTT client, one logger registry).
#include <string>

#include "detect/pipeline/camera_module.h"
#include "edge/module_context.h"  // the plain struct the daemon hands every module factory

extern "C" __attribute__((visibility("default"))) edged::Module* edged_create_cameras_module(
    edged::ModuleContext* context, std::string* error) {
  edged::detect::CamerasModuleOptions options;
  options.homeassistant = context->config.zigbee.homeassistant;
  auto module = edged::detect::CreateCamerasModule(context->config.cameras, context->mqtt, context->registry,
                                                   context->state_dir, options);
  if (!module.ok()) {
    *error = std::string(module.status().message());
    return nullptr;
  }
  return std::move(module).value().release();
}
