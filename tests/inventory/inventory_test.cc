#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "drivers/gpu/gpu.h"
#include "drivers/inventory/inventory.h"
#include "drivers/usb/fake_usb.h"

namespace edged::inventory {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kFixtures = EDGED_FIXTURES;
const std::string kSys = kFixtures + "/sys";
const std::string kProc = kFixtures + "/proc-nvidia";

std::string Read(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "edged-inv-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  void Touch(const std::string& name) const { std::ofstream(path_ / name) << ""; }

 private:
  fs::path path_;
};

class FakeCuda : public gpu::CudaProbe {
 public:
  explicit FakeCuda(StatusOr<gpu::CudaInfo> answer) : answer_(std::move(answer)) {}
  StatusOr<gpu::CudaInfo> Probe() override {
    ++probes_;
    return answer_;
  }
  int probes() const { return probes_; }

 private:
  StatusOr<gpu::CudaInfo> answer_;
  int probes_ = 0;
};

gpu::CudaInfo TwoRtx3090s() {
  gpu::CudaInfo info;
  info.runtime_version = 12040;
  info.driver_version = 12020;
  for (auto [i, bus] : {std::pair{0, "0000:01:00.0"}, std::pair{1, "0000:41:00.0"}}) {
    gpu::CudaDevice d;
    d.index = i;
    d.name = "NVIDIA GeForce RTX 3090";
    d.memory_bytes = 25438126080ull;
    d.compute_major = 8;
    d.compute_minor = 6;
    d.pci_bus_id = bus;
    // CUDA prints the bus id in upper case; the driver's tree uses lower case.
    for (char& c : d.pci_bus_id) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    info.devices.push_back(d);
  }
  return info;
}

usb::UsbDevice ZbDongleP() {
  usb::UsbDevice d;
  d.bus = 1;
  d.address = 2;
  d.vendor_id = 0x10c4;
  d.product_id = 0xea60;
  d.port_path = "1-1";
  usb::ReadSysfsStrings(kSys, d);
  return d;
}

usb::UsbDevice Keyboard() {
  usb::UsbDevice d;
  d.bus = 2;
  d.address = 2;
  d.vendor_id = 0x046d;
  d.product_id = 0xc31c;
  d.port_path = "2-1";
  return d;
}

TEST(InventoryNvidia, ParsesTheDriversGpuInformation) {
  auto info = gpu::ParseNvidiaInformation(Read(kProc + "/driver/nvidia/gpus/0000:41:00.0/information"));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->model, "NVIDIA GeForce RTX 3090");
  EXPECT_EQ(info->uuid, "GPU-1c2d3e4f-5a4b-11ee-8c99-0242ac120003");
  EXPECT_EQ(info->bus_location, "0000:41:00.0");
  EXPECT_EQ(info->device_minor, 1);

  EXPECT_EQ(gpu::ParseNvidiaInformation("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu::ParseNvidiaInformation("IRQ: 5\nModel:\n").status().code(), StatusCode::kInvalidArgument);
  auto garbled = gpu::ParseNvidiaInformation("Model: X\nDevice Minor: banana\n");
  ASSERT_TRUE(garbled.ok());
  EXPECT_EQ(garbled->device_minor, -1);
}

TEST(InventoryNvidia, ParsesTheDriverVersion) {
  EXPECT_EQ(gpu::ParseNvidiaDriverVersion(Read(kProc + "/driver/nvidia/version")), "535.129.03");
  EXPECT_EQ(gpu::ParseNvidiaDriverVersion(
                "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.14  Release Build  "
                "(dvs-builder@U16-I3-B03-4-3)  Thu Feb 22 01:25:25 UTC 2024\n"),
            "550.54.14");
  EXPECT_EQ(gpu::ParseNvidiaDriverVersion(""), "");
  EXPECT_EQ(gpu::ParseNvidiaDriverVersion("something else 1.2.3\n"), "");
}

TEST(InventoryGpu, JoinsTheDriverTreeWithCudaByBusId) {
  TempDir dev;
  for (const char* n : {"nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "null"}) dev.Touch(n);
  FakeCuda cuda(TwoRtx3090s());
  gpu::GpuInventory inv = gpu::ScanGpus(kProc, dev.str(), &cuda);
  EXPECT_EQ(inv.driver_version, "535.129.03");
  EXPECT_EQ(inv.cuda_runtime_version, 12040);
  ASSERT_EQ(inv.gpus.size(), 2u);
  EXPECT_EQ(inv.gpus[0].bus_location, "0000:01:00.0");
  EXPECT_EQ(inv.gpus[1].bus_location, "0000:41:00.0");
  for (const gpu::GpuInfo& g : inv.gpus) {
    EXPECT_EQ(g.memory_bytes, 25438126080ull);
    EXPECT_EQ(g.compute_major, 8);
    EXPECT_EQ(g.compute_minor, 6);
  }
  EXPECT_EQ(inv.device_nodes, (std::vector<std::string>{dev.str() + "/nvidia-uvm", dev.str() + "/nvidia0",
                                                        dev.str() + "/nvidia1", dev.str() + "/nvidiactl"}));
}

TEST(InventoryGpu, UsesCudaAloneWhenTheDriverTreeIsHidden) {
  // A container given the device nodes but not the host's /proc/driver/nvidia.
  const auto dev = std::filesystem::temp_directory_path() / ("edged-dev-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dev);
  std::ofstream(dev / "nvidia0").put('\0');
  std::ofstream(dev / "nvidiactl").put('\0');
  FakeCuda cuda(TwoRtx3090s());
  gpu::GpuInventory inv = gpu::ScanGpus("/nonexistent-proc", dev.string(), &cuda);
  std::filesystem::remove_all(dev);
  EXPECT_EQ(inv.driver_version, "");
  ASSERT_EQ(inv.gpus.size(), 2u);
  EXPECT_EQ(inv.gpus[0].model, "NVIDIA GeForce RTX 3090");
  EXPECT_EQ(inv.gpus[0].bus_location, "0000:01:00.0");
}

TEST(InventoryGpu, DoesNotLoadTheCudaRuntimeWithoutADriver) {
  FakeCuda cuda(TwoRtx3090s());
  gpu::GpuInventory inv = gpu::ScanGpus("/nonexistent-proc", "/nonexistent-dev", &cuda);
  EXPECT_TRUE(inv.gpus.empty());
  EXPECT_EQ(cuda.probes(), 0) << "no driver tree and no /dev/nvidia*: the runtime must not be probed";
}

TEST(InventoryGpu, KeepsTheDriversViewWhenCudaFails) {
  FakeCuda cuda(UnavailableError("cudaGetDeviceCount: no CUDA-capable device is detected (cudaError 100)"));
  gpu::GpuInventory inv = gpu::ScanGpus(kProc, "/nonexistent-dev", &cuda);
  ASSERT_EQ(inv.gpus.size(), 2u);
  EXPECT_EQ(inv.gpus[0].memory_bytes, 0u);
  EXPECT_NE(inv.cuda_error.find("cudaGetDeviceCount"), std::string::npos);
  EXPECT_TRUE(inv.device_nodes.empty());

  gpu::GpuInventory none = gpu::ScanGpus("/nonexistent-proc", "/nonexistent-dev", nullptr);
  EXPECT_TRUE(none.gpus.empty());
}

TEST(InventoryCuda, MissingRuntimeIsUnavailable) {
  auto probe = gpu::NewDlopenCudaProbe({"/nonexistent/libcudart.so", "libcudart-not-there.so.99"});
  auto info = probe->Probe();
  EXPECT_EQ(info.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(info.status().message().find("libcudart-not-there.so.99"), std::string::npos);
}

// The real CUDA runtime where the toolkit is installed: on a GPU machine it lists devices, on CI
// (CUDA installed, no GPU, no driver) it must say why there are none instead of crashing.
TEST(InventoryCuda, RealRuntimeAnswersWithOrWithoutAGpu) {
  const std::string lib = "/usr/local/cuda/lib64/libcudart.so";
  if (!fs::exists(lib)) GTEST_SKIP() << lib << " is not installed";
  auto probe = gpu::NewDlopenCudaProbe({lib});
  for (int i = 0; i < 2; ++i) {  // a second probe reuses the loaded library
    auto info = probe->Probe();
    if (info.ok()) {
      EXPECT_GT(info->runtime_version, 0);
      for (const gpu::CudaDevice& d : info->devices) {
        EXPECT_FALSE(d.name.empty());
        EXPECT_GT(d.memory_bytes, 0u);
        EXPECT_GT(d.compute_major, 0);
      }
    } else {
      EXPECT_EQ(info.status().code(), StatusCode::kUnavailable);
      EXPECT_NE(info.status().message().find("cudaGetDeviceCount"), std::string::npos)
          << info.status().ToString();
    }
  }
}

TEST(InventoryMounts, ParsesMountInfoAndPicksNetworkFilesystems) {
  std::vector<Mount> all = ParseMountInfo(Read(kProc + "/self/mountinfo"));
  ASSERT_EQ(all.size(), 9u);  // the malformed last line is skipped
  EXPECT_EQ(all[0].mountpoint, "/");
  EXPECT_EQ(all[0].fstype, "ext4");
  EXPECT_EQ(all[7].mountpoint, "/mnt/Photo Backup");  // \040 decoded
  EXPECT_EQ(all[7].source, "//nas.lan/photo backup");
  EXPECT_EQ(all[7].fstype, "cifs");

  std::vector<std::string> network;
  for (const Mount& m : all) {
    if (IsNetworkFsType(m.fstype)) network.push_back(m.fstype + " " + m.source);
  }
  EXPECT_EQ(network, (std::vector<std::string>{"nfs4 nas.lan:/export/media", "cifs //nas.lan/photo backup",
                                                "nfs nas.lan:/export/k8s"}));
  EXPECT_TRUE(ParseMountInfo("").empty());
  EXPECT_TRUE(ParseMountInfo("1 2 3 - \n - - - - - -\n\\\\\\0").empty());
}

TEST(InventoryDisks, ListsPhysicalDisksOnly) {
  std::vector<Disk> disks = ScanDisks(kSys);
  std::vector<std::string> names;
  for (const Disk& d : disks) names.push_back(d.name);
  // Not loop0/dm-0 (virtual), sr0 (optical), mmcblk0boot0 (boot partition), sdc (reader, no card).
  EXPECT_EQ(names, (std::vector<std::string>{"nvme0n1", "sda", "sdb"}));
  EXPECT_EQ(disks[1].size_bytes, 7814037168ull * 512);
  EXPECT_TRUE(disks[1].rotational);
  EXPECT_EQ(disks[1].model, "WDC WD40EFRX-68N");
  EXPECT_FALSE(disks[0].rotational);
  EXPECT_TRUE(disks[2].removable);
  EXPECT_TRUE(ScanDisks("/nonexistent").empty());
}

TEST(InventoryScan, ReadsEverySourceFromTheFixtureTree) {
  usb::FakeUsbEnumerator bus({Keyboard(), ZbDongleP()});
  FakeCuda cuda(TwoRtx3090s());
  InventoryOptions options{.proc_root = kProc, .sys_root = kSys, .dev_root = "/nonexistent-dev"};
  Inventory inv = ScanInventory(options, &bus, &cuda);
  EXPECT_EQ(inv.usb_devices.size(), 2u);
  ASSERT_EQ(inv.zigbee_coordinators.size(), 1u);
  EXPECT_EQ(inv.zigbee_coordinators[0].adapter, "zstack");
  EXPECT_EQ(inv.zigbee_coordinators[0].tty, "/nonexistent-dev/ttyUSB0");
  EXPECT_EQ(inv.gpu.gpus.size(), 2u);
  EXPECT_EQ(inv.network_mounts.size(), 3u);
  EXPECT_EQ(inv.disks.size(), 3u);
  EXPECT_TRUE(inv.problems.empty());

  bus.SetListError(UnavailableError("libusb_init: no USB"));
  Inventory no_usb = ScanInventory(options, &bus, nullptr);
  EXPECT_TRUE(no_usb.usb_devices.empty());
  ASSERT_EQ(no_usb.problems.size(), 1u);
  EXPECT_EQ(no_usb.problems[0], "usb: libusb_init: no USB");

  Inventory empty = ScanInventory(InventoryOptions{.proc_root = "/nonexistent", .sys_root = "/nonexistent"},
                                  nullptr, nullptr);
  EXPECT_TRUE(empty.gpu.gpus.empty());
  EXPECT_TRUE(empty.disks.empty());
  EXPECT_EQ(empty.problems.size(), 1u);  // mountinfo unreadable
}

double GaugeValue(prometheus::Registry& registry, const std::string& name) {
  for (const auto& family : registry.Collect()) {
    if (family.name == name && !family.metric.empty()) {
      return family.type == prometheus::MetricType::Counter ? family.metric[0].counter.value
                                                            : family.metric[0].gauge.value;
    }
  }
  return -1;
}

TEST(InventoryScanner, RescansOnHotplugAndTellsListenersOfChangesOnly) {
  prometheus::Registry registry;
  auto bus = std::make_unique<usb::FakeUsbEnumerator>(std::vector<usb::UsbDevice>{Keyboard()});
  usb::FakeUsbEnumerator* fake = bus.get();
  InventoryOptions options{.proc_root = kProc, .sys_root = kSys, .dev_root = "/nonexistent-dev",
                           .interval = 1h, .hotplug_settle = 20ms};
  InventoryScanner scanner(options, std::move(bus), std::make_unique<FakeCuda>(TwoRtx3090s()), registry);
  EXPECT_EQ(scanner.Current(), nullptr);

  std::mutex mu;
  std::vector<std::shared_ptr<const Inventory>> seen;
  int id = scanner.Subscribe([&](std::shared_ptr<const Inventory> inv) {
    std::lock_guard lock(mu);
    seen.push_back(std::move(inv));
  });
  ASSERT_TRUE(scanner.Start().ok());
  ASSERT_TRUE(scanner.WaitForScans(1, 5s));
  EXPECT_TRUE(scanner.health().ok());
  ASSERT_NE(scanner.Current(), nullptr);
  EXPECT_EQ(scanner.Current()->usb_devices.size(), 1u);
  EXPECT_EQ(GaugeValue(registry, "edged_inventory_usb_devices"), 1);
  EXPECT_EQ(GaugeValue(registry, "edged_inventory_gpus"), 2);
  EXPECT_EQ(GaugeValue(registry, "edged_inventory_network_mounts"), 3);

  fake->Plug(ZbDongleP());  // the interval is an hour: only the hotplug event can cause this rescan
  ASSERT_TRUE(scanner.WaitForScans(2, 5s));
  EXPECT_EQ(scanner.Current()->zigbee_coordinators.size(), 1u);
  EXPECT_EQ(GaugeValue(registry, "edged_inventory_usb_devices"), 2);
  EXPECT_EQ(GaugeValue(registry, "edged_inventory_zigbee_coordinators"), 1);

  scanner.RequestRescan();  // nothing changed: listeners stay quiet
  ASSERT_TRUE(scanner.WaitForScans(3, 5s));
  EXPECT_EQ(GaugeValue(registry, "edged_inventory_scans_total"), 3);
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_EQ(seen[0]->usb_devices.size(), 1u);
    EXPECT_EQ(seen[1]->usb_devices.size(), 2u);
  }

  // A late subscriber gets the current inventory at once.
  int late_calls = 0;
  int late = scanner.Subscribe([&](std::shared_ptr<const Inventory>) { ++late_calls; });
  EXPECT_EQ(late_calls, 1);
  scanner.Unsubscribe(late);
  scanner.Unsubscribe(id);

  auto start = std::chrono::steady_clock::now();
  scanner.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
  fake->Plug(Keyboard());  // no watcher any more: must not call into the stopped scanner
  scanner.Stop();
}

}  // namespace
}  // namespace edged::inventory
