#include "drivers/gpu/gpu.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>


namespace edged::gpu {
namespace {

namespace fs = std::filesystem;

std::string Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool LooksLikeVersion(std::string_view token) {
  // "535.129.03", "470.82": digits and dots, at least one dot, starting with a digit.
  if (token.empty() || !std::isdigit(static_cast<unsigned char>(token.front()))) return false;
  bool dot = false;
  for (char c : token) {
    if (c == '.') {
      dot = true;
    } else if (!std::isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return dot;
}

}  // namespace

StatusOr<GpuInfo> ParseNvidiaInformation(std::string_view text) {
  GpuInfo info;
  bool have_model = false;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = Trim(std::string_view(line).substr(0, colon));
    const std::string value = Trim(std::string_view(line).substr(colon + 1));
    if (key == "Model") {
      info.model = value;
      have_model = !value.empty();
    } else if (key == "GPU UUID") {
      info.uuid = value;
    } else if (key == "Bus Location") {
      info.bus_location = Lower(value);
    } else if (key == "Device Minor") {
      try {
        info.device_minor = std::stoi(value);
      } catch (const std::exception&) {
        info.device_minor = -1;  // a garbled number is not worth failing the whole GPU for
      }
    }
  }
  if (!have_model) return InvalidArgumentError("nvidia gpu information: no 'Model:' line");
  return info;
}

std::string ParseNvidiaDriverVersion(std::string_view text) {
  std::string first_line(text.substr(0, text.find('\n')));
  if (first_line.find("NVRM") == std::string::npos) return "";
  std::istringstream words(first_line);
  std::string word;
  while (words >> word) {
    if (LooksLikeVersion(word)) return word;
  }
  return "";
}

GpuInventory ScanGpus(const std::string& proc_root, const std::string& dev_root, CudaProbe* cuda) {
  GpuInventory inv;
  const fs::path nvidia = fs::path(proc_root) / "driver/nvidia";
  inv.driver_version = ParseNvidiaDriverVersion(ReadFile(nvidia / "version"));

  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(nvidia / "gpus", ec)) {
    StatusOr<GpuInfo> info = ParseNvidiaInformation(ReadFile(entry.path() / "information"));
    if (!info.ok()) continue;  // a GPU that fell off the bus has no readable information; skip it
    if (info->bus_location.empty()) info->bus_location = Lower(entry.path().filename().string());
    inv.gpus.push_back(std::move(*info));
  }
  std::sort(inv.gpus.begin(), inv.gpus.end(),
            [](const GpuInfo& a, const GpuInfo& b) { return a.bus_location < b.bus_location; });

  for (const fs::directory_entry& entry : fs::directory_iterator(dev_root, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("nvidia", 0) == 0) inv.device_nodes.push_back(entry.path().string());
  }
  std::sort(inv.device_nodes.begin(), inv.device_nodes.end());

  // Without the kernel driver's tree or device nodes no GPU can be used, so the CUDA runtime (half a
  // megabyte resident once loaded) is not loaded just to report "no device".
  if (cuda == nullptr || (inv.gpus.empty() && inv.device_nodes.empty())) return inv;
  StatusOr<CudaInfo> info = cuda->Probe();
  if (!info.ok()) {
    inv.cuda_error = std::string(info.status().message());
    return inv;
  }
  inv.cuda_runtime_version = info->runtime_version;
  const bool driver_tree = !inv.gpus.empty();
  for (const CudaDevice& d : info->devices) {
    GpuInfo* match = nullptr;
    for (GpuInfo& g : inv.gpus) {
      if (!d.pci_bus_id.empty() && g.bus_location == Lower(d.pci_bus_id)) match = &g;
    }
    if (match == nullptr && !driver_tree) {
      // No /proc/driver/nvidia (a container that sees the device but not the host's procfs): CUDA's
      // view is all there is.
      GpuInfo g;
      g.bus_location = Lower(d.pci_bus_id);
      g.model = d.name;
      inv.gpus.push_back(std::move(g));
      match = &inv.gpus.back();
    }
    if (match == nullptr) continue;
    if (match->model.empty()) match->model = d.name;
    match->memory_bytes = d.memory_bytes;
    match->compute_major = d.compute_major;
    match->compute_minor = d.compute_minor;
  }
  return inv;
}

}  // namespace edged::gpu
