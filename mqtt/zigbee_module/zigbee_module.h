// The daemon's "zigbee" module: the Zigbee network (drivers/zigbee: coordinator, device database and,
// for serial.port "simulator", the in-process simulator) with the zigbee2mqtt-compatible Bridge on
// top. This is the one place that knows both sides: ZigbeeNetworkAdapter copies the network's plain
// data types into the bridge's (mqtt/bridge/network_view.h) so neither library depends on the other.
//
// Start order: network, then bridge; Stop in reverse. The network comes up on its own thread (start-up
// runs whenever the link opens), so Start() never waits for the coordinator; until it is up, health is
// failed with the network's reason ("zigbee coordinator on ... is down: ...").
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "base/module.h"
#include "base/status.h"
#include "config/config.h"
#include "drivers/zigbee/network.h"
#include "mqtt/bridge/bridge.h"
#include "mqtt/bridge/network_view.h"

namespace prometheus {
class Registry;
}

namespace edged::mqtt {
class Client;
}

namespace edged::mqtt::zigbee_module {

// Field-for-field copies between the two libraries' types.
bridge::DeviceInfo ToBridge(const zigbee::DeviceInfo& device);
bridge::CoordinatorInfo ToBridge(const zigbee::CoordinatorInfo& coordinator);
bridge::InterviewState ToBridge(zigbee::InterviewState state);

// bridge::ZigbeeNetworkView over a zigbee::ZigbeeNetwork, which must outlive it. Thread-safe as the
// network is; event handlers are translated and forwarded on the network's threads.
class ZigbeeNetworkAdapter final : public bridge::ZigbeeNetworkView {
 public:
  explicit ZigbeeNetworkAdapter(zigbee::ZigbeeNetwork& network) : network_(network) {}

  void SetEvents(bridge::NetworkEvents events) override;
  bridge::CoordinatorInfo Coordinator() const override;
  std::vector<bridge::DeviceInfo> Devices() const override;
  Status PermitJoin(std::chrono::seconds duration) override;
  std::optional<std::chrono::system_clock::time_point> PermitJoinEnd() const override;
  Status Rename(const std::string& ieee_address, const std::string& new_name) override;
  Status Remove(const std::string& ieee_address, bool force) override;
  Status SetOptions(const std::string& ieee_address, const nlohmann::json& options) override;
  void SendCommand(const std::string& ieee_address, const nlohmann::json& command, Done done) override;
  void Read(const std::string& ieee_address, const nlohmann::json& command, Done done) override;

 private:
  zigbee::ZigbeeNetwork& network_;
};

struct ZigbeeModuleOptions {
  // Network options (state_dir, timings, resolve_auto_port); `config` and `registry` are filled from
  // the arguments of NewZigbeeModule.
  zigbee::NetworkOptions network;
  std::string version = "0.1.0";  // bridge/info, discovery origin
};

// Owns the network, the adapter and the bridge; destroys them in reverse order.
class ZigbeeModule final : public Module {
 public:
  ZigbeeModule(std::unique_ptr<zigbee::ZigbeeNetwork> network, std::unique_ptr<ZigbeeNetworkAdapter> adapter);
  ~ZigbeeModule() override;

  std::string_view name() const override { return "zigbee"; }
  Status Start() override;
  void Stop() override;
  // The worse of the network's and the bridge's health.
  Health health() const override;

  zigbee::ZigbeeNetwork& network() { return *network_; }
  ZigbeeNetworkAdapter& adapter() { return *adapter_; }

 private:
  friend StatusOr<std::unique_ptr<ZigbeeModule>> NewZigbeeModule(const config::Config&, Client&,
                                                                  prometheus::Registry*, ZigbeeModuleOptions);
  std::unique_ptr<zigbee::ZigbeeNetwork> network_;
  std::unique_ptr<ZigbeeNetworkAdapter> adapter_;
  std::unique_ptr<bridge::Bridge> bridge_;
};

// Builds the module from the daemon's configuration (zigbee section, mqtt.base_topic and qos): loads
// the device database, creates the simulator for port "simulator", registers the network's and the
// bridge's metrics in `registry`. Does not open the coordinator or publish yet.
StatusOr<std::unique_ptr<ZigbeeModule>> NewZigbeeModule(const config::Config& config, Client& client,
                                                        prometheus::Registry* registry, ZigbeeModuleOptions options);

}  // namespace edged::mqtt::zigbee_module
