// What hardware this node has, for node labels and `zigbee.serial.port: auto`: USB devices and the
// Zigbee coordinators among them, NVIDIA GPUs, network storage mounts and local disks. Every source is
// read from an injectable root (proc_root, sys_root, dev_root) so tests run on fixture trees.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/module.h"
#include "base/status.h"
#include "drivers/gpu/gpu.h"
#include "drivers/usb/coordinators.h"
#include "drivers/usb/usb.h"

namespace prometheus {
class Registry;
class Gauge;
class Counter;
}  // namespace prometheus

namespace edged::inventory {

struct Mount {
  std::string source;      // "nas:/export/media", "//nas/backup"
  std::string mountpoint;  // octal escapes (\040) decoded
  std::string fstype;      // "nfs4", "cifs", ...
  bool operator==(const Mount&) const = default;
};

struct Disk {
  std::string name;  // "sda", "nvme0n1"
  std::uint64_t size_bytes = 0;
  bool rotational = false;
  bool removable = false;
  std::string model;
  bool operator==(const Disk&) const = default;
};

struct Inventory {
  std::vector<usb::UsbDevice> usb_devices;
  std::vector<usb::Coordinator> zigbee_coordinators;
  gpu::GpuInventory gpu;
  std::vector<Mount> network_mounts;  // nfs, nfs4, cifs, smb3
  std::vector<Disk> disks;            // physical block devices with a size (no loop, dm, md, optical)
  // Sources that could not be read in this scan, one line each ("usb: libusb_init: ..."). A missing
  // source is not an error for the labels: it just contributes nothing.
  std::vector<std::string> problems;
  bool operator==(const Inventory&) const = default;
};

// The mounts in a /proc/<pid>/mountinfo text; malformed lines are skipped.
std::vector<Mount> ParseMountInfo(std::string_view text);
// True for the network filesystems edged labels as NAS storage.
bool IsNetworkFsType(std::string_view fstype);
// Physical disks under <sys_root>/block.
std::vector<Disk> ScanDisks(const std::string& sys_root);

struct InventoryOptions {
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
  std::string dev_root = "/dev";
  std::chrono::milliseconds interval{std::chrono::seconds(60)};
  // Wait after a hotplug event before rescanning: the tty of a new stick is bound by its serial
  // driver a little after the USB device itself appears.
  std::chrono::milliseconds hotplug_settle{1000};
};

// One full scan. `usb` and `cuda` may be null (that source then contributes nothing).
Inventory ScanInventory(const InventoryOptions& options, usb::UsbEnumerator* usb, gpu::CudaProbe* cuda);

// What consumers of the inventory (node labels, Zigbee port auto-detection) depend on.
class InventorySource {
 public:
  using Listener = std::function<void(std::shared_ptr<const Inventory>)>;
  virtual ~InventorySource() = default;
  // The latest scan; null before the first one finished. Thread-safe.
  virtual std::shared_ptr<const Inventory> Current() const = 0;
  // `listener` is called (on the scanner's thread; it must not block) after every scan whose result
  // differs from the previous one, and once at once if a scan already exists. Returns an id.
  virtual int Subscribe(Listener listener) = 0;
  // No call to the listener starts after this returns.
  virtual void Unsubscribe(int id) = 0;
};

// Rescans on an interval and shortly after every USB hotplug event, on its own thread, and exports
// edged_inventory_usb_devices, edged_inventory_gpus, edged_inventory_zigbee_coordinators,
// edged_inventory_network_mounts, edged_inventory_disks and edged_inventory_scans_total.
// A Module named "inventory" so the daemon starts and stops it with the others.
class InventoryScanner : public InventorySource, public Module {
 public:
  // `usb` and `cuda` may be null. `registry` must outlive the scanner.
  InventoryScanner(InventoryOptions options, std::unique_ptr<usb::UsbEnumerator> usb,
                   std::unique_ptr<gpu::CudaProbe> cuda, prometheus::Registry& registry);
  ~InventoryScanner() override;

  std::string_view name() const override { return "inventory"; }
  Status Start() override;  // returns at once; the first scan runs on the scanner's thread
  void Stop() override;
  Health health() const override;

  std::shared_ptr<const Inventory> Current() const override;
  int Subscribe(Listener listener) override;
  void Unsubscribe(int id) override;

  // Asks for a scan now (e.g. after a SIGHUP); returns without waiting.
  void RequestRescan();
  // Blocks until at least `count` scans have completed or `timeout` passes; for tests and start-up.
  bool WaitForScans(int count, std::chrono::milliseconds timeout) const;

 private:
  void Run();
  void Publish(Inventory inventory);

  const InventoryOptions options_;
  std::unique_ptr<usb::UsbEnumerator> usb_;
  std::unique_ptr<gpu::CudaProbe> cuda_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool running_ = false;
  bool stop_ = false;
  std::chrono::steady_clock::time_point next_scan_;
  std::shared_ptr<const Inventory> current_;
  int scans_ = 0;
  std::vector<std::string> last_problems_;  // logged when they change, not on every scan
  std::map<int, Listener> listeners_;
  int next_listener_id_ = 1;
  std::mutex listeners_mu_;  // held while listeners run, so Unsubscribe() waits for a running one
  std::thread thread_;

  prometheus::Gauge* usb_devices_;
  prometheus::Gauge* gpus_;
  prometheus::Gauge* coordinators_;
  prometheus::Gauge* network_mounts_;
  prometheus::Gauge* disks_;
  prometheus::Counter* scans_total_;
};

}  // namespace edged::inventory
