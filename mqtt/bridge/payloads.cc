#include "mqtt/bridge/payloads.h"

namespace edged::mqtt::bridge {
namespace {

using nlohmann::json;

json Endpoints(const std::vector<EndpointInfo>& endpoints) {
  json out = json::object();
  for (const auto& ep : endpoints) {
    out[std::to_string(ep.id)] = {{"bindings", json::array()},
                                  {"configured_reportings", json::array()},
                                  {"clusters", {{"input", ep.input_clusters}, {"output", ep.output_clusters}}},
                                  {"scenes", json::array()}};
  }
  return out;
}

json WithTransaction(const json& request, json response) {
  if (request.is_object()) {
    if (auto it = request.find("transaction"); it != request.end()) response["transaction"] = *it;
  }
  return response;
}

}  // namespace

nlohmann::json BridgeInfoPayload(const BridgeInfoInput& in) {
  // zigbee-herdsman reports the Z-Stack revision as a number (20230507); keep that type for templates.
  const std::string& rev = in.coordinator.revision;
  const bool numeric = !rev.empty() && rev.size() < 16 && rev.find_first_not_of("0123456789") == std::string::npos;
  json meta = {{"revision", numeric ? json(std::stoll(rev)) : json(rev)}};
  json info = {{"version", in.version},
               {"commit", in.commit},
               {"coordinator", {{"ieee_address", in.coordinator.ieee_address}, {"type", in.coordinator.type}, {"meta", meta}}},
               {"network",
                {{"channel", in.coordinator.channel},
                 {"pan_id", in.coordinator.pan_id},
                 {"extended_pan_id", in.coordinator.extended_pan_id}}},
               {"log_level", in.log_level},
               {"permit_join", in.permit_join},
               {"restart_required", in.restart_required},
               {"config", in.config}};
  if (in.permit_join && in.permit_join_end) {
    // zigbee2mqtt publishes the end as milliseconds since the epoch.
    info["permit_join_end"] =
        std::chrono::duration_cast<std::chrono::milliseconds>(in.permit_join_end->time_since_epoch()).count();
  }
  return info;
}

nlohmann::json DeviceEntry(const DeviceInfo& device, const std::optional<Definition>& definition) {
  json entry = {{"ieee_address", device.ieee_address},
                {"type", device.type},
                {"network_address", device.network_address},
                {"supported", definition.has_value() && definition->source == "native"},
                {"friendly_name", device.friendly_name},
                {"disabled", device.options.contains("disabled") && device.options["disabled"] == true},
                {"interviewing", device.interview_state == InterviewState::kInProgress},
                {"interview_completed", device.interview_state == InterviewState::kSuccessful},
                {"interview_state", InterviewStateName(device.interview_state)},
                {"endpoints", Endpoints(device.endpoints)}};
  // zigbee2mqtt leaves out what is undefined (stringify drops undefined values).
  if (definition) entry["definition"] = DefinitionPayload(*definition);
  if (!device.power_source.empty()) entry["power_source"] = device.power_source;
  if (!device.software_build_id.empty()) entry["software_build_id"] = device.software_build_id;
  if (!device.date_code.empty()) entry["date_code"] = device.date_code;
  if (!device.model_id.empty()) entry["model_id"] = device.model_id;
  if (!device.manufacturer.empty()) entry["manufacturer"] = device.manufacturer;
  if (auto it = device.options.find("description"); it != device.options.end() && it->is_string()) {
    entry["description"] = *it;
  }
  return entry;
}

nlohmann::json CoordinatorEntry(const CoordinatorInfo& coordinator) {
  return {{"ieee_address", coordinator.ieee_address},
          {"type", "Coordinator"},
          {"network_address", 0},
          {"supported", true},
          {"friendly_name", "Coordinator"},
          {"disabled", false},
          {"interviewing", false},
          {"interview_completed", true},
          {"interview_state", "SUCCESSFUL"},
          {"endpoints", json::object()}};
}

nlohmann::json BridgeDevicesPayload(const CoordinatorInfo& coordinator, const std::vector<DeviceInfo>& devices) {
  json out = json::array({CoordinatorEntry(coordinator)});
  for (const auto& d : devices) out.push_back(DeviceEntry(d, DefinitionFor(d)));
  return out;
}

nlohmann::json DeviceJoinedEvent(const DeviceInfo& device) {
  return {{"type", "device_joined"},
          {"data", {{"friendly_name", device.friendly_name}, {"ieee_address", device.ieee_address}}}};
}

nlohmann::json DeviceInterviewEvent(const DeviceInfo& device, std::string_view status) {
  json data = {{"friendly_name", device.friendly_name}, {"status", status}, {"ieee_address", device.ieee_address}};
  if (status == "successful") {
    auto definition = DefinitionFor(device);
    data["supported"] = definition.has_value() && definition->source == "native";
    if (definition) data["definition"] = DefinitionPayload(*definition);
  }
  return {{"type", "device_interview"}, {"data", data}};
}

nlohmann::json DeviceLeaveEvent(const std::string& ieee_address, const std::string& friendly_name) {
  return {{"type", "device_leave"}, {"data", {{"ieee_address", ieee_address}, {"friendly_name", friendly_name}}}};
}

nlohmann::json OkResponse(const nlohmann::json& request, nlohmann::json data) {
  return WithTransaction(request, {{"data", std::move(data)}, {"status", "ok"}});
}

nlohmann::json ErrorResponse(const nlohmann::json& request, std::string_view error) {
  return WithTransaction(request, {{"data", json::object()}, {"status", "error"}, {"error", error}});
}

std::string AvailabilityPayload(bool online) { return online ? R"({"state":"online"})" : R"({"state":"offline"})"; }

}  // namespace edged::mqtt::bridge
