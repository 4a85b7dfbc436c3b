#include "drivers/usb/coordinators.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <filesystem>
#include <tuple>

#include <fmt/format.h>


namespace edged::usb {
namespace {

namespace fs = std::filesystem;

// Order matters: the first match wins, so refinements by name precede the generic VID:PID entries.
constexpr std::array kCoordinators = {
    KnownCoordinator{0x0451, 0x16a8, "", "zstack", "Texas Instruments CC2531", false},
    KnownCoordinator{0x0451, 0xbef3, "", "zstack", "Texas Instruments CC1352P-2 / CC26X2R1 LaunchPad", false},
    KnownCoordinator{0x0451, 0x16c8, "", "zstack", "Texas Instruments CC2538", false},
    KnownCoordinator{0x1cf1, 0x0030, "", "deconz", "dresden elektronik ConBee II", false},
    KnownCoordinator{0x303a, 0x4001, "", "zboss", "Espressif ESP32-H2/C6 Zigbee NCP", false},
    KnownCoordinator{0x2fe3, 0x0100, "", "zboss", "Nordic nRF52840 Zigbee NCP", false},
    // CH9102: the ZBDongle-E (EFR32MG21) names itself "... Dongle Plus V2".
    KnownCoordinator{0x1a86, 0x55d4, "dongle plus v2", "ember", "Sonoff ZBDongle-E", false},
    KnownCoordinator{0x1a86, 0x55d4, "", "zstack", "CH9102 USB-serial Zigbee stick", true},
    // CP210x: the same chip carries Z-Stack (ZBDongle-P, SLZB-06) and EmberZNet (SkyConnect) sticks.
    KnownCoordinator{0x10c4, 0xea60, "nabu casa", "ember", "Home Assistant SkyConnect", false},
    KnownCoordinator{0x10c4, 0xea60, "dongle plus v2", "ember", "Sonoff ZBDongle-E (CP2102N)", false},
    KnownCoordinator{0x10c4, 0xea60, "slzb-07", "ember", "SMLIGHT SLZB-07", false},
    KnownCoordinator{0x10c4, 0xea60, "zigate", "zigate", "ZiGate", false},
    KnownCoordinator{0x10c4, 0xea60, "sonoff zigbee 3.0 usb dongle plus", "zstack", "Sonoff ZBDongle-P", false},
    KnownCoordinator{0x10c4, 0xea60, "slzb-06", "zstack", "SMLIGHT SLZB-06", false},
    KnownCoordinator{0x10c4, 0xea60, "cc2652", "zstack", "CC2652 stick", false},
    KnownCoordinator{0x10c4, 0xea60, "", "zstack", "CP210x USB-serial Zigbee stick (Sonoff ZBDongle-P/SLZB)",
                     true},
    KnownCoordinator{0x1a86, 0x7523, "", "zstack", "CH340 USB-serial Zigbee stick", true},
};

std::string ReadLink(const fs::path& p) {
  std::error_code ec;
  fs::path target = fs::read_symlink(p, ec);
  return ec ? "" : target.filename().string();
}

}  // namespace

std::span<const KnownCoordinator> KnownCoordinators() { return kCoordinators; }

const KnownCoordinator* MatchCoordinator(const UsbDevice& device) {
  std::string names = device.manufacturer + " " + device.product;
  for (char& ch : names) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  for (const KnownCoordinator& c : kCoordinators) {
    if (c.vendor_id != device.vendor_id || c.product_id != device.product_id) continue;
    if (!c.match.empty() && names.find(c.match) == std::string::npos) continue;
    return &c;
  }
  return nullptr;
}

std::vector<std::string> TtysForDevice(const std::string& sys_root, const UsbDevice& device) {
  std::vector<std::pair<std::string, std::string>> found;  // (interface dir, tty)
  if (device.port_path.empty()) return {};
  const fs::path devices = fs::path(sys_root) / "bus/usb/devices";
  const std::string prefix = device.port_path + ":";
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(devices, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;  // "1-1.2:1.0" belongs to "1-1.2", "1-1.20:1.0" does not
    std::error_code ec2;
    for (const fs::directory_entry& child : fs::directory_iterator(entry.path(), ec2)) {
      const std::string c = child.path().filename().string();
      if (c.rfind("ttyUSB", 0) == 0) {
        found.emplace_back(name, c);
      } else if (c == "tty") {
        std::error_code ec3;
        for (const fs::directory_entry& t : fs::directory_iterator(child.path(), ec3)) {
          found.emplace_back(name, t.path().filename().string());
        }
      }
    }
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> ttys;
  for (auto& [iface, tty] : found) ttys.push_back(std::move(tty));
  return ttys;
}

std::string SerialByIdFor(const std::string& dev_root, const std::string& tty_name) {
  const fs::path by_id = fs::path(dev_root) / "serial/by-id";
  std::error_code ec;
  std::vector<std::string> matches;
  for (const fs::directory_entry& entry : fs::directory_iterator(by_id, ec)) {
    if (ReadLink(entry.path()) == tty_name) matches.push_back(entry.path().string());
  }
  std::sort(matches.begin(), matches.end());  // deterministic when udev made several
  return matches.empty() ? "" : matches.front();
}

std::vector<Coordinator> FindCoordinators(const std::vector<UsbDevice>& devices, const std::string& sys_root,
                                          const std::string& dev_root) {
  std::vector<Coordinator> out;
  for (const UsbDevice& d : devices) {
    const KnownCoordinator* known = MatchCoordinator(d);
    if (known == nullptr) continue;
    Coordinator c;
    c.usb = d;
    c.adapter = known->adapter;
    c.product = known->product;
    c.generic = known->generic;
    std::vector<std::string> ttys = TtysForDevice(sys_root, d);
    if (!ttys.empty()) {
      c.tty = (fs::path(dev_root) / ttys.front()).string();
      c.by_id = SerialByIdFor(dev_root, ttys.front());
    }
    out.push_back(std::move(c));
  }
  return out;
}

const Coordinator* PreferredCoordinator(const std::vector<Coordinator>& coordinators, bool require_tty) {
  auto rank = [](const Coordinator& c) {
    return std::make_tuple(c.generic ? 1 : 0, c.adapter == "zstack" ? 0 : 1, c.usb.bus, c.usb.port_path);
  };
  const Coordinator* best = nullptr;
  for (const Coordinator& c : coordinators) {
    if (require_tty && c.tty.empty()) continue;
    if (best == nullptr || rank(c) < rank(*best)) best = &c;
  }
  return best;
}

StatusOr<std::string> ResolveAutoPort(const std::vector<Coordinator>& coordinators) {
  const Coordinator* best = PreferredCoordinator(coordinators, /*require_tty=*/true);
  if (best == nullptr) {
    std::string seen;
    for (const Coordinator& c : coordinators) {
      seen += fmt::format("{}{} ({}) at {}{}", seen.empty() ? "" : ", ", c.product, VidPidString(c.usb),
                          c.usb.port_path, c.tty.empty() ? " without a tty" : " on " + c.tty);
    }
    return NotFoundError(fmt::format(
        "zigbee.serial.port is 'auto' but no known Zigbee coordinator with a serial port was found on USB{}; "
        "plug one in, load its USB-serial driver, or set zigbee.serial.port to its path",
        seen.empty() ? "" : " (seen: " + seen + ")"));
  }
  return best->by_id.empty() ? best->tty : best->by_id;
}

}  // namespace edged::usb
