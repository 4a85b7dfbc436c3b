// smartctl --json answers (smartmontools 7.x, json_format_version 1.x) as SmartDevice values.
#include <algorithm>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/fmt/fmt.h>
#include <spdlog/fmt/ranges.h>

#include "drivers/storage/storage_internal.h"

namespace edged::storage {

const std::vector<SmartExitFlag>& SmartExitFlags() {
  // smartctl(8), RETURN VALUES.
  static const std::vector<SmartExitFlag> kFlags = {
      {0, "command_line_error", "Command line did not parse"},
      {1, "device_open_failed",
       "Device open failed, device did not return an IDENTIFY DEVICE structure, or device is in a low-power mode"},
      {2, "smart_command_failed",
       "Some SMART or other ATA command to the disk failed, or there was a checksum error in a SMART data structure"},
      {3, "disk_failing", "SMART status check returned \"DISK FAILING\""},
      {4, "prefail_below_threshold", "We found prefail Attributes <= threshold"},
      {5, "attributes_were_below_threshold",
       "SMART status check returned \"DISK OK\" but some (usage or prefail) Attributes have been <= threshold "
       "at some time in the past"},
      {6, "error_log_has_errors", "The device error log contains records of errors"},
      {7, "self_test_log_has_errors", "The device self-test log contains records of errors"},
  };
  return kFlags;
}

std::vector<std::string> DecodeSmartExitStatus(int exit_status) {
  std::vector<std::string> names;
  for (const SmartExitFlag& f : SmartExitFlags()) {
    if ((exit_status >> f.bit) & 1) names.emplace_back(f.name);
  }
  return names;
}

namespace detail {
namespace {

using nlohmann::json;

std::string String(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

template <typename T>
std::optional<T> Number(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  if constexpr (std::is_unsigned_v<T>) {
    if (it->is_number_integer() && it->get<long long>() < 0) return std::nullopt;
  }
  return it->get<T>();
}

const json& Object(const json& j, const char* key) {
  static const json kEmpty = json::object();
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : kEmpty;
}

// smartctl's messages, with their severity ("information", "warning", "error").
std::vector<std::pair<std::string, std::string>> Messages(const json& root) {
  std::vector<std::pair<std::string, std::string>> out;
  const json& sc = Object(root, "smartctl");
  auto it = sc.find("messages");
  if (it == sc.end() || !it->is_array()) return out;
  for (const json& m : *it) {
    if (m.is_object()) out.emplace_back(String(m, "string"), String(m, "severity"));
  }
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

std::string SmartDeviceLabel(std::string_view path) {
  if (StartsWith(path, "/dev/")) path.remove_prefix(5);
  return std::string(path);
}

StatusOr<std::vector<SmartScanEntry>> ParseSmartScan(std::string_view text) {
  try {
    const json root = json::parse(text);
    if (!root.is_object()) return DataLossError("smartctl --scan-open --json: the answer is not a JSON object");
    std::vector<SmartScanEntry> out;
    auto it = root.find("devices");
    if (it == root.end()) return out;  // no disks: smartctl leaves the array out
    if (!it->is_array()) return DataLossError("smartctl --scan-open --json: \"devices\" is not an array");
    for (const json& d : *it) {
      if (!d.is_object()) continue;
      SmartScanEntry e{String(d, "name"), String(d, "type"), String(d, "protocol"), String(d, "open_error")};
      if (!e.path.empty()) out.push_back(std::move(e));
    }
    return out;
  } catch (const json::exception& e) {
    return DataLossError(fmt::format("smartctl --scan-open --json: bad JSON ({})", e.what()));
  }
}

StatusOr<SmartScanEntry> ParseSmartDeviceSpec(std::string_view spec) {
  std::istringstream words{std::string(spec)};
  std::vector<std::string> w;
  for (std::string s; words >> s;) w.push_back(std::move(s));
  SmartScanEntry e;
  if (w.size() == 1) {
    e.path = w[0];
  } else if (w.size() == 3 && w[1] == "-d") {
    e.path = w[0];
    e.type = w[2];
  } else {
    return InvalidArgumentError(fmt::format(
        "storage.smart.devices: '{}' is not 'DEVICE' or 'DEVICE -d TYPE' (e.g. '/dev/sdb -d sat')", spec));
  }
  if (e.path.empty() || e.path[0] != '/') {
    return InvalidArgumentError(fmt::format("storage.smart.devices: '{}' is not an absolute device path", spec));
  }
  return e;
}

StatusOr<SmartDevice> ParseSmartDevice(std::string_view text, int process_exit) {
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    return DataLossError(fmt::format("smartctl -a --json: bad JSON ({})", e.what()));
  }
  if (!root.is_object()) return DataLossError("smartctl -a --json: the answer is not a JSON object");
  try {
    SmartDevice d;
    const json& dev = Object(root, "device");
    d.path = String(dev, "name");
    d.device = SmartDeviceLabel(d.path);
    d.type = String(dev, "type");
    d.protocol = String(dev, "protocol");
    d.model = String(root, "model_name");
    d.serial = String(root, "serial_number");
    d.firmware = String(root, "firmware_version");
    d.exit_status = Number<int>(Object(root, "smartctl"), "exit_status").value_or(process_exit);
    d.exit_flags = DecodeSmartExitStatus(d.exit_status);

    std::string first_error;
    for (const auto& [text_, severity] : Messages(root)) {
      // --nocheck=standby: "Device is in STANDBY mode, exit(2)" (or SLEEP), and nothing else.
      if (StartsWith(text_, "Device is in ") && text_.find(" mode") != std::string::npos &&
          (text_.find("STANDBY") != std::string::npos || text_.find("SLEEP") != std::string::npos)) {
        d.standby = true;
      }
      if (severity == "error" && first_error.empty()) first_error = text_;
    }

    const json& status = Object(root, "smart_status");
    if (auto it = status.find("passed"); it != status.end() && it->is_boolean()) d.healthy = it->get<bool>();
    if (auto t = Number<double>(Object(root, "temperature"), "current")) d.temperature_celsius = t;
    d.power_on_hours = Number<std::uint64_t>(Object(root, "power_on_time"), "hours");

    const json& attrs = Object(root, "ata_smart_attributes");
    if (auto it = attrs.find("table"); it != attrs.end() && it->is_array()) {
      for (const json& a : *it) {
        if (!a.is_object()) continue;
        const auto id = Number<int>(a, "id");
        const auto raw = Number<std::uint64_t>(Object(a, "raw"), "value");
        if (!id || !raw) continue;
        // Raw values of these three are plain counts on every vendor; others (e.g. 9 or 194) pack
        // several fields, which smartctl already decodes into power_on_time and temperature.
        if (*id == 5) d.reallocated_sectors = raw;
        if (*id == 197) d.pending_sectors = raw;
        if (*id == 198) d.offline_uncorrectable = raw;
      }
    }
    const json& nvme = Object(root, "nvme_smart_health_information_log");
    if (!nvme.empty()) {
      d.percentage_used = Number<std::uint64_t>(nvme, "percentage_used");
      d.media_errors = Number<std::uint64_t>(nvme, "media_errors");
      d.critical_warning = Number<std::uint64_t>(nvme, "critical_warning");
      d.available_spare = Number<std::uint64_t>(nvme, "available_spare");
      if (!d.temperature_celsius) d.temperature_celsius = Number<double>(nvme, "temperature");
      if (!d.power_on_hours) d.power_on_hours = Number<std::uint64_t>(nvme, "power_on_hours");
    }

    // Bits 0 and 1 mean smartctl could not read the device at all (a sleeping disk sets bit 1 too, but
    // that is not an error); bit 2 with no health answer means no SMART data came back.
    if (!d.standby && ((d.exit_status & 0x3) != 0 || (!d.healthy && (d.exit_status & 0x4) != 0))) {
      d.error = true;
      d.error_message = !first_error.empty()
                            ? first_error
                            : fmt::format("smartctl exit status {} ({})", d.exit_status,
                                          fmt::join(d.exit_flags, ", "));
    }
    return d;
  } catch (const json::exception& e) {
    return DataLossError(fmt::format("smartctl -a --json: unexpected JSON ({})", e.what()));
  }
}

bool SmartNeedsDeviceType(const SmartDevice& device) {
  const std::string& m = device.error_message;
  return device.error && (m.find("Unknown USB bridge") != std::string::npos ||
                          m.find("specify device type with the -d option") != std::string::npos ||
                          m.find("Unable to detect device type") != std::string::npos);
}

}  // namespace detail
}  // namespace edged::storage
