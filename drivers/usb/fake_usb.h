// An in-memory USB bus for logic tests and the demo: devices are plugged and unplugged by the caller,
// and hotplug callbacks fire synchronously from Plug()/Unplug().
#pragma once

#include <mutex>
#include <optional>
#include <vector>

#include "drivers/usb/usb.h"

namespace edged::usb {

class FakeUsbEnumerator : public UsbEnumerator {
 public:
  FakeUsbEnumerator() = default;
  explicit FakeUsbEnumerator(std::vector<UsbDevice> devices) : devices_(std::move(devices)) {}

  StatusOr<std::vector<UsbDevice>> List() override;
  Status WatchHotplug(HotplugCallback callback) override;
  void StopWatching() override;

  // Adds a device and reports kArrived to the watcher, if any.
  void Plug(const UsbDevice& device);
  // Removes the device with this bus/address and reports kLeft; false when there was none.
  bool Unplug(std::uint8_t bus, std::uint8_t address);
  // Makes List() fail with this status (e.g. Unavailable) until cleared with std::nullopt.
  void SetListError(std::optional<Status> error);
  // How many times List() was called; tests use it to see rescans happen.
  int list_calls() const;

 private:
  mutable std::mutex mu_;
  std::vector<UsbDevice> devices_;
  HotplugCallback callback_;
  std::optional<Status> list_error_;
  int list_calls_ = 0;
};

}  // namespace edged::usb
