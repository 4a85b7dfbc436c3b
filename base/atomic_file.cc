#include "base/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace edged {
namespace {

// Closes the descriptor on every path out of WriteFileAtomically.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(fmt::format("{}{}", "write ", path), errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

}  // namespace

Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents, unsigned mode) {
  std::error_code ec;
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return UnavailableError(fmt::format("{}{}{}{}{}", "create directory ", dir.string(), ": ", ec.message(), "; check that the state directory is writable"));
  }
  std::string tmp = path.string() + ".tmp.XXXXXX";
  FileDescriptor fd(::mkstemp(tmp.data()));
  if (fd.get() < 0) return ErrnoStatus(fmt::format("{}{}", "create temporary file ", tmp), errno);
  auto discard = [&tmp](Status s) {
    ::unlink(tmp.c_str());
    return s;
  };
  if (::fchmod(fd.get(), mode) != 0) return discard(ErrnoStatus(fmt::format("{}{}", "chmod ", tmp), errno));
  if (Status s = WriteAll(fd.get(), contents, tmp); !s.ok()) return discard(s);
  if (::fsync(fd.get()) != 0) return discard(ErrnoStatus(fmt::format("{}{}", "fsync ", tmp), errno));
  if (::close(fd.release()) != 0) return discard(ErrnoStatus(fmt::format("{}{}", "close ", tmp), errno));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return discard(ErrnoStatus(fmt::format("{}{}{}{}", "rename ", tmp, " to ", path.string()), errno));
  }
  // The rename is durable only once the directory entry is on disk.
  FileDescriptor dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() >= 0) ::fsync(dir_fd.get());
  return OkStatus();
}

StatusOr<std::string> ReadFileToString(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(path)) return NotFoundError(fmt::format("{}{}", path.string(), ": no such file"));
    return ErrnoStatus(fmt::format("{}{}", "open ", path.string()), errno);
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return ErrnoStatus(fmt::format("{}{}", "read ", path.string()), errno);
  return out.str();
}

}  // namespace edged
