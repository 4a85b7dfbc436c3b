// The Zigbee network as the rest of edged sees it: a Z-Stack coordinator on a tty, tcp:// or the
// in-process simulator, the device database, and events. This is the one public header of
// drivers/zigbee for consumers; the types mirror mqtt/bridge/network_view.h field for field, so the
// bridge's adapter is a copy, and nothing from ZNP or ZCL leaks out.
//
// Threading: all methods are thread-safe. Events are called from the network's threads and must not
// block; they may be called while the network holds its own lock, so a handler must not call back into
// the network synchronously (hand the work to another thread). SendCommand and Read block their
// caller until the device acknowledged (or the timeout passed), and never block other devices; the
// *Async forms return at once and report the outcome to a callback.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/module.h"
#include "base/status.h"
#include "config/config.h"

namespace prometheus {
class Registry;
}

namespace edged::zigbee {

namespace sim {
class ZnpSimulator;
}

enum class InterviewState { kPending, kInProgress, kSuccessful, kFailed };
std::string_view InterviewStateName(InterviewState state);  // "PENDING", "IN_PROGRESS", "SUCCESSFUL", "FAILED"

struct EndpointInfo {
  std::uint8_t id = 1;
  std::uint16_t profile_id = 0x0104;
  std::uint16_t device_id = 0;
  std::vector<std::uint16_t> input_cluster_ids;
  std::vector<std::uint16_t> output_cluster_ids;
  // zigbee-herdsman cluster names ("genOnOff", ...); unknown clusters as their decimal id
  std::vector<std::string> input_clusters;
  std::vector<std::string> output_clusters;
  friend bool operator==(const EndpointInfo&, const EndpointInfo&) = default;
};

struct DeviceInfo {
  std::string ieee_address;  // "0x00124b0001020304"
  std::uint16_t network_address = 0;
  std::string friendly_name;  // the IEEE address until renamed
  std::string type;           // "Router" | "EndDevice" | "Unknown"
  std::string model_id;
  std::string manufacturer;
  std::string power_source;  // "Mains (single phase)", "Battery", "Unknown" (herdsman's names)
  std::string software_build_id;
  std::string date_code;
  std::optional<int> hardware_version;
  InterviewState interview_state = InterviewState::kPending;
  std::vector<EndpointInfo> endpoints;
  nlohmann::json options = nlohmann::json::object();
  // Runtime facts, persisted too so a restart knows when a device was last heard from.
  std::optional<std::chrono::system_clock::time_point> last_seen;
  std::optional<int> linkquality;
  bool active() const { return type == "Router" && power_source != "Battery"; }
  friend bool operator==(const DeviceInfo&, const DeviceInfo&) = default;
};

struct CoordinatorInfo {
  std::string ieee_address;
  std::string type = "zStack3x0";
  std::string revision;  // firmware build date, e.g. "20230507"
  int channel = 11;
  int pan_id = 0x1A62;
  std::string extended_pan_id;  // "0xdddddddddddddddd"
};

struct NetworkEvents {
  std::function<void(const DeviceInfo&)> device_joined;
  std::function<void(const DeviceInfo&, std::string_view status)> device_interview;  // started|successful|failed
  std::function<void(const std::string& ieee_address, const std::string& friendly_name)> device_leave;
  // Converted zigbee2mqtt keys ({"temperature":21.5}); may be empty (the device was only seen).
  std::function<void(const std::string& ieee_address, const nlohmann::json& state, std::optional<int> linkquality)>
      device_message;
  // The coordinator came up (after start-up) or went away (link lost).
  std::function<void(bool up)> coordinator_state;
};

struct NetworkOptions {
  config::ZigbeeConfig config;
  std::filesystem::path state_dir;  // device database and network key live here
  prometheus::Registry* registry = nullptr;  // metrics, when given
  // Timing, shortened by tests; the defaults follow zigbee-herdsman.
  std::chrono::milliseconds sreq_timeout{6000};
  std::chrono::milliseconds areq_timeout{10000};
  std::chrono::milliseconds reconnect_min{250};
  std::chrono::milliseconds reconnect_max{10000};
  // "simulator" port: report interval of the in-process simulator; 0 = config.simulator.report_interval
  std::chrono::milliseconds simulator_report_interval{0};
  // Simulated air time before a device's answer or report reaches the simulated coordinator.
  std::chrono::milliseconds simulator_response_delay{5};
  // "auto" port: finds the coordinator's tty (the daemon passes drivers/usb's ResolveAutoPort over its
  // enumerator). Called at Start(); without it "auto" is a configuration error.
  std::function<StatusOr<std::string>()> resolve_auto_port;
};

class ZigbeeNetwork : public Module {
 public:
  // Validates the configuration (port, network parameters), loads the device database and, for the
  // "simulator" port, creates the in-process simulator. Does not touch the coordinator yet.
  static StatusOr<std::unique_ptr<ZigbeeNetwork>> Create(NetworkOptions options);
  ~ZigbeeNetwork() override;

  std::string_view name() const override { return "zigbee"; }
  // Starts the link thread; the coordinator start-up runs there whenever the link (re)opens.
  Status Start() override;
  void Stop() override;
  // ok when the coordinator is up; failed with the reason while it is not (unplugged, start-up failed).
  Health health() const override;

  void SetEvents(NetworkEvents events);
  bool coordinator_up() const;
  CoordinatorInfo Coordinator() const;
  std::vector<DeviceInfo> Devices() const;  // join order
  // By IEEE address or friendly name.
  StatusOr<DeviceInfo> FindDevice(std::string_view ieee_or_name) const;
  // The last known state of a device in zigbee2mqtt keys.
  nlohmann::json DeviceState(std::string_view ieee_or_name) const;

  Status PermitJoin(std::chrono::seconds duration);
  std::optional<std::chrono::system_clock::time_point> PermitJoinEnd() const;

  Status Rename(const std::string& ieee_or_name, const std::string& new_name);
  Status Remove(const std::string& ieee_or_name, bool force);
  Status SetOptions(const std::string& ieee_or_name, const nlohmann::json& options);
  Status SendCommand(const std::string& ieee_or_name, const nlohmann::json& command);
  Status Read(const std::string& ieee_or_name, const nlohmann::json& command);
  // The same without waiting: `done` is called exactly once with the outcome, on the device's job
  // thread once the device answered (or timed out), or on the caller's thread when the command is
  // rejected before it is queued (unknown device, no such cluster, coordinator down). It must not
  // block: other commands to the same device wait behind it.
  using Done = std::function<void(Status)>;
  void SendCommandAsync(const std::string& ieee_or_name, const nlohmann::json& command, Done done);
  void ReadAsync(const std::string& ieee_or_name, const nlohmann::json& command, Done done);

  // The in-process simulator behind the "simulator" port (demo, tests); nullptr otherwise.
  sim::ZnpSimulator* simulator() const;

 private:
  struct Impl;
  explicit ZigbeeNetwork(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edged::zigbee
