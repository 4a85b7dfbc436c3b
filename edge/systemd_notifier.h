// Talks to systemd when edged runs under it (Type=notify): READY=1 once modules are started, STATUS= with a
// one-line summary, WATCHDOG=1 at half the WatchdogSec interval, STOPPING=1 / RELOADING=1. Outside systemd
// (no $NOTIFY_SOCKET) every call is a cheap no-op.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace edged {

class SystemdNotifier {
 public:
  void Ready() const;
  void Status(std::string_view text) const;
  void Reloading() const;
  void Stopping() const;
  void WatchdogPing() const;
  // The interval at which WatchdogPing() must be called (half of WatchdogSec), when the watchdog is on.
  std::optional<std::chrono::microseconds> WatchdogPingInterval() const;
};

}  // namespace edged
