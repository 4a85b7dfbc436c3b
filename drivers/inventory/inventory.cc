#include "drivers/inventory/inventory.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "base/logging.h"

namespace edged::inventory {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string ReadTrimmed(const fs::path& path) {
  std::string s = ReadFile(path);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string DecodeOctalEscapes(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' &&
        s[i + 3] <= '7') {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

template <typename T>
void Sort(std::vector<T>& v, auto key) {
  std::sort(v.begin(), v.end(), [&](const T& a, const T& b) { return key(a) < key(b); });
}

}  // namespace

std::vector<Mount> ParseMountInfo(std::string_view text) {
  // "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
  //  id par dev root mountpoint opts [optional fields...] - fstype source superopts
  std::vector<Mount> mounts;
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::vector<std::string> w;
    for (std::string word; words >> word;) w.push_back(std::move(word));
    auto sep = std::find(w.begin(), w.end(), "-");
    if (w.size() < 6 || sep == w.end() || sep - w.begin() < 6 || w.end() - sep < 3) continue;
    Mount m;
    m.mountpoint = DecodeOctalEscapes(w[4]);
    m.fstype = *(sep + 1);
    m.source = DecodeOctalEscapes(*(sep + 2));
    mounts.push_back(std::move(m));
  }
  return mounts;
}

bool IsNetworkFsType(std::string_view fstype) {
  return fstype == "nfs" || fstype == "nfs4" || fstype == "cifs" || fstype == "smb3" || fstype == "smbfs";
}

std::vector<Disk> ScanDisks(const std::string& sys_root) {
  std::vector<Disk> disks;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(fs::path(sys_root) / "block", ec)) {
    const fs::path dir = entry.path();
    const std::string name = dir.filename().string();
    // Only devices backed by hardware have a `device` link; loop, ram, zram, dm-* and md* do not.
    std::error_code ec2;
    if (!fs::exists(dir / "device", ec2)) continue;
    // Optical drives and the eMMC boot/RPMB partitions are not storage anyone schedules near.
    if (name.rfind("sr", 0) == 0 || name.find("boot") != std::string::npos ||
        name.find("rpmb") != std::string::npos) {
      continue;
    }
    Disk d;
    d.name = name;
    try {
      d.size_bytes = std::stoull(ReadTrimmed(dir / "size")) * 512;  // always 512-byte sectors
    } catch (const std::exception&) {
      continue;
    }
    if (d.size_bytes == 0) continue;  // a card reader without a card
    d.rotational = ReadTrimmed(dir / "queue/rotational") == "1";
    d.removable = ReadTrimmed(dir / "removable") == "1";
    d.model = ReadTrimmed(dir / "device/model");
    disks.push_back(std::move(d));
  }
  Sort(disks, [](const Disk& d) { return d.name; });
  return disks;
}

Inventory ScanInventory(const InventoryOptions& options, usb::UsbEnumerator* usb, gpu::CudaProbe* cuda) {
  Inventory inv;
  if (usb != nullptr) {
    StatusOr<std::vector<usb::UsbDevice>> devices = usb->List();
    if (devices.ok()) {
      inv.usb_devices = std::move(*devices);
      Sort(inv.usb_devices, [](const usb::UsbDevice& d) { return std::make_pair(d.bus, d.port_path); });
      inv.zigbee_coordinators = usb::FindCoordinators(inv.usb_devices, options.sys_root, options.dev_root);
    } else {
      inv.problems.push_back("usb: " + std::string(devices.status().message()));
    }
  }
  inv.gpu = gpu::ScanGpus(options.proc_root, options.dev_root, cuda);
  if (!inv.gpu.cuda_error.empty() && !inv.gpu.gpus.empty()) {
    // Only worth mentioning when there is a GPU whose details CUDA could have filled in.
    inv.problems.push_back("cuda: " + inv.gpu.cuda_error);
  }
  const fs::path mountinfo = fs::path(options.proc_root) / "self/mountinfo";
  std::string text = ReadFile(mountinfo);
  if (text.empty()) {
    inv.problems.push_back("mounts: cannot read " + mountinfo.string());
  }
  for (Mount& m : ParseMountInfo(text)) {
    if (IsNetworkFsType(m.fstype)) inv.network_mounts.push_back(std::move(m));
  }
  Sort(inv.network_mounts, [](const Mount& m) { return m.mountpoint; });
  inv.disks = ScanDisks(options.sys_root);
  return inv;
}

InventoryScanner::InventoryScanner(InventoryOptions options, std::unique_ptr<usb::UsbEnumerator> usb,
                                   std::unique_ptr<gpu::CudaProbe> cuda, prometheus::Registry& registry)
    : options_(std::move(options)), usb_(std::move(usb)), cuda_(std::move(cuda)) {
  auto gauge = [&](const std::string& name, const std::string& help) {
    return &prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add({});
  };
  usb_devices_ = gauge("edged_inventory_usb_devices", "USB devices on this node, root hubs excluded.");
  gpus_ = gauge("edged_inventory_gpus", "NVIDIA GPUs on this node.");
  coordinators_ = gauge("edged_inventory_zigbee_coordinators", "Known USB Zigbee coordinators on this node.");
  network_mounts_ = gauge("edged_inventory_network_mounts", "Mounted NFS/CIFS/SMB filesystems.");
  disks_ = gauge("edged_inventory_disks", "Physical disks under /sys/block.");
  scans_total_ = &prometheus::BuildCounter()
                      .Name("edged_inventory_scans_total")
                      .Help("Hardware inventory scans completed (interval and hotplug).")
                      .Register(registry)
                      .Add({});
}

InventoryScanner::~InventoryScanner() { Stop(); }

Status InventoryScanner::Start() {
  {
    std::lock_guard lock(mu_);
    if (running_) return FailedPreconditionError("inventory: already started");
    running_ = true;
    stop_ = false;
    next_scan_ = std::chrono::steady_clock::now();
  }
  if (usb_ != nullptr) {
    Status watch = usb_->WatchHotplug([this](usb::HotplugEvent, const usb::UsbDevice&) {
      std::lock_guard lock(mu_);
      auto at = std::chrono::steady_clock::now() + options_.hotplug_settle;
      if (at < next_scan_) next_scan_ = at;
      cv_.notify_all();
    });
    if (!watch.ok()) {
      Logger("inventory")->info("USB hotplug not watched ({}); rescanning every {} s", watch.message(),
                                std::chrono::duration_cast<std::chrono::seconds>(options_.interval).count());
    }
  }
  thread_ = std::thread([this] { Run(); });
  return OkStatus();
}

void InventoryScanner::Stop() {
  {
    std::lock_guard lock(mu_);
    if (!running_) return;
    stop_ = true;
    cv_.notify_all();
  }
  if (usb_ != nullptr) usb_->StopWatching();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  running_ = false;
}

Health InventoryScanner::health() const {
  std::lock_guard lock(mu_);
  if (running_ && scans_ == 0) return Health::Warning("inventory: first scan not finished yet");
  return Health::Ok();
}

void InventoryScanner::RequestRescan() {
  std::lock_guard lock(mu_);
  next_scan_ = std::chrono::steady_clock::now();
  cv_.notify_all();
}

bool InventoryScanner::WaitForScans(int count, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return scans_ >= count; });
}

std::shared_ptr<const Inventory> InventoryScanner::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

int InventoryScanner::Subscribe(Listener listener) {
  std::lock_guard listeners_lock(listeners_mu_);
  const int id = next_listener_id_++;
  std::shared_ptr<const Inventory> now = Current();
  if (now != nullptr) listener(now);
  listeners_.emplace(id, std::move(listener));
  return id;
}

void InventoryScanner::Unsubscribe(int id) {
  std::lock_guard listeners_lock(listeners_mu_);
  listeners_.erase(id);
}

void InventoryScanner::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (std::chrono::steady_clock::now() < next_scan_) {
      cv_.wait_until(lock, next_scan_);
      continue;
    }
    next_scan_ = std::chrono::steady_clock::now() + options_.interval;
    lock.unlock();
    Inventory inv = ScanInventory(options_, usb_.get(), cuda_.get());
    Publish(std::move(inv));
    lock.lock();
  }
}

void InventoryScanner::Publish(Inventory inv) {
  usb_devices_->Set(static_cast<double>(inv.usb_devices.size()));
  gpus_->Set(static_cast<double>(inv.gpu.gpus.size()));
  coordinators_->Set(static_cast<double>(inv.zigbee_coordinators.size()));
  network_mounts_->Set(static_cast<double>(inv.network_mounts.size()));
  disks_->Set(static_cast<double>(inv.disks.size()));
  scans_total_->Increment();

  if (inv.problems != last_problems_) {  // one log line per change, not one per scan
    for (const std::string& p : inv.problems) Logger("inventory")->info("inventory source unavailable: {}", p);
    last_problems_ = inv.problems;
  }

  std::shared_ptr<const Inventory> next = std::make_shared<const Inventory>(std::move(inv));
  bool changed;
  {
    std::lock_guard lock(mu_);
    changed = current_ == nullptr || !(*current_ == *next);
    if (changed) current_ = next;
  }
  if (changed) {
    Logger("inventory")->info("inventory: {} USB devices ({} Zigbee coordinators), {} GPUs, {} network mounts, {} disks",
                              next->usb_devices.size(), next->zigbee_coordinators.size(), next->gpu.gpus.size(),
                              next->network_mounts.size(), next->disks.size());
    std::lock_guard listeners_lock(listeners_mu_);
    for (auto& [id, listener] : listeners_) listener(next);
  }
  std::lock_guard lock(mu_);
  ++scans_;
  cv_.notify_all();
}

}  // namespace edged::inventory
