// The storage module: a scheduling thread that starts rounds, a bounded WorkerPool that does every call
// that can hang, and a snapshot + gauges that the rest of the daemon reads without waiting.
//
// Lock order: State::mu, then the pool's own lock (Submit, busy()). No I/O happens under State::mu.
// Tasks hold the State by shared_ptr, so a probe that returns after Stop() (a mount that hung for an
// hour) touches only memory it co-owns, and sees `stopped` before it touches anything else.
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <atomic>
#include <set>

#include <spdlog/fmt/fmt.h>
#include <spdlog/fmt/ranges.h>

#include "base/atomic_file.h"
#include "base/logging.h"
#include "drivers/storage/storage_internal.h"

namespace edged::storage {

const MountState* StorageSnapshot::FindMount(const std::string& mountpoint) const {
  for (const MountState& m : mounts) {
    if (m.mountpoint == mountpoint) return &m;
  }
  return nullptr;
}

const SmartDevice* StorageSnapshot::FindSmart(const std::string& device) const {
  for (const SmartDevice& d : smart) {
    if (d.device == device) return &d;
  }
  return nullptr;
}

namespace detail {

StatusOr<StorageOptions> OptionsFromConfig(const config::StorageConfig& config) {
  StorageOptions o;
  if (config.interval.count() <= 0) return InvalidArgumentError("storage.interval must be at least 1s");
  if (config.probe_timeout.count() <= 0) return InvalidArgumentError("storage.probe_timeout must be at least 1s");
  if (config.smart.interval.count() <= 0) return InvalidArgumentError("storage.smart.interval must be at least 1s");
  if (config.smart.timeout.count() <= 0) return InvalidArgumentError("storage.smart.timeout must be at least 1s");
  if (config.smart.enabled && config.smart.smartctl.empty()) {
    return InvalidArgumentError("storage.smart.smartctl is empty: set the smartctl path or disable storage.smart");
  }
  o.interval = config.interval;
  o.probe_timeout = config.probe_timeout;
  o.mounts.fstypes = config.fstypes;
  o.mounts.discover = config.discover;
  o.mounts.configured = config.mounts;
  for (const config::MountConfig& m : config.mounts) {
    if (m.path.empty() || m.path[0] != '/') {
      return InvalidArgumentError(fmt::format("storage.mounts: path '{}' is not absolute", m.path));
    }
  }
  if (!config.exclude_mountpoints.empty()) {
    try {
      o.mounts.exclude_mountpoints.emplace(config.exclude_mountpoints, std::regex::ECMAScript | std::regex::optimize);
    } catch (const std::regex_error& e) {
      return InvalidArgumentError(fmt::format("storage.exclude_mountpoints: '{}' is not a valid regular expression ({})",
                                              config.exclude_mountpoints, e.what()));
    }
  }
  o.proc_root = config.proc_root;
  o.smart_enabled = config.smart.enabled;
  o.smart_interval = config.smart.interval;
  o.smart_timeout = config.smart.timeout;
  o.smartctl = config.smart.smartctl;
  for (const std::string& spec : config.smart.devices) {
    ASSIGN_OR_RETURN(SmartScanEntry e, ParseSmartDeviceSpec(spec));
    o.smart_devices.push_back(std::move(e));
  }
  o.raid = config.raid;
  o.zpool = config.zpool;
  return o;
}

namespace {

using Clock = std::chrono::steady_clock;
using prometheus::Labels;

// One metric family whose label sets come and go with the mounts and disks.
class GaugeSet {
 public:
  GaugeSet(prometheus::Registry& registry, const std::string& name, const std::string& help)
      : family_(prometheus::BuildGauge().Name(name).Help(help).Register(registry)) {}

  void Set(const Labels& labels, double value) {
    prometheus::Gauge& g = family_.Add(labels);
    g.Set(value);
    next_[labels] = &g;
  }
  // Removes the series not Set() since the last Sweep().
  void Sweep() {
    for (auto& [labels, gauge] : current_) {
      if (!next_.count(labels)) family_.Remove(gauge);
    }
    current_ = std::move(next_);
    next_.clear();
  }

 private:
  prometheus::Family<prometheus::Gauge>& family_;
  std::map<Labels, prometheus::Gauge*> current_;
  std::map<Labels, prometheus::Gauge*> next_;
};

struct Metrics {
  explicit Metrics(prometheus::Registry& r)
      : fs_avail(r, "edged_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes."),
        fs_free(r, "edged_filesystem_free_bytes", "Filesystem free space in bytes."),
        fs_size(r, "edged_filesystem_size_bytes", "Filesystem size in bytes."),
        fs_files(r, "edged_filesystem_files", "Filesystem total file nodes."),
        fs_files_free(r, "edged_filesystem_files_free", "Filesystem total free file nodes."),
        fs_readonly(r, "edged_filesystem_readonly", "Filesystem read-only status (1 = mounted read-only)."),
        fs_device_error(r, "edged_filesystem_device_error",
                        "Whether an error occurred while getting statistics for the given device (1 = error)."),
        mount_stale(r, "edged_mount_stale",
                    "1 while a statfs on the mount has not answered within probe_timeout; it is not probed "
                    "again until that call returns."),
        mount_probe_seconds(r, "edged_mount_probe_seconds",
                            "Duration of the last completed probe of the mount (statfs and write probe)."),
        mount_write_ok(r, "edged_mount_write_probe_success",
                       "Result of the last write/fsync/read/remove probe on the mount (1 = success)."),
        smart_info(r, "edged_smart_device_info", "SMART device identity; always 1."),
        smart_healthy(r, "edged_smart_healthy", "SMART overall health self-assessment (1 = passed, 0 = failing)."),
        smart_temp(r, "edged_smart_temperature_celsius", "Current drive temperature in degrees Celsius."),
        smart_power_on(r, "edged_smart_power_on_seconds", "Power-on time of the drive in seconds."),
        smart_realloc(r, "edged_smart_reallocated_sectors", "ATA attribute 5 (Reallocated_Sector_Ct), raw value."),
        smart_pending(r, "edged_smart_pending_sectors", "ATA attribute 197 (Current_Pending_Sector), raw value."),
        smart_offline(r, "edged_smart_offline_uncorrectable_sectors",
                      "ATA attribute 198 (Offline_Uncorrectable), raw value."),
        smart_pct_used(r, "edged_smart_percentage_used", "NVMe estimate of the endurance used, in percent (may exceed 100)."),
        smart_media_errors(r, "edged_smart_media_errors", "NVMe media and data integrity errors."),
        smart_critical(r, "edged_smart_critical_warning", "NVMe critical warning bits (0 = none)."),
        smart_spare(r, "edged_smart_available_spare", "NVMe available spare, in percent."),
        smart_standby(r, "edged_smart_device_standby",
                      "1 when the disk was asleep and left so (smartctl --nocheck=standby); values are from its "
                      "last read while awake."),
        smart_error(r, "edged_smart_device_error", "1 when smartctl could not read the device in the last round."),
        smart_exit(r, "edged_smart_exit_status", "Exit status of the last smartctl run for the device."),
        smart_flag(r, "edged_smart_exit_flag", "The bits of smartctl's exit status, decoded (1 = set)."),
        md_disks(r, "edged_md_disks", "Number of member disks of an md array by state (active, failed, spare, down)."),
        md_required(r, "edged_md_disks_required", "Number of disks the md array needs."),
        md_degraded(r, "edged_md_degraded", "1 when an active md array runs with fewer disks than it needs."),
        md_state(r, "edged_md_state", "md array state (1 for the current one)."),
        md_blocks(r, "edged_md_blocks", "Size of the md array in 1 KiB blocks."),
        md_synced(r, "edged_md_blocks_synced", "Blocks of the md array in sync (equals edged_md_blocks when no sync runs)."),
        zfs_health(r, "edged_zfs_pool_health", "ZFS pool health (1 for the current state)."),
        zfs_size(r, "edged_zfs_pool_size_bytes", "ZFS pool size in bytes."),
        zfs_alloc(r, "edged_zfs_pool_allocated_bytes", "ZFS pool space allocated in bytes."),
        zfs_free(r, "edged_zfs_pool_free_bytes", "ZFS pool free space in bytes."),
        collector_duration(r, "edged_collector_duration_seconds", "Duration of the last run of a collector."),
        collector_success(r, "edged_collector_success", "Whether the last run of a collector succeeded (1 = yes)."),
        workers(r, "edged_storage_workers", "Worker threads of the storage module (a fixed number)."),
        workers_busy(r, "edged_storage_workers_busy", "Storage worker threads inside a call now, hung ones included.") {}

  std::vector<GaugeSet*> All() {
    return {&fs_avail, &fs_free, &fs_size, &fs_files, &fs_files_free, &fs_readonly, &fs_device_error,
            &mount_stale, &mount_probe_seconds, &mount_write_ok, &smart_info, &smart_healthy, &smart_temp,
            &smart_power_on, &smart_realloc, &smart_pending, &smart_offline, &smart_pct_used,
            &smart_media_errors, &smart_critical, &smart_spare, &smart_standby, &smart_error, &smart_exit,
            &smart_flag, &md_disks, &md_required, &md_degraded, &md_state, &md_blocks, &md_synced,
            &zfs_health, &zfs_size, &zfs_alloc, &zfs_free, &collector_duration, &collector_success,
            &workers, &workers_busy};
  }

  GaugeSet fs_avail, fs_free, fs_size, fs_files, fs_files_free, fs_readonly, fs_device_error;
  GaugeSet mount_stale, mount_probe_seconds, mount_write_ok;
  GaugeSet smart_info, smart_healthy, smart_temp, smart_power_on, smart_realloc, smart_pending, smart_offline;
  GaugeSet smart_pct_used, smart_media_errors, smart_critical, smart_spare, smart_standby, smart_error;
  GaugeSet smart_exit, smart_flag;
  GaugeSet md_disks, md_required, md_degraded, md_state, md_blocks, md_synced;
  GaugeSet zfs_health, zfs_size, zfs_alloc, zfs_free;
  GaugeSet collector_duration, collector_success, workers, workers_busy;
};

struct MountEntry {
  MountTarget target;
  bool in_flight = false;  // a task is queued or running; no second one is queued
  bool running = false;    // a worker is inside the call
  Clock::time_point started;
  MountState state;
  std::string logged_error;  // the last error logged, so a persisting one is logged once
};

struct State {
  std::mutex mu;
  std::condition_variable cv;  // a probe finished, or stop
  bool stopped = false;
  Metrics* metrics = nullptr;  // null once stopped
  WorkerPool* pool = nullptr;
  std::shared_ptr<spdlog::logger> log;

  std::map<std::string, std::shared_ptr<MountEntry>> mounts;
  std::map<std::string, SmartDevice> smart;          // by path
  std::map<std::string, std::string> learned_types;  // path → "sat" for USB bridges that need it
  bool smart_in_flight = false;
  bool raid_in_flight = false;
  bool smartctl_missing_logged = false;
  std::vector<MdArray> md;
  std::vector<ZfsPool> zfs;
  bool zpool_present = false;
  std::map<std::string, CollectorRun> collectors;
  std::uint64_t filesystem_rounds = 0, smart_rounds = 0, raid_rounds = 0;
  std::set<std::string> degraded_logged;

  std::shared_ptr<const StorageSnapshot> snapshot = std::make_shared<StorageSnapshot>();
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

Labels MountLabels(const MountState& m) {
  return {{"device", m.device}, {"mountpoint", m.mountpoint}, {"fstype", m.fstype}};
}

void ExportMetrics(Metrics& mx, const StorageSnapshot& s, int workers) {
  for (const MountState& m : s.mounts) {
    const Labels l = MountLabels(m);
    mx.mount_stale.Set(l, m.stale ? 1 : 0);
    mx.fs_device_error.Set(l, m.device_error ? 1 : 0);
    if (m.probes_completed > 0) mx.mount_probe_seconds.Set(l, m.probe_seconds);
    if (m.write_probe && m.write_probe_ok) mx.mount_write_ok.Set(l, *m.write_probe_ok ? 1 : 0);
    // node_exporter drops the values of a stuck or failing mount; edged keeps the last good ones of a
    // stale mount (the alert on edged_mount_stale says they are old) and drops them on an error.
    if (m.stats && !m.device_error) {
      mx.fs_avail.Set(l, static_cast<double>(m.stats->avail_bytes));
      mx.fs_free.Set(l, static_cast<double>(m.stats->free_bytes));
      mx.fs_size.Set(l, static_cast<double>(m.stats->size_bytes));
      mx.fs_files.Set(l, static_cast<double>(m.stats->files));
      mx.fs_files_free.Set(l, static_cast<double>(m.stats->files_free));
      mx.fs_readonly.Set(l, m.stats->readonly ? 1 : 0);
    }
  }
  for (const SmartDevice& d : s.smart) {
    const Labels l{{"device", d.device}};
    mx.smart_info.Set({{"device", d.device}, {"type", d.type}, {"protocol", d.protocol}, {"model", d.model},
                       {"serial", d.serial}, {"firmware", d.firmware}},
                      1);
    mx.smart_standby.Set(l, d.standby ? 1 : 0);
    mx.smart_error.Set(l, d.error ? 1 : 0);
    mx.smart_exit.Set(l, d.exit_status);
    for (const SmartExitFlag& f : SmartExitFlags()) {
      mx.smart_flag.Set({{"device", d.device}, {"flag", f.name}}, (d.exit_status >> f.bit) & 1);
    }
    auto opt = [&](GaugeSet& g, const auto& v, double scale = 1) {
      if (v) g.Set(l, static_cast<double>(*v) * scale);
    };
    if (d.healthy) mx.smart_healthy.Set(l, *d.healthy ? 1 : 0);
    opt(mx.smart_temp, d.temperature_celsius);
    opt(mx.smart_power_on, d.power_on_hours, 3600);
    opt(mx.smart_realloc, d.reallocated_sectors);
    opt(mx.smart_pending, d.pending_sectors);
    opt(mx.smart_offline, d.offline_uncorrectable);
    opt(mx.smart_pct_used, d.percentage_used);
    opt(mx.smart_media_errors, d.media_errors);
    opt(mx.smart_critical, d.critical_warning);
    opt(mx.smart_spare, d.available_spare);
  }
  static const char* kMdStates[] = {"active", "inactive", "recovering", "resync", "check", "reshape"};
  for (const MdArray& md : s.md) {
    const Labels l{{"device", md.name}};
    mx.md_disks.Set({{"device", md.name}, {"state", "active"}}, md.disks_active);
    mx.md_disks.Set({{"device", md.name}, {"state", "failed"}}, md.disks_failed);
    mx.md_disks.Set({{"device", md.name}, {"state", "spare"}}, md.disks_spare);
    mx.md_disks.Set({{"device", md.name}, {"state", "down"}}, std::max(0, md.disks_required - md.disks_active));
    mx.md_required.Set(l, md.disks_required);
    mx.md_degraded.Set(l, md.degraded ? 1 : 0);
    for (const char* st : kMdStates) mx.md_state.Set({{"device", md.name}, {"state", st}}, md.state == st ? 1 : 0);
    mx.md_blocks.Set(l, static_cast<double>(md.blocks));
    mx.md_synced.Set(l, static_cast<double>(md.blocks_synced));
  }
  static const char* kZfsStates[] = {"ONLINE", "DEGRADED", "FAULTED", "OFFLINE", "UNAVAIL", "REMOVED", "SUSPENDED"};
  for (const ZfsPool& p : s.zfs) {
    const Labels l{{"pool", p.name}};
    bool known = false;
    for (const char* st : kZfsStates) {
      known |= p.health == st;
      mx.zfs_health.Set({{"pool", p.name}, {"state", st}}, p.health == st ? 1 : 0);
    }
    if (!known) mx.zfs_health.Set({{"pool", p.name}, {"state", p.health}}, 1);
    mx.zfs_size.Set(l, static_cast<double>(p.size_bytes));
    mx.zfs_alloc.Set(l, static_cast<double>(p.allocated_bytes));
    mx.zfs_free.Set(l, static_cast<double>(p.free_bytes));
  }
  for (const auto& [name, run] : s.collectors) {
    mx.collector_duration.Set({{"collector", name}}, run.duration_seconds);
    mx.collector_success.Set({{"collector", name}}, run.success ? 1 : 0);
  }
  mx.workers.Set({}, workers);
  mx.workers_busy.Set({}, s.workers_busy);
  for (GaugeSet* g : mx.All()) g->Sweep();
}

// Builds the snapshot from the state and updates the gauges. Called with State::mu held.
void PublishLocked(State& st) {
  auto snap = std::make_shared<StorageSnapshot>();
  for (const auto& [mp, e] : st.mounts) snap->mounts.push_back(e->state);
  for (const auto& [path, d] : st.smart) snap->smart.push_back(d);
  std::sort(snap->smart.begin(), snap->smart.end(),
            [](const SmartDevice& a, const SmartDevice& b) { return a.device < b.device; });
  snap->md = st.md;
  snap->zfs = st.zfs;
  snap->collectors = st.collectors;
  snap->filesystem_rounds = st.filesystem_rounds;
  snap->smart_rounds = st.smart_rounds;
  snap->raid_rounds = st.raid_rounds;
  snap->workers_busy = st.pool != nullptr ? st.pool->busy() : 0;
  if (st.metrics != nullptr) ExportMetrics(*st.metrics, *snap, st.pool != nullptr ? st.pool->threads() : 0);
  st.snapshot = std::move(snap);
  st.cv.notify_all();
}

void ApplyProbe(State& st, MountEntry& e, const ProbeResult& r) {
  MountState& m = e.state;
  if (m.stale) {
    st.log->info("mount {} answers again after {:.1f} s; no longer stale", m.mountpoint, r.seconds);
  }
  m.stale = false;
  m.probe_seconds = r.seconds;
  ++m.probes_completed;
  m.device_error = !r.statvfs_status.ok();
  m.error = m.device_error ? std::string(r.statvfs_status.message()) : std::string();
  if (!m.device_error) m.stats = r.stats;
  if (r.write_status) {
    m.write_probe_ok = r.write_status->ok();
    m.write_probe_error = std::string(r.write_status->message());
  }
  const std::string problem = !m.error.empty() ? m.error : m.write_probe_error;
  if (problem != e.logged_error) {
    if (!problem.empty()) {
      st.log->warn("mount {}: {}", m.mountpoint, problem);
    } else {
      st.log->info("mount {}: healthy again", m.mountpoint);
    }
    e.logged_error = problem;
  }
}

class StorageModuleImpl final : public StorageModule {
 public:
  StorageModuleImpl(StorageOptions options, prometheus::Registry& registry)
      : options_(std::move(options)), metrics_(registry), state_(std::make_shared<State>()) {
    state_->log = Logger("storage");
    state_->metrics = &metrics_;
  }
  ~StorageModuleImpl() override { Stop(); }

  std::string_view name() const override { return "storage"; }

  Status Start() override {
    if (started_) return FailedPreconditionError("storage: Start() called twice");
    started_ = true;
    pool_ = std::make_unique<WorkerPool>(options_.workers);
    {
      std::lock_guard lock(state_->mu);
      state_->pool = pool_.get();
    }
    scheduler_ = std::thread([this] { Run(); });
    state_->log->info("storage: watching mounts every {} ms (timeout {} ms), SMART {}, RAID {}, {} workers",
                      options_.interval.count(), options_.probe_timeout.count(),
                      options_.smart_enabled ? "on" : "off", options_.raid ? "on" : "off", options_.workers);
    return OkStatus();
  }

  void Stop() override {
    {
      std::lock_guard lock(state_->mu);
      if (state_->stopped) return;
      state_->stopped = true;
      state_->metrics = nullptr;
      state_->pool = nullptr;
    }
    state_->cv.notify_all();
    if (scheduler_.joinable()) scheduler_.join();
    // Queued work is dropped; a worker stuck in a dead mount is detached rather than waited for.
    if (pool_) pool_->Shutdown(std::chrono::milliseconds(500));
  }

  Health health() const override {
    std::lock_guard lock(state_->mu);
    std::vector<std::string> problems;
    for (const auto& [mp, e] : state_->mounts) {
      const MountState& m = e->state;
      if (m.stale) problems.push_back(fmt::format("mount {} is stale (statfs does not answer)", mp));
      else if (m.device_error) problems.push_back(fmt::format("mount {}: {}", mp, m.error));
      else if (m.write_probe_ok == false) problems.push_back(fmt::format("mount {}: {}", mp, m.write_probe_error));
    }
    for (const auto& [path, d] : state_->smart) {
      if (d.healthy == false) problems.push_back(fmt::format("disk {} fails its SMART health check", path));
      else if (d.error) problems.push_back(fmt::format("disk {}: {}", path, d.error_message));
    }
    for (const MdArray& md : state_->md) {
      if (md.degraded) problems.push_back(fmt::format("md array {} is degraded", md.name));
    }
    for (const ZfsPool& p : state_->zfs) {
      if (p.health != "ONLINE") problems.push_back(fmt::format("ZFS pool {} is {}", p.name, p.health));
    }
    if (problems.empty()) return Health::Ok();
    return Health::Warning(fmt::format("{}", fmt::join(problems, "; ")));
  }

  std::shared_ptr<const StorageSnapshot> Snapshot() const override {
    std::lock_guard lock(state_->mu);
    return state_->snapshot;
  }

  std::shared_ptr<const StorageSnapshot> WaitFor(const std::function<bool(const StorageSnapshot&)>& done,
                                                 std::chrono::milliseconds timeout) const override {
    std::unique_lock lock(state_->mu);
    state_->cv.wait_for(lock, timeout, [&] { return done(*state_->snapshot); });
    return state_->snapshot;
  }

 private:
  void Run() {
    auto next_mounts = Clock::now();
    auto next_smart = Clock::now();
    auto next_raid = Clock::now();
    std::unique_lock lock(state_->mu);
    while (!state_->stopped) {
      const auto now = Clock::now();
      if (now >= next_mounts) {
        lock.unlock();
        MountRound();
        lock.lock();
        next_mounts = Clock::now() + options_.interval;
        continue;  // re-check `stopped` before anything else
      }
      if (options_.smart_enabled && now >= next_smart) {
        if (!state_->smart_in_flight) {
          state_->smart_in_flight = true;
          pool_->Submit([st = state_, opts = options_] { SmartRound(st, opts); });
        }
        next_smart = now + options_.smart_interval;
      }
      if (options_.raid && now >= next_raid) {
        if (!state_->raid_in_flight) {
          state_->raid_in_flight = true;
          pool_->Submit([st = state_, opts = options_] { RaidRound(st, opts); });
        }
        next_raid = now + options_.interval;
      }
      auto wake = next_mounts;
      if (options_.smart_enabled) wake = std::min(wake, next_smart);
      if (options_.raid) wake = std::min(wake, next_raid);
      state_->cv.wait_until(lock, wake, [&] { return state_->stopped; });
    }
  }

  void MountRound() {
    const auto start = Clock::now();
    CollectorRun run;
    std::vector<MountTarget> table;
    auto text = ReadFileToString(options_.proc_root + "/self/mountinfo");
    bool mountinfo = true;
    if (!text.ok()) {
      text = ReadFileToString(options_.proc_root + "/mounts");
      mountinfo = false;
    }
    if (text.ok()) {
      table = ParseMountTable(*text, mountinfo);
      run.success = true;
    } else {
      run.error = fmt::format("cannot read the mount table under {}: {}", options_.proc_root,
                              text.status().ToString());
    }
    const std::vector<MountTarget> targets = SelectMounts(table, options_.mounts);

    std::unique_lock lock(state_->mu);
    if (state_->stopped) return;
    std::map<std::string, std::shared_ptr<MountEntry>> next;
    for (const MountTarget& t : targets) {
      auto it = state_->mounts.find(t.mountpoint);
      std::shared_ptr<MountEntry> e;
      if (it != state_->mounts.end() && (it->second->target == t || it->second->in_flight)) {
        // The same mount, or one remounted while its probe still hangs: keep the hung entry, so the
        // mountpoint never has two calls outstanding; the new labels take over once it answers.
        e = it->second;
      } else {
        e = std::make_shared<MountEntry>();
        e->target = t;
        e->state.device = t.device;
        e->state.mountpoint = t.mountpoint;
        e->state.fstype = t.fstype;
        e->state.write_probe = t.write_probe;
      }
      next[t.mountpoint] = e;
    }
    state_->mounts = std::move(next);

    std::vector<std::shared_ptr<MountEntry>> submitted;
    for (auto& [mp, e] : state_->mounts) {
      if (e->in_flight) continue;
      e->in_flight = true;
      e->running = false;
      submitted.push_back(e);
      pool_->Submit([st = state_, e] {
        {
          std::lock_guard l(st->mu);
          if (st->stopped) {
            e->in_flight = false;
            return;
          }
          e->running = true;
          e->started = Clock::now();
        }
        const ProbeResult r = ProbeMount(e->target.mountpoint, e->target.write_probe);
        std::lock_guard l(st->mu);
        e->in_flight = false;
        e->running = false;
        if (st->stopped) return;
        ApplyProbe(*st, *e, r);
        PublishLocked(*st);
      });
    }
    const auto deadline = Clock::now() + options_.probe_timeout;
    state_->cv.wait_until(lock, deadline, [&] {
      return state_->stopped ||
             std::none_of(submitted.begin(), submitted.end(), [](const auto& e) { return e->in_flight; });
    });
    if (state_->stopped) return;
    const auto now = Clock::now();
    for (auto& [mp, e] : state_->mounts) {
      // Only a call that is really inside the filesystem counts; one still queued behind hung ones
      // has not had its chance yet.
      if (e->in_flight && e->running && now - e->started >= options_.probe_timeout) {
        if (!e->state.stale) {
          state_->log->warn("mount {} ({} on {}) did not answer statfs within {} ms; marked stale and not "
                            "probed again until it answers (dead NFS/SMB server?)",
                            mp, e->target.device, e->target.fstype, options_.probe_timeout.count());
        }
        e->state.stale = true;
      }
    }
    run.duration_seconds = Seconds(Clock::now() - start);
    state_->collectors["filesystem"] = run;
    ++state_->filesystem_rounds;
    PublishLocked(*state_);
  }

  static SmartDevice ReadSmartDevice(const StorageOptions& o, const SmartScanEntry& dev, const std::string& type,
                                     Status* run_status) {
    std::vector<std::string> argv = {o.smartctl, "-a", "--json", "--nocheck=standby"};
    if (!type.empty()) {
      argv.push_back("-d");
      argv.push_back(type);
    }
    argv.push_back(dev.path);
    SmartDevice d;
    auto res = RunCommand(argv, o.smart_timeout);
    if (!res.ok()) {
      *run_status = res.status();
      d.error = true;
      d.error_message = std::string(res.status().message());
    } else {
      auto parsed = ParseSmartDevice(res->out, res->exit_code);
      if (parsed.ok()) {
        d = std::move(parsed).value();
      } else {
        d.error = true;
        d.exit_status = res->exit_code;
        d.exit_flags = DecodeSmartExitStatus(res->exit_code);
        d.error_message = fmt::format("{} (device {})", parsed.status().message(), dev.path);
      }
    }
    d.path = dev.path;
    d.device = SmartDeviceLabel(dev.path);
    if (d.type.empty()) d.type = type;
    return d;
  }

  static void SmartRound(std::shared_ptr<State> st, StorageOptions o) {
    const auto start = Clock::now();
    CollectorRun run{0, true, ""};
    std::vector<SmartScanEntry> devices = o.smart_devices;
    if (devices.empty()) {
      auto res = RunCommand({o.smartctl, "--scan-open", "--json"}, o.smart_timeout);
      StatusOr<std::vector<SmartScanEntry>> scan =
          res.ok() ? ParseSmartScan(res->out) : StatusOr<std::vector<SmartScanEntry>>(res.status());
      if (scan.ok()) {
        devices = std::move(scan).value();
        // smartctl finds a plain device's type again on its own (and only then recognises a USB
        // bridge); only controller-addressed ones ("megaraid,0", "cciss,1") need -d repeated.
        for (SmartScanEntry& e : devices) {
          if (e.type.find(',') == std::string::npos) e.type.clear();
        }
      } else {
        run.success = false;
        run.error = scan.status().ToString();
      }
    }
    std::map<std::string, std::string> learned;
    {
      std::lock_guard l(st->mu);
      learned = st->learned_types;
    }
    std::map<std::string, SmartDevice> results;
    for (const SmartScanEntry& dev : devices) {
      std::string type = dev.type;
      bool needed_sat = false;
      if (auto it = learned.find(dev.path); it != learned.end()) {
        type = it->second;
        needed_sat = true;
      }
      const bool bridge_error = dev.open_error.find("USB bridge") != std::string::npos ||
                                dev.open_error.find("-d option") != std::string::npos;
      if (bridge_error && type != "sat") {
        type = "sat";
        needed_sat = true;
      }
      Status run_status;
      SmartDevice d = ReadSmartDevice(o, dev, type, &run_status);
      if (SmartNeedsDeviceType(d) && type != "sat") {
        // Most USB-SATA bridges pass ATA commands through SAT even when smartctl does not know them.
        SmartDevice retry = ReadSmartDevice(o, dev, "sat", &run_status);
        if (!retry.error || retry.standby) {
          d = std::move(retry);
          needed_sat = true;
        }
      }
      if (needed_sat) {
        d.needed_sat = true;
        learned[dev.path] = "sat";
      }
      if (run_status.code() == StatusCode::kNotFound) {
        run.success = false;
        run.error = run_status.ToString();
        break;  // no smartctl: no point asking for the other disks
      }
      results[dev.path] = std::move(d);
    }

    std::lock_guard l(st->mu);
    st->smart_in_flight = false;
    if (st->stopped) return;
    if (!run.success) {
      if (!st->smartctl_missing_logged) st->log->warn("SMART: {}", run.error);
      st->smartctl_missing_logged = true;
    } else {
      st->smartctl_missing_logged = false;
    }
    for (auto& [path, d] : results) {
      auto prev = st->smart.find(path);
      if (d.standby && prev != st->smart.end()) {
        // Keep what the disk said while awake; its temperature from then would mislead.
        const SmartDevice& p = prev->second;
        d.model = d.model.empty() ? p.model : d.model;
        d.serial = d.serial.empty() ? p.serial : d.serial;
        d.firmware = d.firmware.empty() ? p.firmware : d.firmware;
        d.protocol = d.protocol.empty() ? p.protocol : d.protocol;
        d.healthy = d.healthy ? d.healthy : p.healthy;
        d.power_on_hours = d.power_on_hours ? d.power_on_hours : p.power_on_hours;
        d.reallocated_sectors = p.reallocated_sectors;
        d.pending_sectors = p.pending_sectors;
        d.offline_uncorrectable = p.offline_uncorrectable;
        d.percentage_used = p.percentage_used;
        d.media_errors = p.media_errors;
        d.critical_warning = p.critical_warning;
        d.available_spare = p.available_spare;
      }
      const bool was_error = prev != st->smart.end() && prev->second.error;
      const bool was_failing = prev != st->smart.end() && prev->second.healthy == false;
      if (d.error && (!was_error || prev->second.error_message != d.error_message)) {
        st->log->warn("SMART {}: {}", path, d.error_message);
      }
      if (d.healthy == false && !was_failing) {
        st->log->error("SMART {}: the disk FAILS its health self-assessment ({}); back up its data and replace it",
                       path, fmt::join(d.exit_flags, ", "));
      }
    }
    st->smart = std::move(results);
    st->learned_types = std::move(learned);
    run.duration_seconds = Seconds(Clock::now() - start);
    st->collectors["smart"] = run;
    ++st->smart_rounds;
    PublishLocked(*st);
  }

  static void RaidRound(std::shared_ptr<State> st, StorageOptions o) {
    auto start = Clock::now();
    CollectorRun md_run{0, true, ""};
    std::vector<MdArray> md;
    auto text = ReadFileToString(o.proc_root + "/mdstat");
    if (text.ok()) {
      md = ParseMdstat(*text);
    } else if (text.status().code() != StatusCode::kNotFound) {  // no md driver loaded: nothing to watch
      md_run.success = false;
      md_run.error = text.status().ToString();
    }
    md_run.duration_seconds = Seconds(Clock::now() - start);

    start = Clock::now();
    CollectorRun zfs_run{0, true, ""};
    std::vector<ZfsPool> zfs;
    bool zpool_present = true;
    auto res = RunCommand({o.zpool, "list", "-Hp", "-o", "name,health,size,alloc,free"}, o.probe_timeout);
    if (!res.ok() && res.status().code() == StatusCode::kNotFound) {
      zpool_present = false;
    } else if (!res.ok()) {
      zfs_run.success = false;
      zfs_run.error = res.status().ToString();
    } else if (res->exit_code != 0) {
      zfs_run.success = false;
      zfs_run.error = fmt::format("{} list exited with {}: {}", o.zpool, res->exit_code, res->err);
    } else {
      zfs = ParseZpoolList(res->out);
    }
    zfs_run.duration_seconds = Seconds(Clock::now() - start);

    std::lock_guard l(st->mu);
    st->raid_in_flight = false;
    if (st->stopped) return;
    for (const MdArray& a : md) {
      if (a.degraded && st->degraded_logged.insert(a.name).second) {
        st->log->error("md array {} is degraded: {} of {} disks active, {} failed", a.name, a.disks_active,
                       a.disks_required, a.disks_failed);
      } else if (!a.degraded) {
        st->degraded_logged.erase(a.name);
      }
    }
    st->md = std::move(md);
    st->collectors["mdraid"] = md_run;
    st->zpool_present = zpool_present;
    st->zfs = std::move(zfs);
    if (zpool_present) {
      st->collectors["zfs"] = zfs_run;
    } else {
      st->collectors.erase("zfs");
    }
    ++st->raid_rounds;
    PublishLocked(*st);
  }

  const StorageOptions options_;
  Metrics metrics_;
  std::shared_ptr<State> state_;
  std::unique_ptr<WorkerPool> pool_;
  std::thread scheduler_;
  bool started_ = false;
};

}  // namespace

StatusOr<std::unique_ptr<StorageModule>> NewStorageModuleWithOptions(StorageOptions options,
                                                                     prometheus::Registry& registry) {
  if (options.workers < 1 || options.workers > kMaxStorageWorkers) {
    return InvalidArgumentError(fmt::format("storage: workers must be 1..{}", kMaxStorageWorkers));
  }
  if (options.interval.count() <= 0 || options.probe_timeout.count() <= 0) {
    return InvalidArgumentError("storage: interval and probe_timeout must be positive");
  }
  try {
    return std::unique_ptr<StorageModule>(std::make_unique<StorageModuleImpl>(std::move(options), registry));
  } catch (const std::exception& e) {
    // prometheus-cpp throws when a family of the same name exists with another type.
    return InternalError(fmt::format("storage: cannot register metrics: {}", e.what()));
  }
}

}  // namespace detail

StatusOr<std::unique_ptr<StorageModule>> NewStorageModule(const config::StorageConfig& config,
                                                          prometheus::Registry& registry) {
  ASSIGN_OR_RETURN(detail::StorageOptions options, detail::OptionsFromConfig(config));
  return detail::NewStorageModuleWithOptions(std::move(options), registry);
}

}  // namespace edged::storage
