// What the zigbee2mqtt-compatible bridge needs from the Zigbee network: the device database as plain
// data, a handful of management calls, and events. The Zigbee module implements it with a thin adapter
// over its coordinator (drivers/zigbee); tests implement it in memory. Keeping the bridge on this
// narrow interface lets it be built and tested without a coordinator, and keeps ZNP types out of mqtt/.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace edged::mqtt::bridge {

// zigbee-herdsman's interview states, spelled as zigbee2mqtt publishes them in bridge/devices.
enum class InterviewState { kPending, kInProgress, kSuccessful, kFailed };
std::string_view InterviewStateName(InterviewState state);  // "PENDING", "IN_PROGRESS", ...

struct EndpointInfo {
  std::uint8_t id = 1;
  // zigbee-herdsman cluster names ("genBasic", "genOnOff", "msTemperatureMeasurement", ...): the
  // bridge lists them in bridge/devices and derives exposes from them for unknown models.
  std::vector<std::string> input_clusters;
  std::vector<std::string> output_clusters;
  friend bool operator==(const EndpointInfo&, const EndpointInfo&) = default;
};

// One device of the database, as the bridge sees it. Plain data, copied freely.
struct DeviceInfo {
  std::string ieee_address;  // "0x00124b0001020304" (lower-case hex, 0x prefix)
  std::uint16_t network_address = 0;
  std::string friendly_name;  // defaults to the IEEE address until renamed
  std::string type;           // "Router" | "EndDevice"
  std::string model_id;       // Basic cluster modelId
  std::string manufacturer;   // Basic cluster manufacturerName
  std::string power_source;   // "Mains (single phase)", "Battery", ... (zigbee-herdsman's names)
  std::string software_build_id;
  std::string date_code;
  std::optional<int> hardware_version;
  InterviewState interview_state = InterviewState::kPending;
  std::vector<EndpointInfo> endpoints;
  // zigbee2mqtt device options persisted with the device (retain, optimistic, qos, disabled,
  // description, homeassistant, ...). Always an object.
  nlohmann::json options = nlohmann::json::object();

  // Battery devices sleep: availability uses the passive timeout for them (zigbee2mqtt's rule:
  // a mains-powered router is "active", everything else is "passive").
  bool active() const { return type == "Router" && power_source != "Battery"; }
  friend bool operator==(const DeviceInfo&, const DeviceInfo&) = default;
};

struct CoordinatorInfo {
  std::string ieee_address;       // "0x00124b00deadbeef"
  std::string type = "zStack3x0";  // zigbee-herdsman's adapter type name
  std::string revision;           // firmware revision, e.g. "20240710"
  int channel = 11;
  int pan_id = 0x1A62;
  std::string extended_pan_id;  // "0xdddddddddddddddd"
};

// Events from the network. Called on the network's own thread; the bridge's handlers never block
// (they update in-memory state and hand publications to the non-blocking MQTT client). The network may
// call them while holding its own lock: the bridge never calls a ZigbeeNetworkView method while it
// holds the lock its handlers take.
struct NetworkEvents {
  std::function<void(const DeviceInfo&)> device_joined;
  // status: "started", "successful" or "failed"
  std::function<void(const DeviceInfo&, std::string_view status)> device_interview;
  std::function<void(const std::string& ieee_address, const std::string& friendly_name)> device_leave;
  // Something arrived from a device (attribute report, read response, cluster command), already
  // converted to zigbee2mqtt keys ({"temperature":21.5}); may be empty (only "seen"). linkquality is
  // the frame's LQI when known.
  std::function<void(const std::string& ieee_address, const nlohmann::json& state,
                     std::optional<int> linkquality)>
      device_message;
};

class ZigbeeNetworkView {
 public:
  virtual ~ZigbeeNetworkView() = default;

  // Installs the event handlers. Called once by the bridge before it starts publishing.
  virtual void SetEvents(NetworkEvents events) = 0;

  virtual CoordinatorInfo Coordinator() const = 0;
  // Every device except the coordinator, in join order.
  virtual std::vector<DeviceInfo> Devices() const = 0;

  // Permit joining for `duration` (0 closes it); zigbee2mqtt's range is 0..254 s.
  virtual Status PermitJoin(std::chrono::seconds duration) = 0;
  // When joining is permitted, when it ends (nullopt when closed).
  virtual std::optional<std::chrono::system_clock::time_point> PermitJoinEnd() const = 0;

  // Database edits; each persists before returning. NotFound for an unknown IEEE address,
  // AlreadyExists when the new name is taken.
  virtual Status Rename(const std::string& ieee_address, const std::string& new_name) = 0;
  // Asks the device to leave (unless force) and removes it from the database.
  virtual Status Remove(const std::string& ieee_address, bool force) = 0;
  // Replaces the device's options object.
  virtual Status SetOptions(const std::string& ieee_address, const nlohmann::json& options) = 0;

  // A `/set` command in zigbee2mqtt's JSON ({"state":"ON"}, {"brightness":128,"transition":2}, ...):
  // converted to ZCL and sent. Returns at once; `done` gets the outcome exactly once, when the device
  // acknowledged it or the coordinator's timeout passed, possibly on another thread, possibly before
  // SendCommand returns. A device that stopped answering so holds up only its own commands.
  // InvalidArgument for keys or values the device does not support.
  using Done = std::function<void(Status)>;
  virtual void SendCommand(const std::string& ieee_address, const nlohmann::json& command, Done done) = 0;
  // A `/get` command ({"state":""}): reads the attributes; the answers arrive as device_message.
  virtual void Read(const std::string& ieee_address, const nlohmann::json& command, Done done) = 0;
};

}  // namespace edged::mqtt::bridge
