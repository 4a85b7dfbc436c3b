// Parsers on recorded fixtures (mount tables, smartctl --json, mdstat, zpool), the config factory, the
// subprocess runner and the worker pool. No root needed.
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/atomic_file.h"
#include "drivers/storage/storage.h"
#include "drivers/storage/storage_internal.h"

namespace edged::storage {
namespace {

using namespace std::chrono_literals;
using detail::MountTarget;

std::string Fixture(const std::string& rel) {
  auto text = ReadFileToString(std::string(EDGED_FIXTURES) + "/" + rel);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return text.ok() ? *text : std::string();
}

SmartDevice ParseSmartFixture(const std::string& name, int exit_code) {
  auto d = detail::ParseSmartDevice(Fixture("smart/" + name), exit_code);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return d.ok() ? *d : SmartDevice{};
}

// ---- mounts ----

TEST(StorageMountTable, ParsesMountinfoWithEscapes) {
  auto table = detail::ParseMountTable(Fixture("proc/self/mountinfo"), true);
  ASSERT_EQ(table.size(), 16u);
  EXPECT_EQ(table[0], (MountTarget{"/dev/sda2", "/", "ext4", false}));
  EXPECT_EQ(table[9], (MountTarget{"//nas.lan/backup", "/mnt/backup share", "cifs", false}));
  EXPECT_EQ(table[15].fstype, "fuse.sshfs");
}

TEST(StorageMountTable, ParsesProcMounts) {
  auto table = detail::ParseMountTable(
      "/dev/sda2 / ext4 rw,relatime 0 0\n"
      "nas:/export /mnt/my\\040media nfs4 rw 0 0\n"
      "garbage\n",
      false);
  ASSERT_EQ(table.size(), 2u);
  EXPECT_EQ(table[1], (MountTarget{"nas:/export", "/mnt/my media", "nfs4", false}));
}

TEST(StorageMountTable, DefaultFilterKeepsDataMountsOnly) {
  auto options = detail::OptionsFromConfig(config::StorageConfig{});
  ASSERT_TRUE(options.ok()) << options.status().ToString();
  auto selected = detail::SelectMounts(detail::ParseMountTable(Fixture("proc/self/mountinfo"), true),
                                       options->mounts);
  std::vector<std::string> mountpoints;
  for (const MountTarget& m : selected) mountpoints.push_back(m.mountpoint + " " + m.fstype);
  // /proc, /sys, /dev*, /run, docker and kubelet mounts, overlay and sshfs are not watched; /srv/data
  // is over-mounted, and the ext4 on top is the one statfs reaches.
  EXPECT_EQ(mountpoints, (std::vector<std::string>{"/ ext4", "/boot/efi vfat", "/mnt/backup share cifs",
                                                   "/mnt/media nfs4", "/srv/data ext4", "/srv/raid xfs",
                                                   "/tank zfs"}));
}

TEST(StorageMountTable, ConfiguredPathsAreAddedWithTheirMountsLabels) {
  detail::MountFilter filter;
  filter.discover = false;
  filter.configured = {{"/mnt/media/films/", true}, {"/srv/raid", false}};
  auto selected = detail::SelectMounts(detail::ParseMountTable(Fixture("proc/self/mountinfo"), true), filter);
  ASSERT_EQ(selected.size(), 2u);
  EXPECT_EQ(selected[0], (MountTarget{"nas.lan:/export/media", "/mnt/media/films", "nfs4", true}));
  EXPECT_EQ(selected[1], (MountTarget{"/dev/md0", "/srv/raid", "xfs", false}));
}

// ---- SMART ----

TEST(StorageSmart, ScanOpen) {
  auto scan = detail::ParseSmartScan(Fixture("smart/scan-open.json"));
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  ASSERT_EQ(scan->size(), 5u);
  EXPECT_EQ((*scan)[0], (detail::SmartScanEntry{"/dev/sda", "sat", "ATA", ""}));
  EXPECT_EQ((*scan)[4], (detail::SmartScanEntry{"/dev/nvme0", "nvme", "NVMe", ""}));
  // A machine without disks: smartctl leaves "devices" out.
  auto none = detail::ParseSmartScan(R"({"json_format_version":[1,0],"smartctl":{"exit_status":0}})");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(StorageSmart, AtaHealthy) {
  SmartDevice d = ParseSmartFixture("ata-healthy.json", 0);
  EXPECT_EQ(d.device, "sda");
  EXPECT_EQ(d.type, "sat");
  EXPECT_EQ(d.protocol, "ATA");
  EXPECT_EQ(d.model, "WDC WD40EFRX-68N32N0");
  EXPECT_EQ(d.serial, "WD-WCC7K4KXL7ZP");
  EXPECT_EQ(d.healthy, true);
  EXPECT_EQ(d.temperature_celsius, 36);
  EXPECT_EQ(d.power_on_hours, 35124u);
  EXPECT_EQ(d.reallocated_sectors, 0u);
  EXPECT_EQ(d.pending_sectors, 0u);
  EXPECT_EQ(d.offline_uncorrectable, 0u);
  EXPECT_FALSE(d.percentage_used);
  EXPECT_FALSE(d.error);
  EXPECT_FALSE(d.standby);
  EXPECT_TRUE(d.exit_flags.empty());
}

TEST(StorageSmart, AtaFailing) {
  SmartDevice d = ParseSmartFixture("ata-failing.json", 88);
  EXPECT_EQ(d.healthy, false);
  EXPECT_EQ(d.exit_status, 88);
  EXPECT_EQ(d.exit_flags,
            (std::vector<std::string>{"disk_failing", "prefail_below_threshold", "error_log_has_errors"}));
  EXPECT_EQ(d.reallocated_sectors, 3904u);
  EXPECT_EQ(d.pending_sectors, 184u);
  EXPECT_EQ(d.offline_uncorrectable, 184u);
  // "34587 (169 93 0)": smartctl decodes the packed raw value into power_on_time.
  EXPECT_EQ(d.power_on_hours, 34587u);
  EXPECT_EQ(d.temperature_celsius, 39);
  EXPECT_FALSE(d.error) << "a failing disk still answered: its data is valid";
}

TEST(StorageSmart, Nvme) {
  SmartDevice d = ParseSmartFixture("nvme.json", 0);
  EXPECT_EQ(d.device, "nvme0");
  EXPECT_EQ(d.protocol, "NVMe");
  EXPECT_EQ(d.healthy, true);
  EXPECT_EQ(d.temperature_celsius, 44);
  EXPECT_EQ(d.power_on_hours, 8761u);
  EXPECT_EQ(d.percentage_used, 7u);
  EXPECT_EQ(d.media_errors, 3u);
  EXPECT_EQ(d.critical_warning, 0u);
  EXPECT_EQ(d.available_spare, 100u);
  EXPECT_FALSE(d.reallocated_sectors);
}

TEST(StorageSmart, StandbyIsNotAnError) {
  SmartDevice d = ParseSmartFixture("ata-standby.json", 2);
  EXPECT_TRUE(d.standby);
  EXPECT_FALSE(d.error);
  EXPECT_EQ(d.exit_flags, std::vector<std::string>{"device_open_failed"});
  EXPECT_FALSE(d.healthy);
  EXPECT_FALSE(d.temperature_celsius);
}

TEST(StorageSmart, UnknownUsbBridgeAsksForDeviceType) {
  SmartDevice d = ParseSmartFixture("usb-bridge-unknown.json", 1);
  EXPECT_TRUE(d.error);
  EXPECT_NE(d.error_message.find("Unknown USB bridge"), std::string::npos) << d.error_message;
  EXPECT_TRUE(detail::SmartNeedsDeviceType(d));
  SmartDevice sat = ParseSmartFixture("usb-bridge-sat.json", 0);
  EXPECT_FALSE(sat.error);
  EXPECT_FALSE(detail::SmartNeedsDeviceType(sat));
  EXPECT_EQ(sat.type, "sat");
  EXPECT_EQ(sat.reallocated_sectors, 8u);
  EXPECT_EQ(sat.temperature_celsius, 41);
}

TEST(StorageSmart, BadJsonIsAnErrorNotACrash) {
  for (const std::string& text : {Fixture("smart/truncated.json"), std::string(), std::string("[1,2]"),
                                  std::string("not json at all"), std::string("{\"smartctl\": 7}")}) {
    auto d = detail::ParseSmartDevice(text, 0);
    if (d.ok()) {
      // Valid JSON of the wrong shape: no data, no crash.
      EXPECT_FALSE(d->healthy) << text;
    } else {
      EXPECT_EQ(d.status().code(), StatusCode::kDataLoss) << text;
    }
  }
  EXPECT_FALSE(detail::ParseSmartDevice(Fixture("smart/truncated.json"), 0).ok());
  EXPECT_FALSE(detail::ParseSmartScan("{\"devices\": ").ok());
  EXPECT_FALSE(detail::ParseSmartScan("{\"devices\": 3}").ok());
  // Wrong types inside valid JSON are skipped, not thrown.
  auto odd = detail::ParseSmartDevice(
      R"({"smart_status":{"passed":"yes"},"temperature":{"current":"hot"},"power_on_time":{"hours":-5},
          "ata_smart_attributes":{"table":[{"id":"5","raw":{"value":1}}, 3, {"id":197,"raw":{"value":-1}}]}})",
      0);
  ASSERT_TRUE(odd.ok()) << odd.status().ToString();
  EXPECT_FALSE(odd->healthy);
  EXPECT_FALSE(odd->temperature_celsius);
  EXPECT_FALSE(odd->power_on_hours);
  EXPECT_FALSE(odd->reallocated_sectors);
  EXPECT_FALSE(odd->pending_sectors);
}

TEST(StorageSmart, ExitStatusBits) {
  EXPECT_TRUE(DecodeSmartExitStatus(0).empty());
  EXPECT_EQ(DecodeSmartExitStatus(1), std::vector<std::string>{"command_line_error"});
  EXPECT_EQ(DecodeSmartExitStatus(0xC0),
            (std::vector<std::string>{"error_log_has_errors", "self_test_log_has_errors"}));
  EXPECT_EQ(DecodeSmartExitStatus(0xFF).size(), 8u);
  EXPECT_EQ(SmartExitFlags().size(), 8u);
}

TEST(StorageSmart, DeviceSpecs) {
  auto plain = detail::ParseSmartDeviceSpec("/dev/sda");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->path, "/dev/sda");
  EXPECT_EQ(plain->type, "");
  auto sat = detail::ParseSmartDeviceSpec("/dev/sdb -d sat");
  ASSERT_TRUE(sat.ok());
  EXPECT_EQ(sat->type, "sat");
  EXPECT_FALSE(detail::ParseSmartDeviceSpec("sda").ok());
  EXPECT_FALSE(detail::ParseSmartDeviceSpec("/dev/sdb -d").ok());
  EXPECT_FALSE(detail::ParseSmartDeviceSpec("/dev/sdb --type sat").ok());
  EXPECT_EQ(detail::SmartDeviceLabel("/dev/disk/by-id/usb-X"), "disk/by-id/usb-X");
}

// ---- RAID ----

TEST(StorageMdstat, Healthy) {
  auto md = detail::ParseMdstat(Fixture("proc/mdstat-healthy"));
  ASSERT_EQ(md.size(), 2u);
  EXPECT_EQ(md[0], (MdArray{"md0", "active", "raid1", 2, 2, 0, 0, 976630464, 976630464, false}));
  EXPECT_EQ(md[1], (MdArray{"md10", "active", "raid10", 4, 4, 0, 1, 1953257472, 1953257472, false}));
}

TEST(StorageMdstat, Degraded) {
  auto md = detail::ParseMdstat(Fixture("proc/mdstat-degraded"));
  ASSERT_EQ(md.size(), 1u);
  EXPECT_EQ(md[0], (MdArray{"md1", "active", "raid5", 3, 2, 1, 0, 3906764800, 3906764800, true}));
}

TEST(StorageMdstat, Resync) {
  auto md = detail::ParseMdstat(Fixture("proc/mdstat-resync"));
  ASSERT_EQ(md.size(), 1u);
  EXPECT_EQ(md[0].state, "resync");
  EXPECT_FALSE(md[0].degraded);
  EXPECT_EQ(md[0].blocks, 1953382400u);
  EXPECT_EQ(md[0].blocks_synced, 560621568u);
}

TEST(StorageMdstat, EveryKindInOneFile) {
  auto md = detail::ParseMdstat(Fixture("proc/mdstat"));
  ASSERT_EQ(md.size(), 7u);
  EXPECT_EQ(md[2].state, "resync");
  EXPECT_EQ(md[3].name, "md3");
  EXPECT_EQ(md[3].state, "recovering");
  EXPECT_TRUE(md[3].degraded);
  EXPECT_NEAR(static_cast<double>(md[3].blocks_synced) / static_cast<double>(md[3].blocks), 0.126, 0.001);
  // raid0 prints no [n/m]: both members are needed.
  EXPECT_EQ(md[4], (MdArray{"md4", "active", "raid0", 2, 2, 0, 0, 1953257472, 1953257472, false}));
  EXPECT_EQ(md[5].name, "md5");
  EXPECT_EQ(md[5].level, "raid1");  // "(auto-read-only)" is not the level
  EXPECT_EQ(md[5].state, "active");
  EXPECT_EQ(md[6], (MdArray{"md127", "inactive", "", 0, 0, 0, 1, 976630488, 976630488, false}));
  EXPECT_TRUE(detail::ParseMdstat("").empty());
  EXPECT_TRUE(detail::ParseMdstat("md0 : \n  garbage [x/y]\n").empty());
}

TEST(StorageZpool, List) {
  auto pools = detail::ParseZpoolList("tank\tONLINE\t1000\t400\t600\nold\tFAULTED\t-\t-\t-\nbad line\n");
  ASSERT_EQ(pools.size(), 2u);
  EXPECT_EQ(pools[0], (ZfsPool{"tank", "ONLINE", 1000, 400, 600}));
  EXPECT_EQ(pools[1], (ZfsPool{"old", "FAULTED", 0, 0, 0}));
}

// ---- config and factory ----

TEST(StorageConfig, FactoryAcceptsDefaultsAndRejectsBadFields) {
  prometheus::Registry registry;
  EXPECT_TRUE(NewStorageModule(config::StorageConfig{}, registry).ok());

  struct Case {
    const char* what;
    std::function<void(config::StorageConfig&)> change;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"bad regex", [](auto& c) { c.exclude_mountpoints = "^/(dev"; }, "exclude_mountpoints"},
      {"zero timeout", [](auto& c) { c.probe_timeout = config::Seconds(0); }, "probe_timeout"},
      {"zero interval", [](auto& c) { c.interval = config::Seconds(0); }, "storage.interval"},
      {"relative mount", [](auto& c) { c.mounts = {{"mnt/nas", false}}; }, "not absolute"},
      {"bad smart device", [](auto& c) { c.smart.devices = {"/dev/sda -x"}; }, "storage.smart.devices"},
      {"empty smartctl", [](auto& c) { c.smart.smartctl = ""; }, "storage.smart.smartctl"},
      {"zero smart timeout", [](auto& c) { c.smart.timeout = config::Seconds(0); }, "storage.smart.timeout"},
  };
  for (const Case& c : cases) {
    config::StorageConfig cfg;
    c.change(cfg);
    prometheus::Registry r;
    auto m = NewStorageModule(cfg, r);
    ASSERT_FALSE(m.ok()) << c.what;
    EXPECT_EQ(m.status().code(), StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(m.status().message().find(c.expect), std::string_view::npos) << c.what << ": " << m.status().ToString();
  }
}

TEST(StorageConfig, StopWithoutStartIsSafe) {
  prometheus::Registry registry;
  auto m = NewStorageModule(config::StorageConfig{}, registry);
  ASSERT_TRUE(m.ok());
  (*m)->Stop();
  EXPECT_EQ((*m)->name(), "storage");
  EXPECT_TRUE((*m)->Snapshot()->mounts.empty());
}

// ---- subprocesses and workers ----

TEST(StorageSubprocess, CapturesOutputAndExitCode) {
  auto r = detail::RunCommand({"sh", "-c", "echo out; echo err >&2; exit 3"}, 5s);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
}

TEST(StorageSubprocess, KillsTheWholeGroupAtTheDeadline) {
  const auto start = std::chrono::steady_clock::now();
  // The shell's child `sleep` holds the pipe open too; only killing the group ends it.
  auto r = detail::RunCommand({"sh", "-c", "sleep 30 & sleep 30; echo never"}, 300ms);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_LT(took, 3s);
}

TEST(StorageSubprocess, MissingProgramIsNotFound) {
  auto r = detail::RunCommand({"/nonexistent/smartctl", "--scan-open"}, 1s);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST(StorageSubprocess, RealSmartctlOnAMissingDevice) {
  // The installed smartctl, not a fixture: its JSON for a device it cannot open parses as an error.
  auto r = detail::RunCommand({"smartctl", "-a", "--json", "--nocheck=standby", "/dev/edged-no-such-disk"}, 10s);
  if (!r.ok() && r.status().code() == StatusCode::kNotFound) GTEST_SKIP() << "smartctl (smartmontools) not installed";
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto d = detail::ParseSmartDevice(r->out, r->exit_code);
  ASSERT_TRUE(d.ok()) << d.status().ToString() << "\n" << r->out;
  EXPECT_TRUE(d->error);
  EXPECT_NE(d->exit_status, 0);
  EXPECT_FALSE(d->error_message.empty());
}

TEST(StorageWorkerPool, NeverMoreThreadsThanConfiguredAndHungTasksDetach) {
  auto release = std::make_shared<std::atomic<bool>>(false);
  std::atomic<int> done{0};
  {
    detail::WorkerPool pool(2);
    EXPECT_EQ(pool.threads(), 2);
    // Two tasks hang; the others wait in the queue, on no new thread.
    for (int i = 0; i < 2; ++i) {
      ASSERT_TRUE(pool.Submit([release] {
        while (!release->load()) std::this_thread::sleep_for(5ms);
      }));
    }
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(pool.Submit([&done] { ++done; }));
    std::this_thread::sleep_for(100ms);
    EXPECT_EQ(pool.busy(), 2);
    EXPECT_EQ(done.load(), 0);
    const auto start = std::chrono::steady_clock::now();
    pool.Shutdown(200ms);  // the hung ones are detached, not waited for
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_FALSE(pool.Submit([] {}));
  }
  release->store(true);
  std::this_thread::sleep_for(50ms);  // let the detached threads leave
  EXPECT_EQ(done.load(), 0);          // queued tasks were dropped at shutdown
}

}  // namespace
}  // namespace edged::storage
