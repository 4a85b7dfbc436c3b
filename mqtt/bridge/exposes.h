// Device definitions and "exposes" in zigbee2mqtt's shape (zigbee-herdsman-converters' Numeric,
// Binary, Enum, Composite, Light and Switch serialized to JSON), which bridge/devices publishes and
// from which HomeAssistant discovery is derived. Pure functions, no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mqtt/bridge/network_view.h"

namespace edged::mqtt::bridge {

// Access bits of an expose, as zigbee2mqtt publishes them.
inline constexpr int kAccessState = 0b001;  // appears in the state JSON
inline constexpr int kAccessSet = 0b010;    // can be written with /set
inline constexpr int kAccessGet = 0b100;    // can be read with /get
inline constexpr int kAccessAll = 0b111;

// Builders for expose objects, mirroring zigbee-herdsman-converters (label = name with '_' → ' ',
// first letter upper-case; property = name).
nlohmann::json NumericExpose(std::string_view name, int access);
nlohmann::json BinaryExpose(std::string_view name, int access, nlohmann::json value_on, nlohmann::json value_off);
nlohmann::json EnumExpose(std::string_view name, int access, std::vector<std::string> values);
std::string LabelFromName(std::string_view name);  // "battery_low" → "Battery low"

// A device definition: what zigbee2mqtt calls `definition` in bridge/devices.
struct Definition {
  std::string model;        // e.g. "WSDCGQ11LM"
  std::string vendor;       // e.g. "Aqara"
  std::string description;  // e.g. "Temperature, humidity and pressure sensor"
  std::string source = "native";  // "native" (known model) or "generated" (from clusters)
  nlohmann::json exposes = nlohmann::json::array();  // without linkquality
  nlohmann::json options = nlohmann::json::array();
  bool supports_ota = false;
};

// The definition for a device: a known model from the built-in table (the simulator's five device
// types among them), otherwise one generated from its input clusters, like zigbee2mqtt does for
// unsupported devices. nullopt before the interview produced a model id.
std::optional<Definition> DefinitionFor(const DeviceInfo& device);

// The device's exposes as zigbee2mqtt publishes them: the definition's, then linkquality.
nlohmann::json DeviceExposes(const Definition& definition);

// The `definition` object of bridge/devices and of the device_interview event.
nlohmann::json DefinitionPayload(const Definition& definition);

// Every property a device can report (top-level exposes and the features of composites such as
// light/switch), in expose order: what the state JSON holds and what becomes a metric.
std::vector<std::string> ExposedProperties(const nlohmann::json& exposes);

// The numeric expose for `property` (its unit etc.), or nullptr.
const nlohmann::json* FindExpose(const nlohmann::json& exposes, std::string_view property);

// Built-in models, for tests and docs: zigbee model id → definition.
struct KnownModel {
  std::string_view zigbee_model;   // Basic cluster modelId the simulator announces
  std::string_view simulator_type; // climate_sensor, smart_plug, color_bulb, motion_sensor, door_contact
};
const std::vector<KnownModel>& KnownModels();

}  // namespace edged::mqtt::bridge
