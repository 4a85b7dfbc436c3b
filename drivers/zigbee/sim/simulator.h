// A simulated Z-Stack ZNP coordinator with simulated Zigbee devices, speaking the same UNPI bytes as a
// CC2652 stick, on a pseudo-terminal (for edged) and on a TCP port (for zigbee-herdsman, as network
// coordinators do). Used in-process by tests and as the `edged-zsim` binary by the demo and k3d.
// Thread-safe: one worker thread serves the ports; the public methods may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace edged::zigbee::sim {

// The device types the simulator knows.
inline constexpr const char* kDeviceTypes[] = {"climate_sensor", "smart_plug", "color_bulb", "motion_sensor",
                                               "door_contact"};

struct SimulatorOptions {
  std::vector<std::string> devices = {"climate_sensor", "smart_plug", "color_bulb", "motion_sensor", "door_contact"};
  std::chrono::milliseconds report_interval{10000};  // per device, staggered
  std::chrono::milliseconds join_spacing{150};       // between devices joining once permitted
  std::chrono::milliseconds response_delay{5};       // device answers arrive this long after the request
  std::uint32_t seed = 1;                            // value walks and fault draws are reproducible
  // Benchmarks: when set, each climate sensor's temperature climbs by 0.01 °C per report (15.00 to
  // 30.00 °C, then again from 15.00) instead of drifting, so a consumer can tell its reports apart,
  // and this is called on the simulator's thread right after a temperature report's bytes were
  // written to the port. It must not block.
  std::function<void(std::uint64_t ieee, std::int64_t centi_celsius)> temperature_report_sent;
};

// Faults, changeable at run time.
struct FaultInjection {
  double drop_srsp = 0;                   // probability that an SRSP is never sent
  std::chrono::milliseconds srsp_delay{0};  // every SRSP arrives this late
  double garbage = 0;                     // probability of noise bytes (with stray 0xFE) before a frame
};

struct SimDeviceInfo {
  std::string type;
  std::uint64_t ieee = 0;
  std::uint16_t nwk = 0;
  bool joined = false;
  bool silent = false;
  bool mains_powered = false;
};

class ZnpSimulator {
 public:
  static StatusOr<std::unique_ptr<ZnpSimulator>> Create(SimulatorOptions options);
  ~ZnpSimulator();
  ZnpSimulator(const ZnpSimulator&) = delete;
  ZnpSimulator& operator=(const ZnpSimulator&) = delete;

  // Serves a new pseudo-terminal and points the symlink `link` at its slave side (like a
  // /dev/serial/by-id entry); the coordinator opens `link`.
  Status ServePty(const std::filesystem::path& link);
  // Listens on 127.0.0.1:`port` (0 = any free port) and returns the port. One client at a time; a new
  // connection replaces the old one, as on a network coordinator.
  StatusOr<int> ServeTcp(int port = 0);
  void Stop();

  // The port vanishes (pty master closed, TCP client and listener closed: the peer sees a hang-up)...
  void VanishPort();
  // ...and comes back (a new pty behind the same symlink, the listener on the same TCP port).
  Status RestorePort();

  void SetFaults(const FaultInjection& faults);
  // A device that stops answering (and reporting), or starts again.
  Status SetDeviceSilent(std::uint64_t ieee, bool silent);
  // Makes a device send a report of all its reportable attributes now.
  Status TriggerReport(std::uint64_t ieee);
  // The device leaves the network (ZDO_LEAVE_IND) and rejoins when joining is permitted again.
  Status Leave(std::uint64_t ieee);

  // The device takes a new network address without announcing it (it moved to another parent while
  // the coordinator's host was down, and its announce was lost); it keeps reporting from the new one.
  Status ChangeNetworkAddress(std::uint64_t ieee, std::uint16_t nwk);

  std::vector<SimDeviceInfo> Devices() const;
  // The device's attribute state in zigbee2mqtt keys (what a correct coordinator should end up with).
  nlohmann::json DeviceState(std::uint64_t ieee) const;
  bool permit_join() const;
  std::uint64_t coordinator_ieee() const;
  std::uint64_t frames_in() const;
  std::uint64_t frames_out() const;
  std::filesystem::path pty_link() const;

 private:
  struct Impl;
  explicit ZnpSimulator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edged::zigbee::sim
