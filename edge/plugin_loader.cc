#include "edge/plugin_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace edged {
namespace {

std::vector<std::filesystem::path> SearchDirectories() {
  std::vector<std::filesystem::path> dirs;
  if (const char* env = std::getenv("EDGED_PLUGIN_DIR"); env && *env) dirs.emplace_back(env);
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto bin_dir = exe.parent_path();
    // Installed: /usr/bin/edged and /usr/lib/edged/*.so; the build tree mirrors it (build/edge/edged,
    // build/lib/edged/*.so).
    dirs.push_back(bin_dir / ".." / "lib" / "edged");
  }
  dirs.emplace_back("/usr/lib/edged");
  return dirs;
}

}  // namespace

StatusOr<std::unique_ptr<Module>> LoadModulePlugin(const std::string& file_name, const std::string& symbol,
                                                   ModuleContext& context) {
  std::vector<std::string> tried;
  for (const auto& dir : SearchDirectories()) {
    const auto path = (dir / file_name).lexically_normal();
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      tried.push_back(path.string());
      continue;
    }
    // RTLD_GLOBAL is not needed: the plugin resolves edged's own symbols from the executable.
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      return FailedPreconditionError(fmt::format("cannot load {}: {}", path.string(), ::dlerror()));
    }
    auto create = reinterpret_cast<CreateModuleFn>(::dlsym(handle, symbol.c_str()));
    if (create == nullptr) {
      return FailedPreconditionError(fmt::format("{} has no entry point {}: built for another edged version?",
                                                 path.string(), symbol));
    }
    std::string error;
    Module* module = create(&context, &error);
    if (module == nullptr) return InvalidArgumentError(error.empty() ? "the plugin refused to start" : error);
    return std::unique_ptr<Module>(module);
  }
  return NotFoundError(fmt::format("{} not found (looked at {}); set EDGED_PLUGIN_DIR to its directory",
                                   file_name, fmt::join(tried, ", ")));
}

}  // namespace edged
