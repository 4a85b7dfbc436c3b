#include "drivers/zigbee/device_db.h"

#include <spdlog/fmt/fmt.h>

#include "base/atomic_file.h"

namespace edged::zigbee {

std::string_view InterviewStateName(InterviewState state) {
  switch (state) {
    case InterviewState::kPending: return "PENDING";
    case InterviewState::kInProgress: return "IN_PROGRESS";
    case InterviewState::kSuccessful: return "SUCCESSFUL";
    case InterviewState::kFailed: return "FAILED";
  }
  return "PENDING";
}

namespace detail {
namespace {

using json = nlohmann::json;

InterviewState ParseInterview(const std::string& s) {
  if (s == "SUCCESSFUL") return InterviewState::kSuccessful;
  if (s == "FAILED") return InterviewState::kFailed;
  // An interview that was running when edged stopped did not finish: it starts again.
  return InterviewState::kPending;
}

}  // namespace

std::filesystem::path DeviceDatabasePath(const std::filesystem::path& state_dir) {
  return state_dir / "zigbee-devices.json";
}

std::string IeeeToString(std::uint64_t ieee) { return fmt::format("0x{:016x}", ieee); }

StatusOr<std::uint64_t> ParseIeee(std::string_view text) {
  std::string_view hex = text;
  if (hex.size() > 2 && hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X')) hex.remove_prefix(2);
  if (hex.empty() || hex.size() > 16) return InvalidArgumentError(fmt::format("'{}' is not an IEEE address", text));
  std::uint64_t v = 0;
  for (char c : hex) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return InvalidArgumentError(fmt::format("'{}' is not an IEEE address", text));
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  return v;
}

std::string SerializeDevices(const std::vector<DeviceInfo>& devices) {
  json list = json::array();
  for (const auto& d : devices) {
    json eps = json::array();
    for (const auto& ep : d.endpoints) {
      eps.push_back({{"id", ep.id}, {"profile_id", ep.profile_id}, {"device_id", ep.device_id},
                     {"input_clusters", ep.input_cluster_ids}, {"output_clusters", ep.output_cluster_ids}});
    }
    json j = {{"ieee_address", d.ieee_address}, {"network_address", d.network_address},
              {"friendly_name", d.friendly_name}, {"type", d.type}, {"model_id", d.model_id},
              {"manufacturer", d.manufacturer}, {"power_source", d.power_source},
              {"software_build_id", d.software_build_id}, {"date_code", d.date_code},
              {"interview_state", InterviewStateName(d.interview_state)}, {"endpoints", eps},
              {"options", d.options}};
    if (d.hardware_version) j["hardware_version"] = *d.hardware_version;
    if (d.last_seen) {
      j["last_seen_ms"] =
          std::chrono::duration_cast<std::chrono::milliseconds>(d.last_seen->time_since_epoch()).count();
    }
    if (d.linkquality) j["linkquality"] = *d.linkquality;
    list.push_back(std::move(j));
  }
  return json({{"version", 1}, {"devices", list}}).dump(2) + "\n";
}

StatusOr<std::vector<DeviceInfo>> ParseDevices(std::string_view text, std::string_view where) {
  try {
    const json root = json::parse(text);
    std::vector<DeviceInfo> out;
    for (const auto& j : root.at("devices")) {
      DeviceInfo d;
      d.ieee_address = j.at("ieee_address").get<std::string>();
      if (!ParseIeee(d.ieee_address).ok()) {
        return DataLossError(fmt::format("{}: device '{}' has no valid IEEE address", where, d.ieee_address));
      }
      d.network_address = j.value("network_address", std::uint16_t{0xFFFE});
      d.friendly_name = j.value("friendly_name", d.ieee_address);
      d.type = j.value("type", std::string("Unknown"));
      d.model_id = j.value("model_id", std::string());
      d.manufacturer = j.value("manufacturer", std::string());
      d.power_source = j.value("power_source", std::string("Unknown"));
      d.software_build_id = j.value("software_build_id", std::string());
      d.date_code = j.value("date_code", std::string());
      if (j.contains("hardware_version")) d.hardware_version = j.at("hardware_version").get<int>();
      d.interview_state = ParseInterview(j.value("interview_state", std::string("PENDING")));
      d.options = j.value("options", json::object());
      if (!d.options.is_object()) d.options = json::object();
      if (j.contains("last_seen_ms")) {
        d.last_seen = std::chrono::system_clock::time_point(std::chrono::milliseconds(j.at("last_seen_ms").get<std::int64_t>()));
      }
      if (j.contains("linkquality")) d.linkquality = j.at("linkquality").get<int>();
      for (const auto& e : j.value("endpoints", json::array())) {
        EndpointInfo ep;
        ep.id = e.at("id").get<std::uint8_t>();
        ep.profile_id = e.value("profile_id", std::uint16_t{0x0104});
        ep.device_id = e.value("device_id", std::uint16_t{0});
        ep.input_cluster_ids = e.value("input_clusters", std::vector<std::uint16_t>{});
        ep.output_cluster_ids = e.value("output_clusters", std::vector<std::uint16_t>{});
        d.endpoints.push_back(std::move(ep));
      }
      out.push_back(std::move(d));
    }
    return out;
  } catch (const json::exception& e) {
    return DataLossError(fmt::format("{}: the device database is not valid ({}); restore it from a backup or move it "
                                     "away to start with an empty one",
                                     where, e.what()));
  }
}

StatusOr<std::vector<DeviceInfo>> LoadDevices(const std::filesystem::path& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return std::vector<DeviceInfo>{};
    return text.status();
  }
  return ParseDevices(*text, path.string());
}

Status SaveDevices(const std::filesystem::path& path, const std::vector<DeviceInfo>& devices) {
  return WriteFileAtomically(path, SerializeDevices(devices), 0644);
}

}  // namespace detail
}  // namespace edged::zigbee
