// USB devices behind one small interface: the real implementation uses libusb (enumeration and, where
// the platform supports it, hotplug); FakeUsbEnumerator (fake_usb.h) stands in where there is no bus.
// Nothing from <libusb.h> appears here.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace edged::usb {

struct UsbDevice {
  std::uint8_t bus = 0;
  std::uint8_t address = 0;
  std::uint16_t vendor_id = 0;
  std::uint16_t product_id = 0;
  std::uint8_t device_class = 0;
  // The kernel's name for the device's position on the bus ("1-1.2": bus 1, port 1, then port 2), which
  // is also its directory under /sys/bus/usb/devices. Empty for root hubs.
  std::string port_path;
  // String descriptors as the kernel cached them in sysfs (reading them through libusb would need to
  // open the device, i.e. write access to /dev/bus/usb). Empty when unknown.
  std::string manufacturer;
  std::string product;
  std::string serial;

  bool operator==(const UsbDevice&) const = default;
};

// "10c4:ea60", lower-case hex, as lsusb prints it.
std::string VidPidString(const UsbDevice& device);

enum class HotplugEvent { kArrived, kLeft };

class UsbEnumerator {
 public:
  using HotplugCallback = std::function<void(HotplugEvent, const UsbDevice&)>;

  virtual ~UsbEnumerator() = default;

  // Every device on every bus, root hubs excluded. Unavailable when there is no USB subsystem to ask
  // (libusb_init failed, e.g. no /dev/bus/usb in a container): callers treat that as "no devices" and
  // say so once. Thread-safe.
  virtual StatusOr<std::vector<UsbDevice>> List() = 0;

  // Calls `callback` on an internal thread for each device that arrives or leaves, until
  // StopWatching() or destruction. Unimplemented when the platform cannot report hotplug (callers
  // then rely on periodic rescans). The callback must not block; it must not call StopWatching().
  virtual Status WatchHotplug(HotplugCallback callback) = 0;

  // Stops hotplug delivery; no callback runs after it returns. Safe to call when not watching.
  virtual void StopWatching() = 0;
};

// libusb-backed enumerator. Never fails to construct: when libusb cannot initialise, List() and
// WatchHotplug() return Unavailable with the reason. `sys_root` ("/sys") is where the string
// descriptors are read from.
std::unique_ptr<UsbEnumerator> NewLibusbEnumerator(std::string sys_root = "/sys");

// Fills manufacturer/product/serial from <sys_root>/bus/usb/devices/<port_path>/ where present.
void ReadSysfsStrings(const std::string& sys_root, UsbDevice& device);

}  // namespace edged::usb
