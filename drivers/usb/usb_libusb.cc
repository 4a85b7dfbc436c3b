// The libusb implementation of UsbEnumerator. One libusb context per enumerator (no default context:
// no global state); hotplug events are pumped by a thread of our own with a short timeout so that
// StopWatching() returns promptly.
#include <libusb.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "drivers/usb/usb.h"

namespace edged::usb {
namespace {

std::string ReadTrimmed(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

// "1-1.2" from bus 1 and ports {1, 2}, the name the kernel gives the device in sysfs.
std::string PortPath(libusb_device* device) {
  std::uint8_t ports[8];
  int n = libusb_get_port_numbers(device, ports, sizeof ports);
  if (n <= 0) return "";  // root hub, or the platform does not know
  std::string path = fmt::format("{}-{}", libusb_get_bus_number(device), ports[0]);
  for (int i = 1; i < n; ++i) path += fmt::format(".{}", ports[i]);
  return path;
}

std::optional<UsbDevice> Describe(libusb_device* device, const std::string& sys_root) {
  libusb_device_descriptor desc{};
  if (libusb_get_device_descriptor(device, &desc) != LIBUSB_SUCCESS) return std::nullopt;
  UsbDevice out;
  out.bus = libusb_get_bus_number(device);
  out.address = libusb_get_device_address(device);
  out.vendor_id = desc.idVendor;
  out.product_id = desc.idProduct;
  out.device_class = desc.bDeviceClass;
  out.port_path = PortPath(device);
  if (out.port_path.empty()) return std::nullopt;  // root hubs are not devices anyone plugged in
  ReadSysfsStrings(sys_root, out);
  return out;
}

class LibusbEnumerator : public UsbEnumerator {
 public:
  explicit LibusbEnumerator(std::string sys_root) : sys_root_(std::move(sys_root)) {
    int rc = libusb_init(&ctx_);
    if (rc != LIBUSB_SUCCESS) {
      ctx_ = nullptr;
      init_error_ = UnavailableError(
          fmt::format("libusb_init: {}; no USB subsystem is reachable (in a container, mount /dev/bus/usb and /sys)",
                      libusb_strerror(static_cast<libusb_error>(rc))));
    }
  }

  ~LibusbEnumerator() override {
    StopWatching();
    if (ctx_ != nullptr) libusb_exit(ctx_);
  }

  StatusOr<std::vector<UsbDevice>> List() override {
    if (ctx_ == nullptr) return init_error_;
    libusb_device** list = nullptr;
    ssize_t n = libusb_get_device_list(ctx_, &list);
    if (n < 0) {
      return UnavailableError(
          fmt::format("libusb_get_device_list: {}", libusb_strerror(static_cast<libusb_error>(n))));
    }
    std::vector<UsbDevice> devices;
    for (ssize_t i = 0; i < n; ++i) {
      if (auto d = Describe(list[i], sys_root_)) devices.push_back(std::move(*d));
    }
    libusb_free_device_list(list, /*unref_devices=*/1);
    return devices;
  }

  Status WatchHotplug(HotplugCallback callback) override {
    if (ctx_ == nullptr) return init_error_;
    if (!libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
      return UnimplementedError("libusb: this platform cannot report USB hotplug; relying on rescans");
    }
    StopWatching();
    {
      std::lock_guard lock(mu_);
      callback_ = std::move(callback);
    }
    int rc = libusb_hotplug_register_callback(
        ctx_,
        static_cast<libusb_hotplug_event>(LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT),
        LIBUSB_HOTPLUG_NO_FLAGS, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY, LIBUSB_HOTPLUG_MATCH_ANY,
        &LibusbEnumerator::OnHotplug, this, &handle_);
    if (rc != LIBUSB_SUCCESS) {
      return UnavailableError(fmt::format("libusb_hotplug_register_callback: {}",
                                          libusb_strerror(static_cast<libusb_error>(rc))));
    }
    registered_ = true;
    stop_ = false;
    events_ = std::thread([this] {
      while (!stop_.load()) {
        timeval tv{0, 200 * 1000};  // bounds how long StopWatching() waits
        libusb_handle_events_timeout_completed(ctx_, &tv, nullptr);
      }
    });
    return OkStatus();
  }

  void StopWatching() override {
    if (!registered_) return;
    // Deregistering wakes the event thread (libusb signals its event pipe), then it sees stop_.
    stop_ = true;
    libusb_hotplug_deregister_callback(ctx_, handle_);
    if (events_.joinable()) events_.join();
    registered_ = false;
    std::lock_guard lock(mu_);
    callback_ = nullptr;
  }

 private:
  static int LIBUSB_CALL OnHotplug(libusb_context*, libusb_device* device, libusb_hotplug_event event,
                                   void* user_data) {
    auto* self = static_cast<LibusbEnumerator*>(user_data);
    std::optional<UsbDevice> d = Describe(device, self->sys_root_);
    if (!d) return 0;
    std::lock_guard lock(self->mu_);
    if (self->callback_) {
      self->callback_(event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED ? HotplugEvent::kArrived : HotplugEvent::kLeft,
                      *d);
    }
    return 0;  // keep the callback registered
  }

  const std::string sys_root_;
  libusb_context* ctx_ = nullptr;
  Status init_error_;
  std::mutex mu_;
  HotplugCallback callback_;
  libusb_hotplug_callback_handle handle_ = 0;
  bool registered_ = false;
  std::atomic<bool> stop_{false};
  std::thread events_;
};

}  // namespace

std::string VidPidString(const UsbDevice& device) {
  return fmt::format("{:04x}:{:04x}", device.vendor_id, device.product_id);
}

void ReadSysfsStrings(const std::string& sys_root, UsbDevice& device) {
  if (device.port_path.empty()) return;
  const std::string dir = sys_root + "/bus/usb/devices/" + device.port_path + "/";
  device.manufacturer = ReadTrimmed(dir + "manufacturer");
  device.product = ReadTrimmed(dir + "product");
  device.serial = ReadTrimmed(dir + "serial");
}

std::unique_ptr<UsbEnumerator> NewLibusbEnumerator(std::string sys_root) {
  return std::make_unique<LibusbEnumerator>(std::move(sys_root));
}

}  // namespace edged::usb
