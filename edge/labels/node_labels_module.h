// The "labels" module: turns the hardware inventory into node labels and publishes them
//  - in Kubernetes, by server-side apply on the node (kube_client.h), on a background thread with
//    capped exponential backoff, so an absent API server never blocks the daemon;
//  - to a node-feature-discovery features.d file, when labels.nfd.enabled;
//  - always as metrics: edged_node_label{label,value} 1, edged_node_labels_apply_total{result},
//    edged_node_labels_last_success_timestamp_seconds.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/module.h"
#include "config/config.h"
#include "drivers/inventory/inventory.h"
#include "edge/labels/labels.h"

namespace prometheus {
class Registry;
}

namespace edged::labels {

struct NodeLabelsOptions {
  // Environment lookups (KUBERNETES_SERVICE_HOST/PORT, NODE_NAME); injected so tests do not touch
  // the process environment. Null = getenv.
  std::function<std::optional<std::string>(const char*)> env;
  std::chrono::milliseconds backoff_initial{1000};
  std::chrono::milliseconds backoff_max{60000};
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{15000};
};

class NodeLabelsModule : public Module {
 public:
  ~NodeLabelsModule() override = default;
  // Whether labels go to the Kubernetes API (mode on, or auto inside a pod).
  virtual bool kubernetes() const = 0;
  // The labels currently asserted (prefixed and allow-listed). Thread-safe.
  virtual LabelMap desired() const = 0;
  // Blocks until `count` applies succeeded in total or `timeout` passes; for tests.
  virtual bool WaitForSuccesses(int count, std::chrono::milliseconds timeout) const = 0;
  // Blocks until `count` apply attempts (any result) were made or `timeout` passes; for tests.
  virtual bool WaitForAttempts(int count, std::chrono::milliseconds timeout) const = 0;
};

// The real inventory scanner for this configuration: libusb enumeration + hotplug, libcudart through
// dlopen, roots and interval from `config`. Start it before the labels module (it is a Module too).
std::unique_ptr<inventory::InventoryScanner> NewInventoryScanner(const config::LabelsConfig& config,
                                                                 prometheus::Registry& registry);

// `inventory` and `registry` must outlive the module. InvalidArgument when the configuration cannot
// work (mode "on" without a node name or API server, an invalid prefix).
StatusOr<std::unique_ptr<NodeLabelsModule>> NewNodeLabelsModule(const config::LabelsConfig& config,
                                                                 inventory::InventorySource& inventory,
                                                                 prometheus::Registry& registry,
                                                                 NodeLabelsOptions options = {});

// What the daemon registers as "labels": one Module owning the real inventory scanner and the labels
// module, started in that order and stopped in reverse; health is the labels module's (or the
// scanner's while it has not finished a scan).
StatusOr<std::unique_ptr<Module>> NewHardwareLabelsModule(const config::LabelsConfig& config,
                                                          prometheus::Registry& registry);

}  // namespace edged::labels
