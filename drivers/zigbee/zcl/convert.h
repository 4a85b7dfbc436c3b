// Converters between ZCL and zigbee2mqtt's JSON state keys. Pure functions: the MQTT bridge and the
// coordinator call them; tests drive them with literal values.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "drivers/zigbee/zcl/zcl.h"

namespace edged::zigbee::zcl {

// Scales a device announced for its measurements (read during configuration); the defaults are the
// common ones, used until the device answered.
struct MeasurementScale {
  double power_multiplier = 1, power_divisor = 1;       // activePower → W
  double voltage_multiplier = 1, voltage_divisor = 1;   // rmsVoltage → V
  double current_multiplier = 1, current_divisor = 1000;  // rmsCurrent → A
  double energy_multiplier = 1, energy_divisor = 1000;  // currentSummDelivered → kWh
};

// Attribute values of one cluster (from a report or a read response) → zigbee2mqtt keys, e.g.
// temperature 0x0402/0x0000 = 2150 → {"temperature": 21.5}. Attributes without a converter and
// "invalid" sentinel values (0x8000 for temperature, 0xFFFF for humidity, ...) are left out.
nlohmann::json AttributesToState(std::uint16_t cluster, std::span<const AttributeRecord> attributes,
                                 const MeasurementScale& scale = {});

// Cluster-specific commands a device sends that carry state (IAS zone status change notification,
// on/off commands from a switch) → zigbee2mqtt keys; an empty object when the command carries none.
nlohmann::json ClusterCommandToState(std::uint16_t cluster, const Frame& frame);

// IAS zone status bits → {"contact", "tamper", "battery_low"} for door contacts, {"occupancy", ...}
// for motion sensors (zone type 0x000D).
nlohmann::json ZoneStatusToState(std::uint16_t zone_status, std::uint16_t zone_type);

// One ZCL request produced from a JSON command; the coordinator picks the endpoint that has the
// cluster, fills the sequence number and sends it.
struct ZclRequest {
  std::uint16_t cluster = 0;
  FrameKind kind = FrameKind::kCluster;
  std::uint8_t command = 0;
  Bytes payload;
  friend bool operator==(const ZclRequest&, const ZclRequest&) = default;
};

// A `/set` payload → ZCL requests, in the order zigbee2mqtt sends them: {"state":"ON"|"OFF"|"TOGGLE"},
// {"brightness":0..254, "transition":seconds}, {"color_temp":mireds}, {"color":{"x":..,"y":..}}.
// InvalidArgument names the offending key and the accepted range; unknown keys are an error too, so a
// typo never silently does nothing.
StatusOr<std::vector<ZclRequest>> JsonToZcl(const nlohmann::json& command);

// A `/get` payload ({"state":""}, {"brightness":""}, ...) → Read Attributes requests.
StatusOr<std::vector<ZclRequest>> JsonToRead(const nlohmann::json& command);

}  // namespace edged::zigbee::zcl
