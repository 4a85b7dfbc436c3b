// Storage health for a NAS/home-lab node: space and inodes of every configured or discovered mount,
// SMART of the disks (smartctl --json), software RAID (/proc/mdstat) and ZFS pools (zpool).
//
// Everything that can hang — statvfs on a dead NFS server, smartctl on a dying disk, zpool — runs on a
// small fixed pool of worker threads with a timeout. A mount whose probe does not return within
// probe_timeout is reported stale and is not probed again until that call returns (node_exporter's
// "stuck mounts"), so one dead peer costs at most one worker, never a scrape and never a new thread.
// The daemon only ever reads a snapshot: metrics are plain gauges the module updates when results
// arrive, so /metrics never waits on storage.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/module.h"
#include "base/status.h"
#include "config/config.h"

namespace prometheus {
class Registry;
}

namespace edged::storage {

// What statvfs reported for one mount.
struct FilesystemStats {
  std::uint64_t size_bytes = 0;
  std::uint64_t free_bytes = 0;   // free for root
  std::uint64_t avail_bytes = 0;  // free for unprivileged users
  std::uint64_t files = 0;
  std::uint64_t files_free = 0;
  bool readonly = false;          // ST_RDONLY
  bool operator==(const FilesystemStats&) const = default;
};

struct MountState {
  std::string device;      // mount source: "/dev/sda1", "nas:/export", "//nas/share"
  std::string mountpoint;
  std::string fstype;
  // An outstanding probe has not returned within probe_timeout; it is not probed again until it does.
  // `stats` then holds the last values seen before it hung (if any).
  bool stale = false;
  bool device_error = false;  // the last statvfs failed; `error` says why
  std::string error;
  std::optional<FilesystemStats> stats;
  double probe_seconds = 0;  // how long the last completed probe (statvfs + write probe) took
  bool write_probe = false;  // configured to write/read/fsync/remove a small file
  std::optional<bool> write_probe_ok;  // result of the last write probe; empty when not run yet
  std::string write_probe_error;
  std::uint64_t probes_completed = 0;
};

// The decoded bits of smartctl's exit status (see smartctl(8), "RETURN VALUES").
struct SmartExitFlag {
  int bit;
  const char* name;         // metric label value, e.g. "disk_failing"
  const char* description;  // smartctl's own words
};
const std::vector<SmartExitFlag>& SmartExitFlags();
// Names of the bits set in `exit_status`, in bit order.
std::vector<std::string> DecodeSmartExitStatus(int exit_status);

struct SmartDevice {
  std::string device;    // label value: the path without "/dev/" ("sda", "nvme0", "disk/by-id/...")
  std::string path;      // "/dev/sda"
  std::string type;      // smartctl -d type used: "sat", "nvme", "scsi", ...
  std::string protocol;  // "ATA", "NVMe", "SCSI"
  std::string model;
  std::string serial;
  std::string firmware;
  int exit_status = 0;                  // smartctl.exit_status
  std::vector<std::string> exit_flags;  // DecodeSmartExitStatus(exit_status)
  // The disk was asleep and --nocheck=standby left it so; health and counters below are the last
  // values read while it was awake (temperature is dropped: an hours-old reading misleads).
  bool standby = false;
  bool error = false;  // no usable SMART data this time; `error_message` says why
  std::string error_message;
  // A USB bridge smartctl could not identify; edged retried with `-d sat`.
  bool needed_sat = false;
  std::optional<bool> healthy;  // smart_status.passed
  std::optional<double> temperature_celsius;
  std::optional<std::uint64_t> power_on_hours;
  std::optional<std::uint64_t> reallocated_sectors;    // ATA attribute 5, raw
  std::optional<std::uint64_t> pending_sectors;        // ATA attribute 197, raw
  std::optional<std::uint64_t> offline_uncorrectable;  // ATA attribute 198, raw
  std::optional<std::uint64_t> percentage_used;        // NVMe endurance used, 0..255
  std::optional<std::uint64_t> media_errors;           // NVMe media and data integrity errors
  std::optional<std::uint64_t> critical_warning;       // NVMe critical warning bits
  std::optional<std::uint64_t> available_spare;        // NVMe, percent
};

struct MdArray {
  std::string name;   // "md0"
  std::string state;  // "active", "inactive", "resync", "recovering", "check", "reshape"
  std::string level;  // "raid1", "raid5", ... (empty for an inactive array)
  int disks_required = 0;  // the n in [n/m]
  int disks_active = 0;    // the m in [n/m]
  int disks_failed = 0;    // members marked (F)
  int disks_spare = 0;     // members marked (S)
  std::uint64_t blocks = 0;
  std::uint64_t blocks_synced = 0;  // equals blocks when no sync runs
  bool degraded = false;            // an active array with fewer active disks than required
  bool operator==(const MdArray&) const = default;
};

struct ZfsPool {
  std::string name;
  std::string health;  // ONLINE, DEGRADED, FAULTED, OFFLINE, UNAVAIL, REMOVED, SUSPENDED
  std::uint64_t size_bytes = 0;
  std::uint64_t allocated_bytes = 0;
  std::uint64_t free_bytes = 0;
  bool operator==(const ZfsPool&) const = default;
};

// How the last run of one collector ("filesystem", "smart", "mdraid", "zfs") went.
struct CollectorRun {
  double duration_seconds = 0;
  bool success = false;
  std::string error;  // empty on success
};

struct StorageSnapshot {
  std::vector<MountState> mounts;   // sorted by mountpoint
  std::vector<SmartDevice> smart;   // sorted by device
  std::vector<MdArray> md;          // in mdstat order
  std::vector<ZfsPool> zfs;         // in zpool order
  std::map<std::string, CollectorRun> collectors;
  std::uint64_t filesystem_rounds = 0;  // completed mount rounds
  std::uint64_t smart_rounds = 0;
  std::uint64_t raid_rounds = 0;
  int workers_busy = 0;  // pool threads inside a call right now (hung ones included)

  const MountState* FindMount(const std::string& mountpoint) const;
  const SmartDevice* FindSmart(const std::string& device) const;
};

// A Module named "storage". Exports the metrics listed in docs/storage-metrics.md into the registry
// given to NewStorageModule.
class StorageModule : public Module {
 public:
  // The latest results; never null (empty before the first round). Never blocks on storage: it
  // copies a pointer under a lock that no I/O is done under. Thread-safe.
  virtual std::shared_ptr<const StorageSnapshot> Snapshot() const = 0;

  // Blocks until `done(snapshot)` holds or `timeout` passes; returns the last snapshot seen. For tests
  // and start-up checks.
  virtual std::shared_ptr<const StorageSnapshot> WaitFor(
      const std::function<bool(const StorageSnapshot&)>& done, std::chrono::milliseconds timeout) const = 0;
};

// The most worker threads the module ever runs (besides its one scheduling thread).
inline constexpr int kMaxStorageWorkers = 4;

// Validates `config` (regex, durations, SMART device entries) and builds the module; nothing runs until
// Start(). `registry` must outlive the module. Errors are InvalidArgument with the offending field.
StatusOr<std::unique_ptr<StorageModule>> NewStorageModule(const config::StorageConfig& config,
                                                          prometheus::Registry& registry);

}  // namespace edged::storage
