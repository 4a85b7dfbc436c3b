// edged: one small daemon for a home-lab hardware node (Zigbee↔MQTT, camera detection, storage health,
// node labels). `edged --check-config FILE` validates a configuration and exits 0 or 1.
#include <malloc.h>

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "base/logging.h"
#include "config/loader.h"
#include "edge/daemon.h"
#include "edge/process_metrics.h"

int main(int argc, char** argv) {
  CLI::App app{"edged: Zigbee-to-MQTT bridge, camera detection, storage health and node labels for a home-lab node"};
  std::string config_path = "/etc/edged/edged.yaml";
  std::string check_path;
  bool version = false;
  app.add_option("-c,--config", config_path, "configuration file")->capture_default_str();
  app.add_option("--check-config", check_path, "validate FILE, print every problem, exit 0 (valid) or 1");
  app.add_flag("--version", version, "print the version and exit");
  CLI11_PARSE(app, argc, argv);
  // Resident memory should follow the live heap. glibc gives each allocating thread an arena of its
  // own (up to 8 per core) and freed memory stays in the arena that held it; edged's dozen threads are
  // mostly idle and each has a tcache, so one arena costs nothing measurable. A fixed mmap threshold
  // keeps big transient buffers (bridge/devices for 200 devices is ~400 KB) out of the heap, where
  // they would leave holes; glibc's default raises the threshold after the first such free.
  // 200 Zigbee devices (tests/bench/zigbee_e2e_bench): 49 MiB with glibc's defaults, 20 MiB with these.
  mallopt(M_ARENA_MAX, 1);
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);

  if (version) {
    std::printf("edged %s%s\n", edged::EdgedVersion(), edged::BuiltWithCuda() ? " (cuda)" : "");
    return 0;
  }
  if (!check_path.empty()) {
    auto config = edged::config::LoadConfigFile(check_path);
    if (!config.ok()) {
      std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
      return 1;
    }
    std::printf("%s: configuration is valid\n", check_path.c_str());
    return 0;
  }

  auto config = edged::config::LoadConfigFile(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  if (auto s = edged::ConfigureLogging(config->logging.level,
                                       config->logging.format == "json" ? edged::LogFormat::kJson
                                                                        : edged::LogFormat::kText);
      !s.ok()) {
    std::fprintf(stderr, "%s\n", std::string(s.message()).c_str());
    return 1;
  }
  edged::Daemon daemon(config_path, std::move(config).value());
  return daemon.Run();
}
