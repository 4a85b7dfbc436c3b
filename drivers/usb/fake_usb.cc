#include "drivers/usb/fake_usb.h"

#include <algorithm>

namespace edged::usb {

StatusOr<std::vector<UsbDevice>> FakeUsbEnumerator::List() {
  std::lock_guard lock(mu_);
  ++list_calls_;
  if (list_error_) return *list_error_;
  return devices_;
}

Status FakeUsbEnumerator::WatchHotplug(HotplugCallback callback) {
  std::lock_guard lock(mu_);
  callback_ = std::move(callback);
  return OkStatus();
}

void FakeUsbEnumerator::StopWatching() {
  std::lock_guard lock(mu_);
  callback_ = nullptr;
}

void FakeUsbEnumerator::Plug(const UsbDevice& device) {
  HotplugCallback callback;
  {
    std::lock_guard lock(mu_);
    devices_.push_back(device);
    callback = callback_;
  }
  // Outside the lock: the callback may call List().
  if (callback) callback(HotplugEvent::kArrived, device);
}

bool FakeUsbEnumerator::Unplug(std::uint8_t bus, std::uint8_t address) {
  HotplugCallback callback;
  UsbDevice removed;
  {
    std::lock_guard lock(mu_);
    auto it = std::find_if(devices_.begin(), devices_.end(),
                           [&](const UsbDevice& d) { return d.bus == bus && d.address == address; });
    if (it == devices_.end()) return false;
    removed = *it;
    devices_.erase(it);
    callback = callback_;
  }
  if (callback) callback(HotplugEvent::kLeft, removed);
  return true;
}

void FakeUsbEnumerator::SetListError(std::optional<Status> error) {
  std::lock_guard lock(mu_);
  list_error_ = std::move(error);
}

int FakeUsbEnumerator::list_calls() const {
  std::lock_guard lock(mu_);
  return list_calls_;
}

}  // namespace edged::usb
