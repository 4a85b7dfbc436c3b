#include "edge/labels/labels.h"

#include <algorithm>
#include <cctype>
#include <ctime>

#include <fmt/format.h>

namespace edged::labels {
namespace {

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

bool IsNameChar(char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; }

bool IsDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    for (char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    if (label.front() == '-' || label.back() == '-') return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

}  // namespace

bool IsValidLabelValue(std::string_view value) {
  if (value.empty()) return true;
  if (value.size() > 63 || !IsAlnum(value.front()) || !IsAlnum(value.back())) return false;
  return std::all_of(value.begin(), value.end(), IsNameChar);
}

bool IsValidLabelKey(std::string_view key) {
  std::string_view name = key;
  if (size_t slash = key.find('/'); slash != std::string_view::npos) {
    if (!IsDnsSubdomain(key.substr(0, slash))) return false;
    name = key.substr(slash + 1);
  }
  return !name.empty() && IsValidLabelValue(name);
}

std::string SanitizeLabelValue(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (IsNameChar(c)) {
      out.push_back(c);
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
  }
  if (out.size() > 63) out.resize(63);
  while (!out.empty() && !IsAlnum(out.back())) out.pop_back();
  size_t first = 0;
  while (first < out.size() && !IsAlnum(out[first])) ++first;
  return out.substr(first);
}

StatusOr<std::string> QualifiedKey(std::string_view prefix, std::string_view name) {
  std::string key;
  if (prefix.empty()) {
    key = name;
  } else if (prefix.back() == '/') {
    std::string flat(name);
    std::replace(flat.begin(), flat.end(), '/', '.');
    key = std::string(prefix) + flat;
  } else {
    key = std::string(prefix) + std::string(name);
  }
  if (!IsValidLabelKey(key)) {
    return InvalidArgumentError(fmt::format(
        "label key '{}' (labels.prefix '{}' + '{}') is not a valid Kubernetes label key; use a DNS "
        "subdomain ending in '/' such as 'edged.io/'",
        key, prefix, name));
  }
  return key;
}

LabelMap InventoryLabels(const inventory::Inventory& inv) {
  LabelMap out;
  const std::string yes = "true";
  if (!inv.usb_devices.empty()) out["hardware/usb"] = yes;

  if (const usb::Coordinator* c = usb::PreferredCoordinator(inv.zigbee_coordinators, /*require_tty=*/false)) {
    out["hardware/zigbee"] = yes;
    out["hardware/zigbee.adapter"] = SanitizeLabelValue(c->adapter);
    out["hardware/zigbee.product"] = SanitizeLabelValue(c->product);
    out["hardware/zigbee.count"] = std::to_string(inv.zigbee_coordinators.size());
  }

  const std::vector<gpu::GpuInfo>& gpus = inv.gpu.gpus;
  if (!gpus.empty()) {
    out["hardware/nvidia"] = yes;
    out["hardware/nvidia.count"] = std::to_string(gpus.size());
    if (std::string product = SanitizeLabelValue(gpus.front().model); !product.empty()) {
      out["hardware/nvidia.product"] = product;
    }
    // The weakest GPU bounds what a scheduled workload can count on.
    std::uint64_t memory = 0;
    std::pair<int, int> compute{0, 0};
    bool all_known = true;
    for (const gpu::GpuInfo& g : gpus) {
      if (g.memory_bytes == 0 || g.compute_major == 0) {
        all_known = false;
        break;
      }
      memory = memory == 0 ? g.memory_bytes : std::min(memory, g.memory_bytes);
      std::pair<int, int> cc{g.compute_major, g.compute_minor};
      compute = compute.first == 0 ? cc : std::min(compute, cc);
    }
    if (all_known) {
      out["hardware/nvidia.memory_mib"] = std::to_string(memory / (1024 * 1024));
      out["hardware/nvidia.compute.major"] = std::to_string(compute.first);
      out["hardware/nvidia.compute.minor"] = std::to_string(compute.second);
    }
    if (std::string driver = SanitizeLabelValue(inv.gpu.driver_version); !driver.empty()) {
      out["hardware/nvidia.driver"] = driver;
    }
  }

  for (const inventory::Mount& m : inv.network_mounts) {
    out["storage/nas"] = yes;
    out[m.fstype.rfind("nfs", 0) == 0 ? "storage/nas.nfs" : "storage/nas.cifs"] = yes;
  }
  for (const inventory::Disk& d : inv.disks) out[d.rotational ? "storage/hdd" : "storage/ssd"] = yes;
  return out;
}

LabelMap SelectLabels(const LabelMap& labels, const config::LabelsConfig& config,
                      std::vector<std::string>* problems) {
  LabelMap out;
  for (const auto& [name, value] : labels) {
    if (!config.allow.empty() && std::find(config.allow.begin(), config.allow.end(), name) == config.allow.end()) {
      continue;
    }
    StatusOr<std::string> key = QualifiedKey(config.prefix, name);
    if (!key.ok()) {
      if (problems != nullptr) problems->emplace_back(key.status().message());
      continue;
    }
    if (!IsValidLabelValue(value)) {
      if (problems != nullptr) problems->push_back(fmt::format("label {}: value '{}' is not valid", *key, value));
      continue;
    }
    out[*key] = value;
  }
  return out;
}

std::string Rfc3339Utc(long long unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string RenderNfdFeatureFile(const LabelMap& labels, long long expiry_unix_seconds) {
  std::string out = fmt::format("# +expiry-time={}\n# Written by edged; rewritten on every inventory change.\n",
                                Rfc3339Utc(expiry_unix_seconds));
  for (const auto& [key, value] : labels) out += fmt::format("{}={}\n", key, value);
  return out;
}

}  // namespace edged::labels
