// POSIX implementations of CoordinatorLink: termios tty and TCP socket.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include <spdlog/fmt/fmt.h>

#include "drivers/serial/link.h"

namespace edged::serial {
namespace {

using std::chrono::milliseconds;

// errno values that mean "the device or peer is gone", not "try again".
bool IsHangup(int err) {
  return err == EIO || err == ENODEV || err == ENXIO || err == EPIPE || err == ECONNRESET || err == EBADF ||
         err == ENOTCONN || err == ETIMEDOUT || err == EHOSTUNREACH || err == ENETDOWN;
}

std::optional<speed_t> BaudConstant(int baud) {
  switch (baud) {
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 115200: return B115200;
    case 230400: return B230400;
    case 460800: return B460800;
    case 500000: return B500000;
    case 921600: return B921600;
    case 1000000: return B1000000;
    default: return std::nullopt;
  }
}

// Shared read/write/close over a non-blocking descriptor.
class FdLink : public CoordinatorLink {
 public:
  ~FdLink() override { FdLink::Close(); }
  void Close() override {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool is_open() const override { return fd_ >= 0; }
  int fd() const override { return fd_; }

  StatusOr<std::size_t> Read(std::span<std::byte> buffer) override {
    if (fd_ < 0) return UnavailableError(fmt::format("{}: not open", Describe()));
    for (;;) {
      const ssize_t n = ::read(fd_, buffer.data(), buffer.size());
      if (n > 0) return static_cast<std::size_t>(n);
      if (n == 0) {
        if (buffer.empty()) return std::size_t{0};
        // EOF: the TCP peer closed, or the pty master went away.
        Close();
        return UnavailableError(fmt::format("{}: the coordinator closed the connection", Describe()));
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return std::size_t{0};
      const int err = errno;
      Close();
      return UnavailableError(ErrnoStatus(fmt::format("read {}", Describe()), err).ToString() +
                              (IsHangup(err) ? "; the coordinator was unplugged or went away" : ""));
    }
  }

  Status Write(std::span<const std::byte> bytes, milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::size_t done = 0;
    while (done < bytes.size()) {
      if (fd_ < 0) return UnavailableError(fmt::format("{}: not open", Describe()));
      const ssize_t n = Send(bytes.data() + done, bytes.size() - done);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        const int err = errno;
        Close();
        return UnavailableError(ErrnoStatus(fmt::format("write {}", Describe()), err).ToString());
      }
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        return DeadlineExceededError(fmt::format("write {}: the coordinator stopped accepting bytes for {} ms",
                                                 Describe(), timeout.count()));
      }
      pollfd p{fd_, POLLOUT, 0};
      const int r = ::poll(&p, 1, static_cast<int>(left.count()));
      if (r > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL))) {
        Close();
        return UnavailableError(fmt::format("write {}: the coordinator hung up", Describe()));
      }
    }
    return OkStatus();
  }

 protected:
  virtual ssize_t Send(const std::byte* data, std::size_t size) { return ::write(fd_, data, size); }
  int fd_ = -1;
};

class TtyLink final : public FdLink {
 public:
  explicit TtyLink(LinkOptions options, speed_t speed) : options_(std::move(options)), speed_(speed) {}

  Status Open() override {
    Close();
    // Resolve /dev/serial/by-id/... now, not once at start-up: after a re-plug the link points at
    // whichever ttyACMn the dongle came back as.
    std::error_code ec;
    auto resolved = std::filesystem::canonical(options_.port, ec);
    if (ec) {
      return UnavailableError(fmt::format("open {}: {} — is the coordinator plugged in?", options_.port, ec.message()));
    }
    resolved_ = resolved.string();
    const int fd = ::open(resolved_.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      Status st = ErrnoStatus(fmt::format("open {}", Describe()), err);
      if (err == EACCES) {
        return PermissionDeniedError(std::string(st.message()) + "; add the edged user to the 'dialout' group");
      }
      return UnavailableError(std::string(st.message()));
    }
    termios tio{};
    if (::tcgetattr(fd, &tio) != 0) {
      const int err = errno;
      ::close(fd);
      return InvalidArgumentError(ErrnoStatus(fmt::format("tcgetattr {} (not a tty?)", Describe()), err).ToString());
    }
    ::cfmakeraw(&tio);
    tio.c_cflag |= CLOCAL | CREAD;
    tio.c_cflag &= ~static_cast<tcflag_t>(CSTOPB | PARENB | CSIZE);
    tio.c_cflag |= CS8;
    if (options_.rtscts) {
      tio.c_cflag |= CRTSCTS;
    } else {
      tio.c_cflag &= ~static_cast<tcflag_t>(CRTSCTS);
    }
    // VMIN 1 with O_NONBLOCK: an empty read fails with EAGAIN. With VMIN 0 it returns 0, which a
    // read racing poll() sees now and then (seen under ASan), and 0 would read as the end of the link.
    tio.c_cc[VMIN] = 1;
    tio.c_cc[VTIME] = 0;
    ::cfsetispeed(&tio, speed_);
    ::cfsetospeed(&tio, speed_);
    if (::tcsetattr(fd, TCSANOW, &tio) != 0) {
      const int err = errno;
      ::close(fd);
      return UnavailableError(ErrnoStatus(fmt::format("tcsetattr {}", Describe()), err).ToString());
    }
    ::tcflush(fd, TCIOFLUSH);  // stale bytes from before the reopen would confuse the parser
    fd_ = fd;
    return OkStatus();
  }

  std::string Describe() const override {
    if (!resolved_.empty() && resolved_ != options_.port) return fmt::format("tty {} (via {})", resolved_, options_.port);
    return fmt::format("tty {}", options_.port);
  }

 private:
  LinkOptions options_;
  speed_t speed_;
  std::string resolved_;
};

class TcpLink final : public FdLink {
 public:
  TcpLink(LinkOptions options, std::string host, std::string port)
      : options_(std::move(options)), host_(std::move(host)), port_(std::move(port)) {}

  Status Open() override {
    Close();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(host_.c_str(), port_.c_str(), &hints, &res); rc != 0) {
      return UnavailableError(fmt::format("resolve {}: {}", Describe(), ::gai_strerror(rc)));
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
    Status last = UnavailableError(fmt::format("connect {}: no address", Describe()));
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
      const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
      if (fd < 0) continue;
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // ZNP frames are small and latency-bound
      ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
      int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
      if (rc != 0 && errno == EINPROGRESS) {
        pollfd p{fd, POLLOUT, 0};
        rc = ::poll(&p, 1, static_cast<int>(options_.connect_timeout.count()));
        if (rc == 0) {
          ::close(fd);
          last = UnavailableError(fmt::format("connect {}: no answer within {} ms", Describe(),
                                              options_.connect_timeout.count()));
          continue;
        }
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          ::close(fd);
          last = UnavailableError(ErrnoStatus(fmt::format("connect {}", Describe()), err).ToString());
          continue;
        }
        rc = 0;
      }
      if (rc != 0) {
        const int err = errno;
        ::close(fd);
        last = UnavailableError(ErrnoStatus(fmt::format("connect {}", Describe()), err).ToString());
        continue;
      }
      fd_ = fd;
      return OkStatus();
    }
    return last;
  }

  std::string Describe() const override { return fmt::format("tcp {}:{}", host_, port_); }

 protected:
  ssize_t Send(const std::byte* data, std::size_t size) override { return ::send(fd_, data, size, MSG_NOSIGNAL); }

 private:
  LinkOptions options_;
  std::string host_, port_;
};

}  // namespace

StatusOr<std::unique_ptr<CoordinatorLink>> MakeCoordinatorLink(const LinkOptions& options) {
  constexpr std::string_view kTcp = "tcp://";
  if (options.port.rfind(kTcp, 0) == 0) {
    std::string rest = options.port.substr(kTcp.size());
    if (!rest.empty() && rest.back() == '/') rest.pop_back();
    std::string host, port;
    if (!rest.empty() && rest.front() == '[') {  // [v6]:port
      const auto close = rest.find(']');
      if (close == std::string::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
        return InvalidArgumentError(fmt::format("zigbee port '{}': expected tcp://[ipv6]:port", options.port));
      }
      host = rest.substr(1, close - 1);
      port = rest.substr(close + 2);
    } else {
      const auto colon = rest.rfind(':');
      if (colon == std::string::npos) {
        return InvalidArgumentError(fmt::format("zigbee port '{}': expected tcp://host:port (e.g. tcp://192.168.1.20:6638)", options.port));
      }
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
    }
    char* end = nullptr;
    const long p = std::strtol(port.c_str(), &end, 10);
    if (host.empty() || port.empty() || *end != '\0' || p < 1 || p > 65535) {
      return InvalidArgumentError(fmt::format("zigbee port '{}': host or port (1..65535) is missing or invalid", options.port));
    }
    return std::unique_ptr<CoordinatorLink>(std::make_unique<TcpLink>(options, host, port));
  }
  if (options.port.empty() || options.port.front() != '/') {
    return InvalidArgumentError(fmt::format(
        "zigbee port '{}': expected a device path (/dev/ttyACM0, /dev/serial/by-id/...) or tcp://host:port", options.port));
  }
  auto speed = BaudConstant(options.baudrate);
  if (!speed) {
    return InvalidArgumentError(fmt::format("zigbee baudrate {} is not supported; Z-Stack sticks use 115200", options.baudrate));
  }
  return std::unique_ptr<CoordinatorLink>(std::make_unique<TtyLink>(options, *speed));
}

StatusOr<bool> WaitReadable(CoordinatorLink& link, milliseconds timeout, int wake_fd) {
  if (!link.is_open()) return UnavailableError(fmt::format("{}: not open", link.Describe()));
  pollfd fds[2] = {{link.fd(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
  const nfds_t n = wake_fd >= 0 ? 2 : 1;
  int rc;
  do {
    rc = ::poll(fds, n, static_cast<int>(timeout.count()));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return ErrnoStatus("poll coordinator link", errno);
  if (n == 2 && (fds[1].revents & POLLIN)) return false;
  if (fds[0].revents & POLLIN) return true;  // read first: data may precede a hang-up
  if (fds[0].revents & (POLLHUP | POLLERR | POLLNVAL)) {
    const std::string what = link.Describe();
    link.Close();
    return UnavailableError(fmt::format("{}: hung up (device unplugged or peer closed)", what));
  }
  return false;
}

}  // namespace edged::serial
