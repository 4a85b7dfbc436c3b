// Node labels as pure functions of the hardware inventory, and the Kubernetes rules they must obey.
// Names are written "category/name" ("hardware/zigbee.adapter"); a configured prefix and allow-list
// turn them into the keys that go on the node.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "drivers/inventory/inventory.h"

namespace edged::labels {

using LabelMap = std::map<std::string, std::string>;  // key -> value, sorted

// Every label the inventory supports, unprefixed. Only facts that hold are asserted (no "=false"
// labels): hardware that goes away makes its labels disappear, which removes them from the node.
//   hardware/usb=true                      any USB device (root hubs excluded)
//   hardware/zigbee=true                   a known USB Zigbee coordinator
//   hardware/zigbee.adapter=zstack         its adapter type (the one auto-port would pick)
//   hardware/zigbee.product=<sanitised>    e.g. Sonoff-ZBDongle-P
//   hardware/zigbee.count=N
//   hardware/nvidia=true                   an NVIDIA GPU (driver tree or CUDA)
//   hardware/nvidia.count=N
//   hardware/nvidia.product=<sanitised>    e.g. NVIDIA-GeForce-RTX-3090 (first GPU by bus id)
//   hardware/nvidia.memory_mib=N           smallest GPU memory, when CUDA told
//   hardware/nvidia.compute.major=8, hardware/nvidia.compute.minor=6   lowest capability, when CUDA told
//   hardware/nvidia.driver=535.129.03
//   storage/nas=true                       an NFS or CIFS/SMB mount
//   storage/nas.nfs=true, storage/nas.cifs=true
//   storage/hdd=true, storage/ssd=true     a rotational / non-rotational local disk
LabelMap InventoryLabels(const inventory::Inventory& inventory);

// Kubernetes label rules: value empty or <= 63 characters of [A-Za-z0-9._-] beginning and ending
// alphanumeric; key [prefix/]name with name like a value but non-empty and prefix a DNS subdomain
// (<= 253, lower-case labels of [a-z0-9-]).
bool IsValidLabelValue(std::string_view value);
bool IsValidLabelKey(std::string_view key);

// Turns any text into a valid value: runs of other characters become '-', the ends are trimmed to
// alphanumerics, the result cut to 63 ("NVIDIA GeForce RTX 3090" -> "NVIDIA-GeForce-RTX-3090").
std::string SanitizeLabelValue(std::string_view text);

// The key for label `name` under `prefix`: "" keeps the name ("hardware/usb"); a prefix ending in '/'
// is a domain and the name's own '/' becomes '.' ("edged.io/" -> "edged.io/hardware.usb"); any other
// prefix is prepended ("lab-" -> "lab-hardware/usb"). InvalidArgument when the result is not a valid key.
StatusOr<std::string> QualifiedKey(std::string_view prefix, std::string_view name);

// Applies the allow-list (names, before prefixing; empty = all) and the prefix. Labels whose key or
// value would be invalid are left out and described in `problems` (may be null).
LabelMap SelectLabels(const LabelMap& labels, const config::LabelsConfig& config,
                      std::vector<std::string>* problems);

// Node-feature-discovery local feature file (features.d): "# +expiry-time=<RFC3339>" then key=value
// lines. `expiry_unix_seconds` is the absolute expiry time.
std::string RenderNfdFeatureFile(const LabelMap& labels, long long expiry_unix_seconds);

// "2026-01-02T03:04:05Z".
std::string Rfc3339Utc(long long unix_seconds);

}  // namespace edged::labels
