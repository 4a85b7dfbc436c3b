#include "mqtt/zigbee_module/zigbee_module.h"

#include <utility>

namespace edged::mqtt::zigbee_module {

bridge::InterviewState ToBridge(zigbee::InterviewState state) {
  switch (state) {
    case zigbee::InterviewState::kPending: return bridge::InterviewState::kPending;
    case zigbee::InterviewState::kInProgress: return bridge::InterviewState::kInProgress;
    case zigbee::InterviewState::kSuccessful: return bridge::InterviewState::kSuccessful;
    case zigbee::InterviewState::kFailed: return bridge::InterviewState::kFailed;
  }
  return bridge::InterviewState::kPending;
}

bridge::DeviceInfo ToBridge(const zigbee::DeviceInfo& d) {
  bridge::DeviceInfo out;
  out.ieee_address = d.ieee_address;
  out.network_address = d.network_address;
  out.friendly_name = d.friendly_name;
  out.type = d.type;
  out.model_id = d.model_id;
  out.manufacturer = d.manufacturer;
  out.power_source = d.power_source;
  out.software_build_id = d.software_build_id;
  out.date_code = d.date_code;
  out.hardware_version = d.hardware_version;
  out.interview_state = ToBridge(d.interview_state);
  out.endpoints.reserve(d.endpoints.size());
  for (const auto& ep : d.endpoints) {
    bridge::EndpointInfo e;
    e.id = ep.id;
    e.input_clusters = ep.input_clusters;
    e.output_clusters = ep.output_clusters;
    out.endpoints.push_back(std::move(e));
  }
  out.options = d.options.is_object() ? d.options : nlohmann::json::object();
  return out;
}

bridge::CoordinatorInfo ToBridge(const zigbee::CoordinatorInfo& c) {
  bridge::CoordinatorInfo out;
  out.ieee_address = c.ieee_address;
  out.type = c.type;
  out.revision = c.revision;
  out.channel = c.channel;
  out.pan_id = c.pan_id;
  out.extended_pan_id = c.extended_pan_id;
  return out;
}

void ZigbeeNetworkAdapter::SetEvents(bridge::NetworkEvents events) {
  // The handlers are moved into shared state so the network's copies stay valid however often it
  // copies its NetworkEvents.
  auto shared = std::make_shared<bridge::NetworkEvents>(std::move(events));
  zigbee::NetworkEvents out;
  out.device_joined = [shared](const zigbee::DeviceInfo& d) {
    if (shared->device_joined) shared->device_joined(ToBridge(d));
  };
  out.device_interview = [shared](const zigbee::DeviceInfo& d, std::string_view status) {
    if (shared->device_interview) shared->device_interview(ToBridge(d), status);
  };
  out.device_leave = [shared](const std::string& ieee, const std::string& name) {
    if (shared->device_leave) shared->device_leave(ieee, name);
  };
  out.device_message = [shared](const std::string& ieee, const nlohmann::json& state, std::optional<int> lqi) {
    if (shared->device_message) shared->device_message(ieee, state, lqi);
  };
  network_.SetEvents(std::move(out));
}

bridge::CoordinatorInfo ZigbeeNetworkAdapter::Coordinator() const { return ToBridge(network_.Coordinator()); }

std::vector<bridge::DeviceInfo> ZigbeeNetworkAdapter::Devices() const {
  std::vector<bridge::DeviceInfo> out;
  for (const auto& d : network_.Devices()) out.push_back(ToBridge(d));
  return out;
}

Status ZigbeeNetworkAdapter::PermitJoin(std::chrono::seconds duration) { return network_.PermitJoin(duration); }

std::optional<std::chrono::system_clock::time_point> ZigbeeNetworkAdapter::PermitJoinEnd() const {
  return network_.PermitJoinEnd();
}

Status ZigbeeNetworkAdapter::Rename(const std::string& ieee, const std::string& new_name) {
  return network_.Rename(ieee, new_name);
}

Status ZigbeeNetworkAdapter::Remove(const std::string& ieee, bool force) { return network_.Remove(ieee, force); }

Status ZigbeeNetworkAdapter::SetOptions(const std::string& ieee, const nlohmann::json& options) {
  return network_.SetOptions(ieee, options);
}

void ZigbeeNetworkAdapter::SendCommand(const std::string& ieee, const nlohmann::json& command, Done done) {
  network_.SendCommandAsync(ieee, command, std::move(done));
}

void ZigbeeNetworkAdapter::Read(const std::string& ieee, const nlohmann::json& command, Done done) {
  network_.ReadAsync(ieee, command, std::move(done));
}

ZigbeeModule::ZigbeeModule(std::unique_ptr<zigbee::ZigbeeNetwork> network, std::unique_ptr<ZigbeeNetworkAdapter> adapter)
    : network_(std::move(network)), adapter_(std::move(adapter)) {}

ZigbeeModule::~ZigbeeModule() {
  Stop();
  bridge_.reset();  // before the adapter and the network it points at
  adapter_.reset();
}

Status ZigbeeModule::Start() {
  RETURN_IF_ERROR(network_->Start());
  if (Status s = bridge_->Start(); !s.ok()) {
    network_->Stop();
    return s;
  }
  return OkStatus();
}

void ZigbeeModule::Stop() {
  if (bridge_) bridge_->Stop();
  if (network_) network_->Stop();
}

Health ZigbeeModule::health() const {
  Health n = network_->health();
  Health b = bridge_->health();
  return static_cast<int>(n.state) >= static_cast<int>(b.state) ? n : b;
}

StatusOr<std::unique_ptr<ZigbeeModule>> NewZigbeeModule(const config::Config& config, Client& client,
                                                        prometheus::Registry* registry, ZigbeeModuleOptions options) {
  options.network.config = config.zigbee;
  options.network.registry = registry;
  std::filesystem::path state_file = options.network.state_dir / "state.json";  // beside the device database
  ASSIGN_OR_RETURN(auto network, zigbee::ZigbeeNetwork::Create(std::move(options.network)));
  auto adapter = std::make_unique<ZigbeeNetworkAdapter>(*network);
  auto module = std::make_unique<ZigbeeModule>(std::move(network), std::move(adapter));
  bridge::BridgeOptions bridge_options = bridge::BridgeOptionsFromConfig(config, options.version);
  // The network permits joining itself each time the coordinator comes up (zigbee.permit_join); the
  // bridge asking too, at its start when the coordinator is usually not up yet, would only warn.
  bridge_options.zigbee.permit_join = false;
  bridge_options.state_file = std::move(state_file);
  ASSIGN_OR_RETURN(module->bridge_, bridge::Bridge::Create(std::move(bridge_options), client, *module->adapter_, registry));
  return module;
}

}  // namespace edged::mqtt::zigbee_module
