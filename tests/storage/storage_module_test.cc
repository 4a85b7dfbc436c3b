// The storage module end to end with stand-ins for the programs a CI machine has no disks for:
// fake-smartctl.sh answers with recorded smartctl 7.3 JSON (through the real subprocess runner),
// fake-zpool.sh with `zpool list` output, and a fixture /proc gives mountinfo and mdstat.
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/atomic_file.h"
#include "drivers/storage/storage.h"
#include "drivers/storage/storage_internal.h"
#include "tests/storage/storage_test_util.h"

namespace edged::storage {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using testing::Metric;
using testing::MetricsText;
using testing::StartModule;
using testing::TempDir;

detail::StorageOptions FixtureOptions(const TempDir& tmp) {
  detail::StorageOptions o;
  o.interval = 200ms;
  o.probe_timeout = 1s;
  o.proc_root = std::string(EDGED_FIXTURES) + "/proc";
  o.mounts.fstypes = {"nfs4", "xfs"};  // /mnt/media and /srv/raid: not there on a test machine
  o.smartctl = EDGED_FAKE_SMARTCTL;
  o.smart_interval = 200ms;
  o.smart_timeout = 5s;
  o.zpool = EDGED_FAKE_ZPOOL;
  // The fake smartctl logs here; the environment is the one way to reach it through RunCommand.
  ::setenv("EDGED_FAKE_SMARTCTL_LOG", (tmp.path() / "smartctl.log").c_str(), 1);
  return o;
}

bool AllRoundsDone(const StorageSnapshot& s) {
  return s.filesystem_rounds >= 1 && s.smart_rounds >= 1 && s.raid_rounds >= 1;
}

TEST(StorageModule, ExportsSmartRaidZfsAndMountErrorsFromRecordedAnswers) {
  TempDir tmp;
  prometheus::Registry registry;
  auto module = StartModule(FixtureOptions(tmp), registry);
  ASSERT_NE(module, nullptr);
  auto snap = module->WaitFor(AllRoundsDone, 10s);
  ASSERT_TRUE(AllRoundsDone(*snap));
  const std::string text = MetricsText(registry);

  // Mounts that do not exist here: an error per mount, never a failed collector.
  EXPECT_EQ(Metric(text, R"(edged_filesystem_device_error{device="nas.lan:/export/media",fstype="nfs4",mountpoint="/mnt/media"})"), 1) << text;
  EXPECT_EQ(Metric(text, R"(edged_mount_stale{device="/dev/md0",fstype="xfs",mountpoint="/srv/raid"})"), 0);
  EXPECT_TRUE(std::isnan(Metric(text, R"(edged_filesystem_size_bytes{device="/dev/md0",fstype="xfs",mountpoint="/srv/raid"})")));
  EXPECT_EQ(Metric(text, R"(edged_collector_success{collector="filesystem"})"), 1);

  // SMART: healthy ATA, failing ATA, USB bridge via -d sat, a sleeping disk, NVMe.
  EXPECT_EQ(Metric(text, R"(edged_smart_healthy{device="sda"})"), 1);
  EXPECT_EQ(Metric(text, R"(edged_smart_temperature_celsius{device="sda"})"), 36);
  EXPECT_EQ(Metric(text, R"(edged_smart_power_on_seconds{device="sda"})"), 35124.0 * 3600);
  EXPECT_EQ(Metric(text, R"(edged_smart_healthy{device="sdb"})"), 0);
  EXPECT_EQ(Metric(text, R"(edged_smart_reallocated_sectors{device="sdb"})"), 3904);
  EXPECT_EQ(Metric(text, R"(edged_smart_pending_sectors{device="sdb"})"), 184);
  EXPECT_EQ(Metric(text, R"(edged_smart_offline_uncorrectable_sectors{device="sdb"})"), 184);
  EXPECT_EQ(Metric(text, R"(edged_smart_exit_status{device="sdb"})"), 88);
  EXPECT_EQ(Metric(text, R"(edged_smart_exit_flag{device="sdb",flag="disk_failing"})"), 1);
  EXPECT_EQ(Metric(text, R"(edged_smart_exit_flag{device="sdb",flag="command_line_error"})"), 0);
  EXPECT_EQ(Metric(text, R"(edged_smart_healthy{device="sdc"})"), 1);
  EXPECT_EQ(Metric(text, R"(edged_smart_temperature_celsius{device="sdc"})"), 41);
  EXPECT_EQ(Metric(text, R"(edged_smart_device_error{device="sdc"})"), 0);
  EXPECT_EQ(Metric(text, R"(edged_smart_device_standby{device="sdd"})"), 1);
  EXPECT_EQ(Metric(text, R"(edged_smart_device_error{device="sdd"})"), 0);
  EXPECT_TRUE(std::isnan(Metric(text, R"(edged_smart_temperature_celsius{device="sdd"})")));
  EXPECT_EQ(Metric(text, R"(edged_smart_percentage_used{device="nvme0"})"), 7);
  EXPECT_EQ(Metric(text, R"(edged_smart_media_errors{device="nvme0"})"), 3);
  EXPECT_EQ(Metric(text, R"(edged_smart_temperature_celsius{device="nvme0"})"), 44);
  EXPECT_EQ(Metric(text, R"(edged_collector_success{collector="smart"})"), 1);
  EXPECT_NE(text.find(R"(edged_smart_device_info{device="sda",firmware="82.00A82",model="WDC WD40EFRX-68N32N0",protocol="ATA",serial="WD-WCC7K4KXL7ZP",type="sat"} 1)"),
            std::string::npos);
  const SmartDevice* sdc = snap->FindSmart("sdc");
  ASSERT_NE(sdc, nullptr);
  EXPECT_TRUE(sdc->needed_sat);

  // Every smartctl -a ran with --nocheck=standby; the USB bridge was retried with -d sat.
  auto log = ReadFileToString(tmp.path() / "smartctl.log");
  ASSERT_TRUE(log.ok());
  std::istringstream lines(*log);
  int device_runs = 0;
  bool sdc_plain = false, sdc_sat = false;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("-a ", 0) != 0) continue;
    ++device_runs;
    EXPECT_NE(line.find("--nocheck=standby"), std::string::npos) << line;
    EXPECT_NE(line.find("--json"), std::string::npos) << line;
    sdc_plain |= line == "-a --json --nocheck=standby /dev/sdc";
    sdc_sat |= line == "-a --json --nocheck=standby -d sat /dev/sdc";
  }
  EXPECT_GE(device_runs, 5);
  EXPECT_TRUE(sdc_plain);
  EXPECT_TRUE(sdc_sat);

  // md RAID from the fixture mdstat.
  EXPECT_EQ(Metric(text, R"(edged_md_degraded{device="md0"})"), 0);
  EXPECT_EQ(Metric(text, R"(edged_md_degraded{device="md1"})"), 1);
  EXPECT_EQ(Metric(text, R"(edged_md_disks{device="md1",state="failed"})"), 1);
  EXPECT_EQ(Metric(text, R"(edged_md_disks{device="md1",state="down"})"), 1);
  EXPECT_EQ(Metric(text, R"(edged_md_disks_required{device="md1"})"), 3);
  EXPECT_EQ(Metric(text, R"(edged_md_state{device="md2",state="resync"})"), 1);
  EXPECT_EQ(Metric(text, R"(edged_md_state{device="md2",state="active"})"), 0);
  EXPECT_EQ(Metric(text, R"(edged_md_state{device="md127",state="inactive"})"), 1);
  EXPECT_EQ(Metric(text, R"(edged_md_blocks_synced{device="md2"})"), 560621568);
  EXPECT_EQ(Metric(text, R"(edged_collector_success{collector="mdraid"})"), 1);

  // ZFS from the fake zpool.
  EXPECT_EQ(Metric(text, R"(edged_zfs_pool_health{pool="tank",state="ONLINE"})"), 1);
  EXPECT_EQ(Metric(text, R"(edged_zfs_pool_health{pool="backup",state="DEGRADED"})"), 1);
  EXPECT_EQ(Metric(text, R"(edged_zfs_pool_health{pool="backup",state="ONLINE"})"), 0);
  EXPECT_EQ(Metric(text, R"(edged_zfs_pool_size_bytes{pool="tank"})"), 7998634590208.0);
  EXPECT_EQ(Metric(text, R"(edged_zfs_pool_health{pool="old",state="FAULTED"})"), 1);
  EXPECT_EQ(Metric(text, R"(edged_collector_success{collector="zfs"})"), 1);
  EXPECT_EQ(Metric(text, R"(edged_storage_workers)"), kMaxStorageWorkers);

  const Health h = module->health();
  EXPECT_EQ(h.state, HealthState::kWarning);
  EXPECT_NE(h.message.find("disk /dev/sdb fails its SMART health check"), std::string::npos) << h.message;
  EXPECT_NE(h.message.find("md array md1 is degraded"), std::string::npos) << h.message;
  EXPECT_NE(h.message.find("ZFS pool backup is DEGRADED"), std::string::npos) << h.message;
  module->Stop();
}

TEST(StorageModule, SleepingDiskKeepsItsLastAwakeValuesButNotTemperature) {
  TempDir tmp;
  auto o = FixtureOptions(tmp);
  o.raid = false;
  o.mounts.discover = false;
  o.smart_devices = {{"/dev/sdd", "", "", ""}};
  const fs::path awake = tmp.path() / "smartctl.log.awake";
  std::ofstream(awake).put('1');
  prometheus::Registry registry;
  auto module = StartModule(o, registry);
  ASSERT_NE(module, nullptr);
  auto snap = module->WaitFor([](const StorageSnapshot& s) { return s.smart_rounds >= 1; }, 10s);
  const SmartDevice* d = snap->FindSmart("sdd");
  ASSERT_NE(d, nullptr);
  EXPECT_FALSE(d->standby);
  EXPECT_EQ(d->temperature_celsius, 36);

  fs::remove(awake);  // the disk spins down
  const std::uint64_t seen = snap->smart_rounds;
  snap = module->WaitFor([&](const StorageSnapshot& s) { return s.smart_rounds >= seen + 2; }, 10s);
  d = snap->FindSmart("sdd");
  ASSERT_NE(d, nullptr);
  EXPECT_TRUE(d->standby);
  EXPECT_FALSE(d->error);
  EXPECT_EQ(d->healthy, true);
  EXPECT_EQ(d->reallocated_sectors, 0u);
  EXPECT_EQ(d->power_on_hours, 35124u);
  EXPECT_EQ(d->model, "WDC WD40EFRX-68N32N0");
  EXPECT_FALSE(d->temperature_celsius);
  const std::string text = MetricsText(registry);
  EXPECT_EQ(Metric(text, R"(edged_smart_device_standby{device="sdd"})"), 1);
  EXPECT_EQ(Metric(text, R"(edged_smart_healthy{device="sdd"})"), 1);
  EXPECT_TRUE(std::isnan(Metric(text, R"(edged_smart_temperature_celsius{device="sdd"})")));
  EXPECT_TRUE(module->health().ok()) << module->health().message;
}

TEST(StorageModule, HungSmartctlIsKilledAndBadJsonIsADeviceError) {
  TempDir tmp;
  auto o = FixtureOptions(tmp);
  o.raid = false;
  o.mounts.discover = false;
  o.smart_timeout = 500ms;
  o.smart_interval = 1h;
  o.smart_devices = {{"/dev/sdx", "", "", ""}, {"/dev/sdy", "", "", ""}, {"/dev/sda", "", "", ""}};
  prometheus::Registry registry;
  const auto start = std::chrono::steady_clock::now();
  auto module = StartModule(o, registry);
  ASSERT_NE(module, nullptr);
  auto snap = module->WaitFor([](const StorageSnapshot& s) { return s.smart_rounds >= 1; }, 10s);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 4s);
  const SmartDevice* x = snap->FindSmart("sdx");
  ASSERT_NE(x, nullptr);
  EXPECT_TRUE(x->error);
  EXPECT_NE(x->error_message.find("did not finish"), std::string::npos) << x->error_message;
  const SmartDevice* y = snap->FindSmart("sdy");
  ASSERT_NE(y, nullptr);
  EXPECT_TRUE(y->error);
  EXPECT_NE(y->error_message.find("bad JSON"), std::string::npos) << y->error_message;
  const SmartDevice* a = snap->FindSmart("sda");
  ASSERT_NE(a, nullptr);
  EXPECT_FALSE(a->error);
  const std::string text = MetricsText(registry);
  EXPECT_EQ(Metric(text, R"(edged_smart_device_error{device="sdx"})"), 1);
  EXPECT_EQ(Metric(text, R"(edged_smart_device_error{device="sdy"})"), 1);
  EXPECT_EQ(Metric(text, R"(edged_smart_device_error{device="sda"})"), 0);
  EXPECT_EQ(Metric(text, R"(edged_collector_success{collector="smart"})"), 1);
  EXPECT_EQ(module->health().state, HealthState::kWarning);
}

TEST(StorageModule, MissingSmartctlFailsItsCollectorAndMissingZpoolIsSkipped) {
  TempDir tmp;
  auto o = FixtureOptions(tmp);
  o.mounts.discover = false;
  o.smartctl = "/nonexistent/smartctl";
  o.zpool = "/nonexistent/zpool";
  prometheus::Registry registry;
  auto module = StartModule(o, registry);
  ASSERT_NE(module, nullptr);
  auto snap = module->WaitFor(AllRoundsDone, 10s);
  ASSERT_TRUE(AllRoundsDone(*snap));
  EXPECT_FALSE(snap->collectors.at("smart").success);
  EXPECT_NE(snap->collectors.at("smart").error.find("not found"), std::string::npos);
  EXPECT_EQ(snap->collectors.count("zfs"), 0u);
  const std::string text = MetricsText(registry);
  EXPECT_EQ(Metric(text, R"(edged_collector_success{collector="smart"})"), 0);
  EXPECT_EQ(Metric(text, R"(edged_collector_success{collector="mdraid"})"), 1);
  EXPECT_EQ(text.find(R"(collector="zfs")"), std::string::npos);
}

TEST(StorageModule, UnreadableProcRootFailsTheFilesystemCollectorOnly) {
  TempDir tmp;
  auto o = FixtureOptions(tmp);
  o.proc_root = (tmp.path() / "no-proc").string();
  o.smart_enabled = false;
  o.zpool = "/nonexistent/zpool";
  prometheus::Registry registry;
  auto module = StartModule(o, registry);
  ASSERT_NE(module, nullptr);
  auto snap = module->WaitFor([](const StorageSnapshot& s) { return s.filesystem_rounds >= 1 && s.raid_rounds >= 1; }, 10s);
  EXPECT_FALSE(snap->collectors.at("filesystem").success);
  EXPECT_TRUE(snap->collectors.at("mdraid").success) << "no mdstat = no md driver, not an error";
  EXPECT_TRUE(snap->md.empty());
  EXPECT_EQ(Metric(MetricsText(registry), R"(edged_collector_success{collector="filesystem"})"), 0);
}

}  // namespace
}  // namespace edged::storage
