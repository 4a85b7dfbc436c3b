// Loads a module that lives in its own shared object. The camera pipeline is one: OpenCV with its FFmpeg
// and image-codec dependencies maps about 60 MB into a process, so a node without cameras must not load
// it. The daemon dlopen()s libedged_cameras.so only when cameras are configured.
#pragma once

#include <memory>
#include <string>

#include "base/module.h"
#include "edge/module_context.h"

namespace edged {

// The C entry point a module plugin exports. Returns a new module, or nullptr with *error set.
using CreateModuleFn = Module* (*)(ModuleContext* context, std::string* error);

// Finds `file_name` in $EDGED_PLUGIN_DIR, then in ../lib/edged next to the executable (the installed
// layout, mirrored by the build tree), then /usr/lib/edged, loads it and calls `symbol`. The library stays loaded for the
// life of the process: the module's code must outlive the module.
StatusOr<std::unique_ptr<Module>> LoadModulePlugin(const std::string& file_name, const std::string& symbol,
                                                   ModuleContext& context);

}  // namespace edged
