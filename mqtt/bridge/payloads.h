// The payloads of zigbee2mqtt's bridge topics (extension/bridge.ts), as pure functions: bridge/info,
// bridge/devices, bridge/event, and the request/response envelope. JSON keys come out sorted
// (nlohmann::json's object is a std::map), as zigbee2mqtt's stringify sorts them.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "mqtt/bridge/exposes.h"
#include "mqtt/bridge/network_view.h"

namespace edged::mqtt::bridge {

struct BridgeInfoInput {
  std::string version;  // edged's version
  std::string commit;
  CoordinatorInfo coordinator;
  std::string log_level = "info";
  bool permit_join = false;
  std::optional<std::chrono::system_clock::time_point> permit_join_end;
  bool restart_required = false;
  // The effective configuration parts HomeAssistant and frontends read (secrets never included).
  nlohmann::json config = nlohmann::json::object();
};
nlohmann::json BridgeInfoPayload(const BridgeInfoInput& input);

// One entry of bridge/devices, in zigbee2mqtt 2.x's shape; the coordinator is an entry too.
nlohmann::json DeviceEntry(const DeviceInfo& device, const std::optional<Definition>& definition);
nlohmann::json CoordinatorEntry(const CoordinatorInfo& coordinator);
nlohmann::json BridgeDevicesPayload(const CoordinatorInfo& coordinator, const std::vector<DeviceInfo>& devices);

// bridge/event payloads.
nlohmann::json DeviceJoinedEvent(const DeviceInfo& device);
// status "started" | "successful" | "failed"; the definition goes with "successful".
nlohmann::json DeviceInterviewEvent(const DeviceInfo& device, std::string_view status);
nlohmann::json DeviceLeaveEvent(const std::string& ieee_address, const std::string& friendly_name);

// The response to a bridge/request/<name>: {"data":..., "status":"ok"} or
// {"data":{}, "status":"error", "error":"..."}; "transaction" copied from the request when it has
// one (zigbee2mqtt's utils.getResponse). `request` may be any JSON (even a bare string).
nlohmann::json OkResponse(const nlohmann::json& request, nlohmann::json data);
nlohmann::json ErrorResponse(const nlohmann::json& request, std::string_view error);

// The availability payload: {"state":"online"} / {"state":"offline"}.
std::string AvailabilityPayload(bool online);

}  // namespace edged::mqtt::bridge
