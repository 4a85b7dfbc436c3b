// Which mounts to watch, and one probe of one mount: statvfs and the optional write probe.
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>

#include <spdlog/fmt/fmt.h>

#include "drivers/inventory/inventory.h"
#include "drivers/storage/storage_internal.h"

namespace edged::storage::detail {
namespace {

// /proc/mounts writes space, tab, newline and backslash as \040, \011, \012, \134.
std::string DecodeMountField(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto octal = [&](std::size_t j) { return s[j] >= '0' && s[j] <= '7'; };
    if (s[i] == '\\' && i + 3 < s.size() && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool IsUnder(const std::string& path, const std::string& mountpoint) {
  if (mountpoint == "/") return !path.empty() && path[0] == '/';
  return path == mountpoint || (path.rfind(mountpoint, 0) == 0 && path.size() > mountpoint.size() &&
                                path[mountpoint.size()] == '/');
}

// Writes, syncs, reads back and removes a small file; the whole round trip a NAS user cares about.
Status WriteProbe(const std::string& mountpoint) {
  const std::string path = fmt::format("{}/.edged-probe-{}", mountpoint == "/" ? "" : mountpoint, ::getpid());
  std::string payload = fmt::format("edged write probe {}\n", path);
  payload.resize(4096, '.');
  auto fail = [&](const char* what) {
    const int e = errno;
    ::unlink(path.c_str());
    return ErrnoStatus(fmt::format("write probe: {} {}", what, path), e);
  };
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoStatus(fmt::format("write probe: create {}", path), errno);
  std::size_t done = 0;
  while (done < payload.size()) {
    const ssize_t n = ::write(fd, payload.data() + done, payload.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return fail("write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return fail("fsync");
  }
  if (::close(fd) != 0) return fail("close");
  fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return fail("reopen");
  std::string back(payload.size() + 1, '\0');
  std::size_t got = 0;
  while (got < back.size()) {
    const ssize_t n = ::read(fd, back.data() + got, back.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(fd);
  back.resize(got);
  if (back != payload) {
    ::unlink(path.c_str());
    return DataLossError(fmt::format("write probe: {} read back {} bytes that differ from the {} written",
                                     path, got, payload.size()));
  }
  if (::unlink(path.c_str()) != 0) return ErrnoStatus(fmt::format("write probe: remove {}", path), errno);
  return OkStatus();
}

}  // namespace

std::vector<MountTarget> ParseMountTable(std::string_view text, bool mountinfo) {
  std::vector<MountTarget> out;
  if (mountinfo) {
    for (inventory::Mount& m : inventory::ParseMountInfo(text)) {
      out.push_back({std::move(m.source), std::move(m.mountpoint), std::move(m.fstype), false});
    }
    return out;
  }
  // "/dev/sda1 /mnt/data ext4 rw,relatime 0 0"
  std::istringstream lines{std::string(text)};
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::string device, mountpoint, fstype;
    if (!(words >> device >> mountpoint >> fstype)) continue;
    out.push_back({DecodeMountField(device), DecodeMountField(mountpoint), fstype, false});
  }
  return out;
}

std::vector<MountTarget> SelectMounts(const std::vector<MountTarget>& table, const MountFilter& filter) {
  std::map<std::string, MountTarget> by_mountpoint;
  if (filter.discover) {
    for (const MountTarget& m : table) {
      if (!filter.fstypes.empty() &&
          std::find(filter.fstypes.begin(), filter.fstypes.end(), m.fstype) == filter.fstypes.end()) {
        continue;
      }
      if (filter.exclude_mountpoints && std::regex_search(m.mountpoint, *filter.exclude_mountpoints)) continue;
      by_mountpoint[m.mountpoint] = m;  // an over-mount replaces what it hides
    }
  }
  for (const config::MountConfig& c : filter.configured) {
    if (c.path.empty()) continue;
    std::string path = c.path;
    while (path.size() > 1 && path.back() == '/') path.pop_back();
    MountTarget target{"", path, "", c.write_probe};
    // The mount that holds the path gives the labels: the last (top-most) of the longest prefix.
    std::size_t best = 0;
    for (const MountTarget& m : table) {
      if (IsUnder(path, m.mountpoint) && m.mountpoint.size() >= best) {
        best = m.mountpoint.size();
        target.device = m.device;
        target.fstype = m.fstype;
      }
    }
    by_mountpoint[path] = std::move(target);
  }
  std::vector<MountTarget> out;
  for (auto& [mp, m] : by_mountpoint) out.push_back(std::move(m));
  return out;
}

ProbeResult ProbeMount(const std::string& mountpoint, bool write_probe) {
  ProbeResult r;
  const auto start = std::chrono::steady_clock::now();
  struct statvfs st {};
  if (::statvfs(mountpoint.c_str(), &st) != 0) {
    r.statvfs_status = ErrnoStatus("statvfs " + mountpoint, errno);
  } else {
    const std::uint64_t frsize = st.f_frsize != 0 ? st.f_frsize : st.f_bsize;
    r.stats.size_bytes = static_cast<std::uint64_t>(st.f_blocks) * frsize;
    r.stats.free_bytes = static_cast<std::uint64_t>(st.f_bfree) * frsize;
    r.stats.avail_bytes = static_cast<std::uint64_t>(st.f_bavail) * frsize;
    r.stats.files = st.f_files;
    r.stats.files_free = st.f_ffree;
    r.stats.readonly = (st.f_flag & ST_RDONLY) != 0;
    if (write_probe) r.write_status = WriteProbe(mountpoint);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace edged::storage::detail
