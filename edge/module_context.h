// What a module factory gets to build its module: its configuration, the shared MQTT client, the
// metrics registry of the current module generation, and the state directory.
#pragma once

#include <filesystem>
#include <memory>
#include <vector>

#include "base/module.h"
#include "config/config.h"

namespace prometheus {
class Registry;
}
namespace edged::mqtt {
class Client;
}

namespace edged {

struct ModuleContext {
  const config::Config& config;
  mqtt::Client& mqtt;
  prometheus::Registry& registry;
  std::filesystem::path state_dir;
};

using ModuleRegistry = Registry<Module, ModuleContext&>;

// Registers every built-in module factory by name ("zigbee", "cameras", "storage", "labels").
Status RegisterBuiltinModules(ModuleRegistry& registry);

// The names of the modules the configuration enables, in start order.
std::vector<std::string> EnabledModules(const config::Config& config);

}  // namespace edged
