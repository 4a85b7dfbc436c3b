// The storage module on real filesystems: ext4, xfs and btrfs images on loop devices (one remounted
// read-only, one filled up), and hangfs, a FUSE filesystem whose statfs hangs like a hard-mounted NFS
// share whose server died. Needs root, /dev/loop-control, mkfs.{ext4,xfs,btrfs} and /dev/fuse; each
// test skips with the reason when something is missing.
//
// The process first moves into a private mount namespace: its mounts are invisible to every other
// process on the machine (a hung FUSE mount would otherwise hang their `df`), and the kernel drops them
// when the process ends, even if it crashes. The RAII guards below unmount them earlier still.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <prometheus/exposer.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/atomic_file.h"
#include "drivers/storage/storage.h"
#include "drivers/storage/storage_internal.h"
#include "tests/storage/storage_test_util.h"

extern char** environ;

namespace edged::storage {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using testing::Metric;
using testing::MetricsText;
using testing::StartModule;
using testing::TempDir;

// Set once in main() before any test runs: why this process could not get its own mount namespace.
std::string& NamespaceError() {
  static std::string error;
  return error;
}

// Empty when loop-mounted filesystems can be made here; otherwise why not.
std::string LoopPrerequisiteMissing() {
  if (::geteuid() != 0) return "needs root (loop devices and mount)";
  if (!NamespaceError().empty()) return NamespaceError();
  if (!fs::exists("/dev/loop-control")) return "needs /dev/loop-control (loop devices)";
  for (const char* tool : {"mkfs.ext4", "mkfs.xfs", "mkfs.btrfs", "mount"}) {
    auto r = detail::RunCommand({"sh", "-c", std::string("command -v ") + tool}, 5s);
    if (!r.ok() || r->exit_code != 0) return std::string("needs ") + tool;
  }
  return "";
}

std::string FusePrerequisiteMissing() {
  if (std::string loop = LoopPrerequisiteMissing(); !loop.empty()) return loop;
#ifndef EDGED_HANGFS
  return "hangfs was not built (libfuse3-dev missing at configure time)";
#else
  if (!fs::exists("/dev/fuse")) return "needs /dev/fuse";
  return "";
#endif
}

#define SKIP_UNLESS(missing)                          \
  do {                                                \
    const std::string why = (missing);                \
    if (!why.empty()) GTEST_SKIP() << why;            \
  } while (false)

void RunOk(const std::vector<std::string>& argv) {
  auto r = detail::RunCommand(argv, 60s);
  ASSERT_TRUE(r.ok()) << argv[0] << ": " << r.status().ToString();
  ASSERT_EQ(r->exit_code, 0) << argv[0] << " failed:\n" << r->out << r->err;
}

// An image file with a fresh filesystem, loop-mounted at <dir>/<name>; unmounted when destroyed (the
// loop device goes with it: mount -o loop sets autoclear).
class LoopFs {
 public:
  LoopFs(const fs::path& dir, const std::string& name, const std::string& fstype, std::uintmax_t megabytes)
      : image_(dir / (name + ".img")), mountpoint_(dir / name) {
    {
      std::ofstream(image_.string()).flush();
    }
    fs::resize_file(image_, megabytes << 20);
    fs::create_directories(mountpoint_);
    const std::string force = fstype == "ext4" ? "-F" : "-f";
    RunOk({"mkfs." + fstype, "-q", force, image_.string()});
    RunOk({"mount", "-o", "loop", image_.string(), mountpoint_.string()});
    mounted_ = !::testing::Test::HasFatalFailure();
  }
  ~LoopFs() {
    if (mounted_) ::umount2(mountpoint_.c_str(), MNT_DETACH);
  }
  LoopFs(const LoopFs&) = delete;
  LoopFs& operator=(const LoopFs&) = delete;
  std::string mountpoint() const { return mountpoint_.string(); }

 private:
  fs::path image_;
  fs::path mountpoint_;
  bool mounted_ = false;
};

// hangfs mounted at <dir>/<name>: Hang() makes statfs block, Release() lets it answer. The destructor
// releases, stops the daemon (which unmounts) and detaches whatever is left.
class HangFs {
 public:
  HangFs(const fs::path& dir, const std::string& name) : mountpoint_(dir / name) {
#ifdef EDGED_HANGFS
    fs::create_directories(mountpoint_);
    std::vector<std::string> args = {EDGED_HANGFS, "-f", "-o", "fsname=hangfs,subtype=hangfs", mountpoint_.string()};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, args[0].c_str(), nullptr, nullptr, argv.data(), environ) != 0) pid_ = -1;
    const auto deadline = Clock::now() + 10s;
    while (pid_ > 0 && Clock::now() < deadline) {
      auto info = ReadFileToString("/proc/self/mountinfo");
      if (info.ok() && info->find(" " + mountpoint_.string() + " ") != std::string::npos) {
        mounted_ = true;
        break;
      }
      std::this_thread::sleep_for(20ms);
    }
#endif
  }
  ~HangFs() {
    if (pid_ > 0) {
      Release();
      // Unmounting first ends the daemon's session at once; SIGTERM alone waits for its idle threads.
      ::umount2(mountpoint_.c_str(), MNT_DETACH);
      ::kill(pid_, SIGTERM);
      int status = 0;
      const auto deadline = Clock::now() + 5s;
      while (::waitpid(pid_, &status, WNOHANG) == 0) {
        if (Clock::now() > deadline) {
          ::kill(pid_, SIGKILL);
          ::waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(10ms);
      }
    }
    ::umount2(mountpoint_.c_str(), MNT_DETACH);
  }
  HangFs(const HangFs&) = delete;
  HangFs& operator=(const HangFs&) = delete;

  bool mounted() const { return mounted_; }
  std::string mountpoint() const { return mountpoint_.string(); }
  void Hang() { ::kill(pid_, SIGUSR1); }
  void Release() { ::kill(pid_, SIGUSR2); }

 private:
  fs::path mountpoint_;
  pid_t pid_ = -1;
  bool mounted_ = false;
};

detail::StorageOptions MountOptions(std::vector<std::string> fstypes) {
  detail::StorageOptions o;
  o.interval = 100ms;
  o.probe_timeout = 300ms;
  o.mounts.fstypes = std::move(fstypes);
  o.mounts.exclude_mountpoints.emplace("^/(dev|proc|run|sys)($|/)");
  o.smart_enabled = false;
  o.raid = false;
  return o;
}

// Waits until `mountpoint` has a completed probe for which `pred` holds.
std::shared_ptr<const StorageSnapshot> WaitForMount(StorageModule& module, const std::string& mountpoint,
                                                    const std::function<bool(const MountState&)>& pred,
                                                    std::chrono::milliseconds timeout = 10s) {
  return module.WaitFor(
      [&](const StorageSnapshot& s) {
        const MountState* m = s.FindMount(mountpoint);
        return m != nullptr && m->probes_completed > 0 && pred(*m);
      },
      timeout);
}

struct statvfs StatOf(const std::string& path) {
  struct statvfs st {};
  EXPECT_EQ(::statvfs(path.c_str(), &st), 0) << path;
  return st;
}

// GET /metrics from the exposer over a real socket; returns the body, or "" on failure.
std::string HttpGetMetrics(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[65536];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  const auto body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

int ThreadCount() {
  int n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/task")) ++n;
  return n;
}

TEST(StorageLoop, Ext4XfsAndBtrfsAreReportedAsStatvfsSeesThem) {
  SKIP_UNLESS(LoopPrerequisiteMissing());
  TempDir tmp;
  LoopFs ext4(tmp.path(), "ext4", "ext4", 32);
  LoopFs xfs(tmp.path(), "xfs", "xfs", 300);  // mkfs.xfs wants 300 MB; the image is sparse
  LoopFs btrfs(tmp.path(), "btrfs", "btrfs", 128);
  ASSERT_FALSE(HasFatalFailure());
  prometheus::Registry registry;
  auto module = StartModule(MountOptions({"ext4", "xfs", "btrfs"}), registry);
  ASSERT_NE(module, nullptr);
  for (const auto& [mp, type] : {std::pair{ext4.mountpoint(), "ext4"}, std::pair{xfs.mountpoint(), "xfs"},
                                 std::pair{btrfs.mountpoint(), "btrfs"}}) {
    auto snap = WaitForMount(*module, mp, [](const MountState&) { return true; });
    const MountState* m = snap->FindMount(mp);
    ASSERT_NE(m, nullptr) << mp;
    EXPECT_EQ(m->fstype, type);
    EXPECT_EQ(m->device.rfind("/dev/loop", 0), 0u) << m->device;
    EXPECT_FALSE(m->stale);
    EXPECT_FALSE(m->device_error) << m->error;
    ASSERT_TRUE(m->stats);
    const struct statvfs st = StatOf(mp);
    EXPECT_EQ(m->stats->size_bytes, static_cast<std::uint64_t>(st.f_blocks) * st.f_frsize) << type;
    EXPECT_GT(m->stats->size_bytes, 0u);
    EXPECT_LE(m->stats->avail_bytes, m->stats->free_bytes);
    EXPECT_LE(m->stats->free_bytes, m->stats->size_bytes);
    EXPECT_GT(m->stats->avail_bytes, 0u);
    EXPECT_FALSE(m->stats->readonly);
    if (std::string(type) != "btrfs") {
      EXPECT_GT(m->stats->files, 0u) << type;  // btrfs reports no inode limit
    }
    EXPECT_GT(m->probe_seconds, 0);
    EXPECT_LT(m->probe_seconds, 1.0);
  }
  const std::string text = MetricsText(registry);
  const MountState* m = module->Snapshot()->FindMount(xfs.mountpoint());
  ASSERT_NE(m, nullptr);
  const std::string labels = "{device=\"" + m->device + "\",fstype=\"xfs\",mountpoint=\"" + xfs.mountpoint() + "\"}";
  EXPECT_EQ(Metric(text, "edged_filesystem_size_bytes" + labels), static_cast<double>(m->stats->size_bytes)) << text;
  EXPECT_EQ(Metric(text, "edged_filesystem_readonly" + labels), 0);
  EXPECT_EQ(Metric(text, "edged_filesystem_device_error" + labels), 0);
  EXPECT_EQ(Metric(text, "edged_mount_stale" + labels), 0);
  EXPECT_GT(Metric(text, "edged_filesystem_files_free" + labels), 0);
  EXPECT_GT(Metric(text, "edged_mount_probe_seconds" + labels), 0);
}

TEST(StorageLoop, ReadOnlyRemountIsReportedAndTheWriteProbeFails) {
  SKIP_UNLESS(LoopPrerequisiteMissing());
  TempDir tmp;
  LoopFs ext4(tmp.path(), "data", "ext4", 32);
  ASSERT_FALSE(HasFatalFailure());
  auto o = MountOptions({"none"});  // only the configured mount
  o.mounts.configured = {{ext4.mountpoint(), true}};
  prometheus::Registry registry;
  auto module = StartModule(o, registry);
  ASSERT_NE(module, nullptr);
  auto snap = WaitForMount(*module, ext4.mountpoint(), [](const MountState& m) { return m.write_probe_ok.has_value(); });
  const MountState* m = snap->FindMount(ext4.mountpoint());
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->write_probe_ok, true) << m->write_probe_error;
  EXPECT_EQ(m->fstype, "ext4");
  EXPECT_TRUE(module->health().ok()) << module->health().message;
  // The probe cleans up after itself.
  for (const auto& e : fs::directory_iterator(ext4.mountpoint())) {
    EXPECT_EQ(e.path().filename().string().find(".edged-probe"), std::string::npos) << e.path();
  }

  RunOk({"mount", "-o", "remount,ro", ext4.mountpoint()});
  snap = WaitForMount(*module, ext4.mountpoint(), [](const MountState& m) { return m.stats && m.stats->readonly; });
  m = snap->FindMount(ext4.mountpoint());
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->stats && m->stats->readonly);
  EXPECT_FALSE(m->device_error) << "a read-only filesystem still answers statfs";
  EXPECT_EQ(m->write_probe_ok, false);
  EXPECT_NE(m->write_probe_error.find("Read-only file system"), std::string::npos) << m->write_probe_error;
  const std::string text = MetricsText(registry);
  const std::string labels = "{device=\"" + m->device + "\",fstype=\"ext4\",mountpoint=\"" + ext4.mountpoint() + "\"}";
  EXPECT_EQ(Metric(text, "edged_filesystem_readonly" + labels), 1) << text;
  EXPECT_EQ(Metric(text, "edged_mount_write_probe_success" + labels), 0);
  EXPECT_EQ(module->health().state, HealthState::kWarning);
}

TEST(StorageLoop, FullFilesystemHasNothingAvailable) {
  SKIP_UNLESS(LoopPrerequisiteMissing());
  TempDir tmp;
  LoopFs ext4(tmp.path(), "full", "ext4", 16);
  ASSERT_FALSE(HasFatalFailure());
  {
    // Fill it as root (into the reserved blocks too): big writes first, then small ones until ENOSPC.
    std::FILE* f = std::fopen((ext4.mountpoint() + "/filler").c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::vector<char> block(1 << 20, 'x');
    for (std::size_t chunk : {std::size_t{1} << 20, std::size_t{4096}, std::size_t{512}}) {
      while (std::fwrite(block.data(), 1, chunk, f) == chunk && std::fflush(f) == 0) {
      }
      std::clearerr(f);
    }
    std::fclose(f);
    ::sync();
  }
  auto o = MountOptions({"ext4"});
  o.mounts.configured = {{ext4.mountpoint(), true}};
  prometheus::Registry registry;
  auto module = StartModule(o, registry);
  ASSERT_NE(module, nullptr);
  auto snap = WaitForMount(*module, ext4.mountpoint(), [](const MountState& m) { return m.write_probe_ok.has_value(); });
  const MountState* m = snap->FindMount(ext4.mountpoint());
  ASSERT_NE(m, nullptr);
  ASSERT_TRUE(m->stats);
  EXPECT_EQ(m->stats->avail_bytes, 0u);
  EXPECT_GT(m->stats->size_bytes, 0u);
  EXPECT_FALSE(m->device_error);
  EXPECT_EQ(m->write_probe_ok, false);
  EXPECT_NE(m->write_probe_error.find("No space left on device"), std::string::npos) << m->write_probe_error;
  const std::string text = MetricsText(registry);
  const std::string labels = "{device=\"" + m->device + "\",fstype=\"ext4\",mountpoint=\"" + ext4.mountpoint() + "\"}";
  EXPECT_EQ(Metric(text, "edged_filesystem_avail_bytes" + labels), 0) << text;
}

TEST(StorageHang, DeadFuseServerIsStaleWhileMetricsKeepAnsweringAndThreadsStayBounded) {
  SKIP_UNLESS(FusePrerequisiteMissing());
  TempDir tmp;
  LoopFs ext4(tmp.path(), "healthy", "ext4", 16);
  HangFs nfs(tmp.path(), "nfs");
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(nfs.mounted()) << "hangfs did not mount";
  prometheus::Registry registry;
  auto registry_ptr = std::shared_ptr<prometheus::Registry>(&registry, [](prometheus::Registry*) {});
  prometheus::Exposer exposer("127.0.0.1:0", 2);
  exposer.RegisterCollectable(registry_ptr);
  const int port = exposer.GetListeningPorts().at(0);

  auto module = StartModule(MountOptions({"ext4", "fuse.hangfs"}), registry);
  ASSERT_NE(module, nullptr);
  auto snap = WaitForMount(*module, nfs.mountpoint(), [](const MountState& m) { return !m.stale; });
  const MountState* hm = snap->FindMount(nfs.mountpoint());
  ASSERT_NE(hm, nullptr);
  ASSERT_TRUE(hm->stats);
  EXPECT_EQ(hm->fstype, "fuse.hangfs");
  EXPECT_EQ(hm->stats->size_bytes, 1000u * 4096);
  EXPECT_EQ(hm->stats->avail_bytes, 500u * 4096);
  EXPECT_EQ(hm->stats->files_free, 40u);
  ASSERT_FALSE(HttpGetMetrics(port).empty());
  const int threads_before = ThreadCount();

  nfs.Hang();
  // While it hangs: every snapshot and every scrape answers fast, and the mount turns stale.
  const auto hang_start = Clock::now();
  bool saw_stale = false;
  std::uint64_t healthy_probes_at_stale = 0;
  double slowest_scrape = 0, slowest_snapshot = 0;
  int samples = 0, slow_samples = 0;  // over 100 ms
  while (Clock::now() - hang_start < 2500ms) {
    auto t0 = Clock::now();
    auto s = module->Snapshot();
    const double snapshot_took = std::chrono::duration<double>(Clock::now() - t0).count();
    slowest_snapshot = std::max(slowest_snapshot, snapshot_took);
    t0 = Clock::now();
    const std::string text = HttpGetMetrics(port);
    const double scrape = std::chrono::duration<double>(Clock::now() - t0).count();
    slowest_scrape = std::max(slowest_scrape, scrape);
    ++samples;
    if (scrape >= 0.1) ++slow_samples;
    ASSERT_NE(text.find("edged_mount_stale"), std::string::npos);
    const MountState* m = s->FindMount(nfs.mountpoint());
    ASSERT_NE(m, nullptr);
    if (m->stale && !saw_stale) {
      saw_stale = true;
      healthy_probes_at_stale = s->FindMount(ext4.mountpoint())->probes_completed;
      const std::string series = "edged_mount_stale{device=\"hangfs\",fstype=\"fuse.hangfs\",mountpoint=\"" +
                                 nfs.mountpoint() + "\"}";
      EXPECT_EQ(Metric(HttpGetMetrics(port), series), 1);
    }
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(saw_stale) << "the hung mount was never reported stale";
  // Blocking on the hung mount would take seconds. On a shared 2-core CI machine one sample may lose
  // the CPU for a moment, so one slow sample of ~40 is tolerated, none over a second.
  EXPECT_LT(slowest_snapshot, 0.1);
  EXPECT_LE(slow_samples, 1) << "of " << samples << "; slowest scrape " << slowest_scrape << " s";
  EXPECT_LT(slowest_scrape, 1.0);
  std::printf("hung mount: %d scrapes, slowest %.1f ms; slowest snapshot %.2f ms\n", samples,
              slowest_scrape * 1000, slowest_snapshot * 1000);
  // A round publishes after its healthy probes have returned; then only the hung call holds a worker.
  auto s = module->WaitFor([](const StorageSnapshot& st) { return st.workers_busy == 1; }, 2s);
  // ~20 rounds ran while it hung: no thread was added for them, and the healthy mount kept being probed.
  EXPECT_LE(ThreadCount(), threads_before);
  EXPECT_GT(s->FindMount(ext4.mountpoint())->probes_completed, healthy_probes_at_stale + 5);
  EXPECT_EQ(s->workers_busy, 1) << "exactly one worker is stuck in the hung statfs";
  EXPECT_TRUE(s->FindMount(nfs.mountpoint())->stale);
  const Health h = module->health();
  EXPECT_EQ(h.state, HealthState::kWarning);
  EXPECT_NE(h.message.find("is stale"), std::string::npos) << h.message;

  nfs.Release();
  snap = module->WaitFor(
      [&](const StorageSnapshot& st) {
        const MountState* m = st.FindMount(nfs.mountpoint());
        return m != nullptr && !m->stale;
      },
      5s);
  hm = snap->FindMount(nfs.mountpoint());
  ASSERT_NE(hm, nullptr);
  EXPECT_FALSE(hm->stale) << "still stale after the server came back";
  EXPECT_FALSE(hm->device_error);
  EXPECT_GT(hm->probe_seconds, 0.3) << "the late answer reports how long the call hung";
  const std::string series = "edged_mount_stale{device=\"hangfs\",fstype=\"fuse.hangfs\",mountpoint=\"" +
                             nfs.mountpoint() + "\"}";
  EXPECT_EQ(Metric(HttpGetMetrics(port), series), 0);
  EXPECT_TRUE(module->health().ok()) << module->health().message;
  module->Stop();
}

TEST(StorageHang, StopReturnsWhileAProbeStillHangs) {
  SKIP_UNLESS(FusePrerequisiteMissing());
  TempDir tmp;
  HangFs nfs(tmp.path(), "nfs");
  ASSERT_TRUE(nfs.mounted()) << "hangfs did not mount";
  prometheus::Registry registry;
  auto module = StartModule(MountOptions({"fuse.hangfs"}), registry);
  ASSERT_NE(module, nullptr);
  WaitForMount(*module, nfs.mountpoint(), [](const MountState&) { return true; });
  nfs.Hang();
  auto snap = module->WaitFor(
      [&](const StorageSnapshot& s) {
        const MountState* m = s.FindMount(nfs.mountpoint());
        return m != nullptr && m->stale;
      },
      5s);
  ASSERT_TRUE(snap->FindMount(nfs.mountpoint())->stale);
  const auto start = Clock::now();
  module->Stop();
  module.reset();  // the hung worker is detached and owns what it touches
  EXPECT_LT(Clock::now() - start, 4s);
  nfs.Release();  // the late answer lands in the detached worker, which then ends
  std::this_thread::sleep_for(100ms);
}

}  // namespace
}  // namespace edged::storage

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  if (::geteuid() == 0) {
    // Before any thread exists: unshare(CLONE_NEWNS) applies to the calling thread only.
    if (::unshare(CLONE_NEWNS) != 0) {
      edged::storage::NamespaceError() = std::string("unshare(CLONE_NEWNS) failed: ") + std::strerror(errno);
    } else if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
      edged::storage::NamespaceError() = std::string("making / private failed: ") + std::strerror(errno);
    }
  }
  return RUN_ALL_TESTS();
}
