// The byte pipe to a Zigbee coordinator: a serial tty (USB dongle) or a TCP socket (network
// coordinators such as the SLZB-06 serve ZNP on tcp://host:6638). Non-blocking and poll-based; a
// vanished peer (dongle pulled, EIO/ENODEV/HUP, TCP reset or EOF) is reported at once as Unavailable,
// and the owner reopens with Backoff. The ZNP codec above never sees a file descriptor.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>

#include "base/status.h"

namespace edged::serial {

struct LinkOptions {
  // "/dev/ttyACM0", "/dev/serial/by-id/usb-...", or "tcp://host:port". Symlinks are resolved again on
  // every Open(), so a re-plugged dongle that came back as another ttyACMn is found.
  std::string port;
  int baudrate = 115200;
  bool rtscts = false;  // hardware flow control (some CC2652P sticks need it)
  std::chrono::milliseconds connect_timeout{3000};  // TCP connect
};

// Not thread-safe: one owner thread reads, writes and reopens.
class CoordinatorLink {
 public:
  virtual ~CoordinatorLink() = default;

  // Opens (or reopens) the link. Unavailable when the device or peer is absent (retry later),
  // PermissionDenied when the tty is not accessible (add the user to dialout), InvalidArgument for a
  // port string that cannot work.
  virtual Status Open() = 0;
  virtual void Close() = 0;
  virtual bool is_open() const = 0;
  // The descriptor to poll for POLLIN; -1 when closed.
  virtual int fd() const = 0;
  // Reads what is available without blocking: the number of bytes (0 = nothing yet). Unavailable when
  // the peer is gone; the link is closed by then.
  virtual StatusOr<std::size_t> Read(std::span<std::byte> buffer) = 0;
  // Writes every byte, waiting at most `timeout` for the peer to drain. Unavailable when the peer is
  // gone (the link is closed), DeadlineExceeded when it stopped draining.
  virtual Status Write(std::span<const std::byte> bytes, std::chrono::milliseconds timeout) = 0;
  // "tty /dev/ttyACM0 (via /dev/serial/by-id/usb-...)" or "tcp 127.0.0.1:6638", for logs and health.
  virtual std::string Describe() const = 0;
};

// A tty link for a path, a TCP link for "tcp://host:port". InvalidArgument for an unsupported baud
// rate or a malformed tcp:// address. Does not open the link.
StatusOr<std::unique_ptr<CoordinatorLink>> MakeCoordinatorLink(const LinkOptions& options);

// Waits until `link` has bytes or `timeout` passes: true when readable. When `wake_fd` (an eventfd
// or pipe) becomes readable it returns false early, so a Stop() never waits for a silent peer.
// Unavailable when the peer hung up (the link is closed by then).
StatusOr<bool> WaitReadable(CoordinatorLink& link, std::chrono::milliseconds timeout, int wake_fd = -1);

// Exponential reconnect delays: min, 2·min, 4·min, ... capped at max; Reset() after a success.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max) : min_(min), max_(max), next_(min) {}
  std::chrono::milliseconds Next() {
    const auto current = next_;
    next_ = std::min(max_, next_ * 2);
    return current;
  }
  void Reset() { next_ = min_; }

 private:
  std::chrono::milliseconds min_, max_, next_;
};

}  // namespace edged::serial
