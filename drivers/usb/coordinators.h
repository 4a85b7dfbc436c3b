// Known USB Zigbee coordinators, the tty each one shows up as, and `zigbee.serial.port: auto`.
//
// Several sticks share generic USB-serial bridge chips (CP210x 10c4:ea60, CH340 1a86:7523, CH9102
// 1a86:55d4), so a VID:PID alone does not say which firmware a stick runs; as zigbee-herdsman's
// adapter discovery does, the table refines with the manufacturer/product strings where they tell
// (Sonoff ZBDongle-E says "Dongle Plus V2", SkyConnect says "Nabu Casa") and otherwise marks the match
// as `generic`, which auto-resolution ranks below a specific match.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "drivers/usb/usb.h"

namespace edged::usb {

struct KnownCoordinator {
  std::uint16_t vendor_id;
  std::uint16_t product_id;
  // Case-insensitive substring of "<manufacturer> <product>"; empty matches any device with this VID:PID.
  std::string_view match;
  std::string_view adapter;  // zigbee-herdsman adapter name: zstack, ember, deconz, zboss, zigate
  std::string_view product;  // what a user would call the stick
  bool generic;              // VID:PID of a generic USB-serial chip: also used by non-Zigbee hardware
};

// The table, most specific entries first.
std::span<const KnownCoordinator> KnownCoordinators();

// The first table entry matching the device, or nullptr.
const KnownCoordinator* MatchCoordinator(const UsbDevice& device);

// A coordinator found on the bus, with the serial device to open.
struct Coordinator {
  UsbDevice usb;
  std::string adapter;  // "zstack", ...
  std::string product;
  bool generic = false;
  std::string tty;    // "/dev/ttyUSB0"; empty when no serial interface is bound (driver missing)
  std::string by_id;  // "/dev/serial/by-id/usb-...-if00-port0" when udev made one; stable across replugs
  bool operator==(const Coordinator&) const = default;
};

// Kernel tty names ("ttyUSB0", "ttyACM0") bound to the device's interfaces, found under
// <sys_root>/bus/usb/devices/<port_path>:<config>.<interface>/ as ttyUSB* (usb-serial drivers such as
// cp210x, ch341) or tty/tty* (cdc_acm). Sorted by interface, so a launchpad's first port comes first.
std::vector<std::string> TtysForDevice(const std::string& sys_root, const UsbDevice& device);

// The /dev/serial/by-id/ link that points at `tty_name`, or "" when none (no udev, e.g. a container).
std::string SerialByIdFor(const std::string& dev_root, const std::string& tty_name);

// Every known coordinator among `devices`, with its tty. `dev_root` is "/dev" outside tests.
std::vector<Coordinator> FindCoordinators(const std::vector<UsbDevice>& devices, const std::string& sys_root,
                                          const std::string& dev_root);

// The coordinator edged would use: a specific match before a generic one, zstack before other
// adapters, then bus order; with `require_tty`, only those with a serial port. nullptr when none.
const Coordinator* PreferredCoordinator(const std::vector<Coordinator>& coordinators, bool require_tty);

// `zigbee.serial.port: auto`: the port of the best coordinator that has a tty: a specific match before
// a generic one, zstack before other adapters, then bus order. The /dev/serial/by-id path is preferred
// (it survives replugs and renumbering). NotFound, saying what was seen, when there is none.
StatusOr<std::string> ResolveAutoPort(const std::vector<Coordinator>& coordinators);

}  // namespace edged::usb
