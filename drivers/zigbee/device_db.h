// The device database: every device edged knows, kept as one JSON file in the state directory and
// rewritten atomically (temp file, fsync, rename) on every change that matters, so a restart or a
// SIGKILL loses nothing that was acknowledged. Internal to drivers/zigbee.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "base/status.h"
#include "drivers/zigbee/network.h"

namespace edged::zigbee::detail {

// "zigbee-devices.json" under the state directory.
std::filesystem::path DeviceDatabasePath(const std::filesystem::path& state_dir);

std::string SerializeDevices(const std::vector<DeviceInfo>& devices);
// DataLoss naming the file when it is not valid JSON or a device entry is malformed.
StatusOr<std::vector<DeviceInfo>> ParseDevices(std::string_view json, std::string_view where);

// NotFound → an empty database (first start).
StatusOr<std::vector<DeviceInfo>> LoadDevices(const std::filesystem::path& path);
Status SaveDevices(const std::filesystem::path& path, const std::vector<DeviceInfo>& devices);

std::string IeeeToString(std::uint64_t ieee);                      // "0x00124b0001020304"
StatusOr<std::uint64_t> ParseIeee(std::string_view text);          // accepts with or without 0x

}  // namespace edged::zigbee::detail
