// The zigbee2mqtt-compatible bridge: publishes a Zigbee network on MQTT the way zigbee2mqtt does, so
// HomeAssistant, Node-RED flows and dashboards keep working when edged replaces it.
//
//   <base>/<friendly_name>               device state JSON (retained per config/device option)
//   <base>/<friendly_name>/set|get[/attr] commands → ZigbeeNetworkView::SendCommand / Read
//   <base>/<friendly_name>/availability  {"state":"online"|"offline"} from last-seen timeouts
//   <base>/bridge/info|devices|groups    retained; bridge/event for joins, interviews and leaves
//   <base>/bridge/request/<name>         → <base>/bridge/response/<name>, transaction echoed
//   <discovery>/<component>/<ieee>/<object_id>/config  HomeAssistant discovery, retained
//
// Threads: network events are handled on the network's thread without blocking (state in memory,
// publications handed to the non-blocking MQTT client). MQTT commands go through a bounded queue to
// one worker thread, which may block on the coordinator; when the queue is full the newest message is
// dropped and counted (edged_zigbee_bridge_queue_dropped_total), and a dropped bridge request is
// answered with an error at once. Bad input never crashes the bridge: it is answered on
// bridge/response (requests) or logged once and counted (device commands).
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "base/module.h"
#include "base/status.h"
#include "config/config.h"
#include "mqtt/bridge/network_view.h"

namespace prometheus {
class Registry;
}

namespace edged::mqtt {
class Client;
}

namespace edged::mqtt::bridge {

struct BridgeOptions {
  std::string base_topic = "zigbee2mqtt";  // usually mqtt.base_topic
  config::ZigbeeConfig zigbee;             // retain_state, availability, homeassistant, permit_join_timeout
  int qos = 1;                             // for retained bridge and discovery messages
  std::string version = "0.1.0";           // in bridge/info, discovery origin and the bridge device
  std::size_t queue_limit = 1024;          // MQTT commands waiting for the worker
  std::size_t max_payload_bytes = 64 * 1024;
  std::chrono::milliseconds availability_check_interval{1000};
  // Where the devices' last states are kept across restarts, as zigbee2mqtt keeps data/state.json:
  // after a restart a report that carries one property still publishes the others' last values,
  // instead of nulls over the retained state. Written atomically at most every state_save_interval
  // and at Stop(). Empty: states start empty at every start.
  std::filesystem::path state_file;
  std::chrono::milliseconds state_save_interval{30000};
  // bridge/request/restart: called (from the worker) after the response went out. Empty: the bridge
  // re-announces everything instead, which is what a restart would achieve for MQTT consumers.
  std::function<void()> restart;
};

// The bridge's options from the daemon's configuration: mqtt.base_topic, mqtt.qos and the zigbee
// section (retain_state, availability, homeassistant, permit_join, devices).
BridgeOptions BridgeOptionsFromConfig(const config::Config& config, std::string version);

class Bridge {
 public:
  // Registers metrics in `registry` (an own registry when null). `client` and `network` must outlive
  // the bridge. Does not publish or subscribe yet.
  static StatusOr<std::unique_ptr<Bridge>> Create(BridgeOptions options, Client& client,
                                                  ZigbeeNetworkView& network, prometheus::Registry* registry);
  ~Bridge();  // Stop()
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // Subscribes, installs the network's event handlers, publishes bridge topics, discovery and the
  // known devices' states, and starts the worker. Returns at once (publishing never blocks).
  Status Start();
  // Stops the worker (waits for the command in progress). Idempotent. The network's event handlers
  // stay installed but do nothing afterwards.
  void Stop();
  Health health() const;

  class Impl;

 private:
  explicit Bridge(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The daemon's "zigbee" module: the Zigbee network (its own Module, e.g. the coordinator) and the
// bridge over it. Starts the network first, then the bridge; stops in reverse; health is the worse of
// the two. `bridge` must have been created over `network`'s ZigbeeNetworkView; the module stops the
// bridge before the network and destroys it first. `network` may be null when something else owns it.
std::unique_ptr<Module> MakeBridgeModule(std::unique_ptr<Module> network, std::unique_ptr<Bridge> bridge);

}  // namespace edged::mqtt::bridge
