#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "drivers/usb/coordinators.h"
#include "drivers/usb/fake_usb.h"
#include "drivers/usb/usb.h"

namespace edged::usb {
namespace {

namespace fs = std::filesystem;

const std::string kSys = std::string(EDGED_FIXTURES) + "/sys";

UsbDevice Bare(std::uint16_t vid, std::uint16_t pid, std::string manufacturer = "", std::string product = "") {
  UsbDevice d;
  d.vendor_id = vid;
  d.product_id = pid;
  d.manufacturer = std::move(manufacturer);
  d.product = std::move(product);
  return d;
}

UsbDevice Dev(std::uint8_t bus, std::uint8_t address, std::uint16_t vid, std::uint16_t pid, std::string port) {
  UsbDevice d = Bare(vid, pid);
  d.bus = bus;
  d.address = address;
  d.port_path = std::move(port);
  ReadSysfsStrings(kSys, d);
  return d;
}

// The devices of the fixture tree tests/fixtures/sys/bus/usb/devices.
UsbDevice ZbDongleP() { return Dev(1, 2, 0x10c4, 0xea60, "1-1"); }
UsbDevice ZbDongleE() { return Dev(1, 3, 0x1a86, 0x55d4, "1-2"); }
UsbDevice Launchpad() { return Dev(1, 4, 0x0451, 0xbef3, "1-3"); }
UsbDevice ConBee() { return Dev(1, 6, 0x1cf1, 0x0030, "1-4.2"); }
UsbDevice Ch340() { return Dev(1, 7, 0x1a86, 0x7523, "1-4.20"); }
UsbDevice Keyboard() { return Dev(2, 2, 0x046d, 0xc31c, "2-1"); }

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "edged-usb-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(UsbCoordinatorTable, EveryRequiredVidPidIsKnown) {
  struct Case {
    std::uint16_t vid, pid;
    std::string adapter;
  };
  // With no identifying strings, each maps to the adapter its most common stick runs.
  for (const Case& c : {Case{0x0451, 0x16a8, "zstack"}, Case{0x10c4, 0xea60, "zstack"},
                        Case{0x1a86, 0x55d4, "zstack"}, Case{0x1a86, 0x7523, "zstack"},
                        Case{0x0451, 0xbef3, "zstack"}, Case{0x1cf1, 0x0030, "deconz"},
                        Case{0x303a, 0x4001, "zboss"}}) {
    UsbDevice d = Bare(c.vid, c.pid);
    const KnownCoordinator* k = MatchCoordinator(d);
    ASSERT_NE(k, nullptr) << VidPidString(d);
    EXPECT_EQ(k->adapter, c.adapter) << VidPidString(d);
    EXPECT_FALSE(k->product.empty());
  }
}

TEST(UsbCoordinatorTable, NamesRefineSharedBridgeChips) {
  const KnownCoordinator* p = MatchCoordinator(ZbDongleP());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->adapter, "zstack");
  EXPECT_EQ(p->product, "Sonoff ZBDongle-P");
  EXPECT_FALSE(p->generic);

  const KnownCoordinator* e = MatchCoordinator(ZbDongleE());
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->adapter, "ember");
  EXPECT_FALSE(e->generic);

  UsbDevice skyconnect = Bare(0x10c4, 0xea60, "Nabu Casa", "SkyConnect v1.0");
  EXPECT_EQ(MatchCoordinator(skyconnect)->adapter, "ember");

  UsbDevice unknown_cp210x = Bare(0x10c4, 0xea60, "Silicon Labs", "CP2102N USB to UART Bridge Controller");
  EXPECT_TRUE(MatchCoordinator(unknown_cp210x)->generic);

  EXPECT_EQ(MatchCoordinator(Keyboard()), nullptr);
}

TEST(UsbSysfs, ReadsStringDescriptors) {
  UsbDevice d = ZbDongleE();
  EXPECT_EQ(d.manufacturer, "ITEAD");
  EXPECT_EQ(d.product, "SONOFF Zigbee 3.0 USB Dongle Plus V2");
  EXPECT_EQ(d.serial, "20240122184111");
  EXPECT_EQ(VidPidString(d), "1a86:55d4");
}

TEST(UsbSysfs, MapsDevicesToTheirTtys) {
  EXPECT_EQ(TtysForDevice(kSys, ZbDongleP()), std::vector<std::string>{"ttyUSB0"});   // usb-serial driver
  EXPECT_EQ(TtysForDevice(kSys, ZbDongleE()), std::vector<std::string>{"ttyACM0"});   // cdc_acm
  EXPECT_EQ(TtysForDevice(kSys, Launchpad()), (std::vector<std::string>{"ttyACM1", "ttyACM2"}));
  // "1-4.2" must not pick up the interfaces of its neighbour "1-4.20".
  EXPECT_EQ(TtysForDevice(kSys, ConBee()), std::vector<std::string>{"ttyACM3"});
  EXPECT_EQ(TtysForDevice(kSys, Ch340()), std::vector<std::string>{"ttyUSB1"});
  EXPECT_TRUE(TtysForDevice(kSys, Keyboard()).empty());
  EXPECT_TRUE(TtysForDevice("/nonexistent", ZbDongleP()).empty());
  EXPECT_TRUE(TtysForDevice(kSys, Bare(0x0451, 0x16a8)).empty());  // no port path
}

TEST(UsbSysfs, FindsSerialByIdLinks) {
  TempDir dev;
  fs::create_directories(dev.path() / "serial/by-id");
  fs::create_symlink("../../ttyUSB0", dev.path() / "serial/by-id/usb-ITead_Sonoff_Zigbee_3.0_USB_Dongle_Plus-if00-port0");
  fs::create_symlink("../../ttyACM0", dev.path() / "serial/by-id/usb-ITEAD_SONOFF_Zigbee_3.0_USB_Dongle_Plus_V2-if00");
  EXPECT_EQ(SerialByIdFor(dev.path().string(), "ttyUSB0"),
            (dev.path() / "serial/by-id/usb-ITead_Sonoff_Zigbee_3.0_USB_Dongle_Plus-if00-port0").string());
  EXPECT_EQ(SerialByIdFor(dev.path().string(), "ttyACM9"), "");
  EXPECT_EQ(SerialByIdFor("/nonexistent", "ttyUSB0"), "");
}

TEST(UsbAutoPort, PrefersASpecificZstackStickAndItsByIdPath) {
  TempDir dev;
  fs::create_directories(dev.path() / "serial/by-id");
  const fs::path link = dev.path() / "serial/by-id/usb-ITead_Sonoff_Zigbee_3.0_USB_Dongle_Plus-if00-port0";
  fs::create_symlink("../../ttyUSB0", link);

  FakeUsbEnumerator bus({Keyboard(), Ch340(), ConBee(), ZbDongleE(), Launchpad(), ZbDongleP()});
  auto devices = bus.List();
  ASSERT_TRUE(devices.ok());
  std::vector<Coordinator> found = FindCoordinators(*devices, kSys, dev.path().string());
  ASSERT_EQ(found.size(), 5u);  // all but the keyboard
  auto port = ResolveAutoPort(found);
  ASSERT_TRUE(port.ok()) << port.status().ToString();
  EXPECT_EQ(*port, link.string());

  // Without udev links, the tty itself.
  auto plain = ResolveAutoPort(FindCoordinators(*devices, kSys, "/nonexistent-dev"));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, "/nonexistent-dev/ttyUSB0");
}

TEST(UsbAutoPort, RanksSpecificOverGenericAndZstackOverOthers) {
  struct Case {
    std::vector<UsbDevice> devices;
    std::string want;
  };
  for (const Case& c : {
           Case{{Ch340(), Launchpad()}, "/dev/ttyACM1"},  // launchpad's first interface is the chip
           Case{{Ch340(), ConBee()}, "/dev/ttyACM3"},     // specific deconz beats a generic CH340
           Case{{ConBee(), ZbDongleE(), ZbDongleP()}, "/dev/ttyUSB0"},
           Case{{ConBee(), ZbDongleE()}, "/dev/ttyACM0"},  // same rank: bus order
           Case{{Ch340()}, "/dev/ttyUSB1"},
       }) {
    auto port = ResolveAutoPort(FindCoordinators(c.devices, kSys, "/dev"));
    ASSERT_TRUE(port.ok()) << port.status().ToString();
    EXPECT_EQ(*port, c.want);
  }
}

TEST(UsbAutoPort, NotFoundSaysWhatWasSeen) {
  auto none = ResolveAutoPort(FindCoordinators({Keyboard()}, kSys, "/dev"));
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("zigbee.serial.port"), std::string::npos);

  // A coordinator whose serial driver is not bound: known, but no port to open.
  UsbDevice unbound = Bare(0x0451, 0x16a8);
  unbound.bus = 3;
  unbound.port_path = "3-1";
  auto no_tty = ResolveAutoPort(FindCoordinators({unbound}, kSys, "/dev"));
  EXPECT_EQ(no_tty.status().code(), StatusCode::kNotFound);
  EXPECT_NE(no_tty.status().message().find("without a tty"), std::string::npos) << no_tty.status().ToString();
}

TEST(UsbFakeEnumerator, ReportsHotplugAndListErrors) {
  FakeUsbEnumerator bus;
  std::vector<std::pair<HotplugEvent, UsbDevice>> events;
  ASSERT_TRUE(bus.WatchHotplug([&](HotplugEvent e, const UsbDevice& d) { events.emplace_back(e, d); }).ok());
  bus.Plug(ZbDongleP());
  EXPECT_TRUE(bus.Unplug(1, 2));
  EXPECT_FALSE(bus.Unplug(1, 2));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].first, HotplugEvent::kArrived);
  EXPECT_EQ(events[1].first, HotplugEvent::kLeft);
  EXPECT_EQ(events[1].second, ZbDongleP());
  bus.StopWatching();
  bus.Plug(ZbDongleP());
  EXPECT_EQ(events.size(), 2u);

  bus.SetListError(UnavailableError("no bus"));
  EXPECT_EQ(bus.List().status().code(), StatusCode::kUnavailable);
  bus.SetListError(std::nullopt);
  EXPECT_EQ(bus.List()->size(), 1u);
}

// The real libusb implementation on whatever this machine has: CI has no USB bus at all (no
// /dev/bus/usb), a workstation may have devices. Either way it must answer, not crash or hang.
TEST(UsbLibusb, AnswersWithoutABusAndStopsPromptly) {
  for (int round = 0; round < 3; ++round) {  // init/exit repeatedly: no leaked context or thread
    std::unique_ptr<UsbEnumerator> usb = NewLibusbEnumerator("/sys");
    auto devices = usb->List();
    if (devices.ok()) {
      for (const UsbDevice& d : *devices) EXPECT_FALSE(d.port_path.empty()) << VidPidString(d);
    } else {
      EXPECT_EQ(devices.status().code(), StatusCode::kUnavailable) << devices.status().ToString();
      EXPECT_NE(devices.status().message().find("libusb"), std::string::npos);
    }
    Status watch = usb->WatchHotplug([](HotplugEvent, const UsbDevice&) {});
    EXPECT_TRUE(watch.ok() || watch.code() == StatusCode::kUnimplemented || watch.code() == StatusCode::kUnavailable)
        << watch.ToString();
    auto start = std::chrono::steady_clock::now();
    usb->StopWatching();
    usb->StopWatching();
    usb.reset();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  }
}

TEST(UsbLibusb, EmptySysRootLeavesStringsEmpty) {
  UsbDevice d = Bare(1, 2);
  d.port_path = "9-9";
  ReadSysfsStrings("/nonexistent", d);
  EXPECT_EQ(d.manufacturer, "");
  EXPECT_EQ(d.product, "");
}

}  // namespace
}  // namespace edged::usb
