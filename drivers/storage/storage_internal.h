// Internals of the storage module that tests reach: the parsers (pure functions over text), the bounded
// worker pool, the subprocess runner and the options the module really runs with (milliseconds, so
// tests can use short timeouts that the seconds-based config cannot express).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/status.h"
#include "config/config.h"
#include "drivers/storage/storage.h"

namespace edged::storage::detail {

// ---- mounts ----

struct MountTarget {
  std::string device;
  std::string mountpoint;
  std::string fstype;
  bool write_probe = false;
  bool operator==(const MountTarget&) const = default;
};

// One mount table line each, from /proc/<pid>/mountinfo (when `mountinfo` is true) or /proc/mounts.
std::vector<MountTarget> ParseMountTable(std::string_view text, bool mountinfo);

struct MountFilter {
  std::vector<std::string> fstypes;  // empty = every type
  std::optional<std::regex> exclude_mountpoints;
  bool discover = true;
  std::vector<config::MountConfig> configured;
};

// The mounts to probe: discovered ones that pass the filter, plus every configured path (labelled with
// the mount that contains it), one per mountpoint (a later over-mount wins), sorted by mountpoint.
std::vector<MountTarget> SelectMounts(const std::vector<MountTarget>& table, const MountFilter& filter);

struct ProbeResult {
  Status statvfs_status;
  FilesystemStats stats;
  std::optional<Status> write_status;  // set when a write probe ran
  double seconds = 0;
};

// statvfs, then (when `write_probe`) write/fsync/read back/remove a small file in `mountpoint`.
// Blocks as long as the filesystem does: call it on a worker.
ProbeResult ProbeMount(const std::string& mountpoint, bool write_probe);

// ---- SMART ----

struct SmartScanEntry {
  std::string path;        // "/dev/sda"
  std::string type;        // "sat", "nvme", "scsi"
  std::string protocol;    // "ATA", "NVMe", "SCSI"
  std::string open_error;  // --scan-open could not open it (e.g. an unknown USB bridge)
  bool operator==(const SmartScanEntry&) const = default;
};

// The devices of `smartctl --scan-open --json`.
StatusOr<std::vector<SmartScanEntry>> ParseSmartScan(std::string_view json);

// A `storage.smart.devices` entry: "/dev/sda" or, as in smartd.conf, "/dev/sdb -d sat".
StatusOr<SmartScanEntry> ParseSmartDeviceSpec(std::string_view spec);

// One `smartctl -a --json` answer. `process_exit` is used when the JSON carries no exit_status. Bad or
// empty JSON is a DataLoss error; a JSON answer saying the device could not be read is a SmartDevice
// with `error` set.
StatusOr<SmartDevice> ParseSmartDevice(std::string_view json, int process_exit);

// True when smartctl could not tell what sits behind a USB bridge and asks for `-d`.
bool SmartNeedsDeviceType(const SmartDevice& device);

// "sda" for "/dev/sda".
std::string SmartDeviceLabel(std::string_view path);

// ---- RAID ----

// /proc/mdstat; arrays whose lines cannot be read are skipped.
std::vector<MdArray> ParseMdstat(std::string_view text);

// `zpool list -Hp -o name,health,size,alloc,free`; malformed lines are skipped.
std::vector<ZfsPool> ParseZpoolList(std::string_view text);

// ---- subprocesses ----

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

// Runs argv[0] (searched in PATH) with stdin from /dev/null and returns its exit status and output
// (each stream capped at 8 MiB). A child still running at `timeout` is killed with its process group:
// DeadlineExceeded. A program that does not exist: NotFound.
StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// ---- workers ----

// A fixed number of threads taking tasks from a queue. Tasks may block forever (a hung statfs): the
// pool never grows, and its owner avoids queueing a second task for a target whose first one has not
// returned. Threads hold the shared state, so the pool can be destroyed while a task still hangs: that
// thread is detached and ends when its call returns.
class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();  // Shutdown(2 s)
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // False after Shutdown().
  bool Submit(std::function<void()> task);
  // Threads running a task now.
  int busy() const;
  int threads() const { return threads_count_; }
  // Drops queued tasks, waits up to `grace` for running ones, detaches what still runs.
  void Shutdown(std::chrono::milliseconds grace);

  struct Shared;  // queue and counters, co-owned by the threads (defined in worker_pool.cc)

 private:
  std::shared_ptr<Shared> shared_;
  std::vector<std::thread> threads_;
  int threads_count_;
};

// ---- the module ----

struct StorageOptions {
  std::chrono::milliseconds interval{30000};
  std::chrono::milliseconds probe_timeout{5000};
  MountFilter mounts;
  std::string proc_root = "/proc";
  bool smart_enabled = true;
  std::chrono::milliseconds smart_interval{30 * 60 * 1000};
  std::chrono::milliseconds smart_timeout{60000};
  std::string smartctl = "smartctl";
  std::vector<SmartScanEntry> smart_devices;  // empty = scan
  bool raid = true;
  std::string zpool = "zpool";
  int workers = kMaxStorageWorkers;
};

StatusOr<StorageOptions> OptionsFromConfig(const config::StorageConfig& config);

StatusOr<std::unique_ptr<StorageModule>> NewStorageModuleWithOptions(StorageOptions options,
                                                                     prometheus::Registry& registry);

}  // namespace edged::storage::detail
