// HomeAssistant MQTT discovery payloads, built the way zigbee2mqtt builds them (extension/
// homeassistant.ts): one config per exposed feature under
// <discovery_topic>/<component>/<ieee>/<object_id>/config, unique_id "<ieee>_<object_id>_<base_topic>",
// device identifiers "zigbee2mqtt_<ieee>", via_device the bridge, availability on bridge/state (and the
// device's availability topic when availability is enabled), sorted JSON keys. Pure functions.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mqtt/bridge/exposes.h"
#include "mqtt/bridge/network_view.h"

namespace edged::mqtt::discovery {

struct DiscoveryContext {
  std::string base_topic = "zigbee2mqtt";
  std::string discovery_topic = "homeassistant";
  bool availability = false;  // per-device availability topics are published
  std::string version;        // edged's version, in origin and the bridge device block
  bridge::CoordinatorInfo coordinator;
};

struct DiscoveryMessage {
  std::string component;  // "sensor", "binary_sensor", "switch", "light", "button", "select", "number"
  std::string object_id;  // "temperature", "light", "switch", "contact", ...
  std::string topic;      // homeassistant/sensor/0x00124b.../temperature/config
  nlohmann::json payload;
};

// One config per exposed feature of `device` (definition exposes plus linkquality).
std::vector<DiscoveryMessage> DeviceDiscovery(const bridge::DeviceInfo& device, const bridge::Definition& definition,
                                              const DiscoveryContext& context);

// The bridge itself as a HomeAssistant device: connection state, restart required, restart button,
// version, coordinator version, permit join switch.
std::vector<DiscoveryMessage> BridgeDiscovery(const DiscoveryContext& context);

// The `device` block of a device's configs.
nlohmann::json DeviceBlock(const bridge::DeviceInfo& device, const bridge::Definition& definition,
                           const DiscoveryContext& context);
// "zigbee2mqtt_bridge_<coordinator ieee>": the bridge's identifier, every device's via_device.
std::string BridgeIdentifier(const DiscoveryContext& context);

}  // namespace edged::mqtt::discovery
