#include "edge/systemd_notifier.h"

#include <systemd/sd-daemon.h>

#include <string>

namespace edged {

void SystemdNotifier::Ready() const { sd_notify(0, "READY=1"); }

void SystemdNotifier::Status(std::string_view text) const {
  std::string message = "STATUS=" + std::string(text);
  sd_notify(0, message.c_str());
}

void SystemdNotifier::Reloading() const { sd_notify(0, "RELOADING=1"); }

void SystemdNotifier::Stopping() const { sd_notify(0, "STOPPING=1"); }

void SystemdNotifier::WatchdogPing() const { sd_notify(0, "WATCHDOG=1"); }

std::optional<std::chrono::microseconds> SystemdNotifier::WatchdogPingInterval() const {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec / 2);
}

}  // namespace edged
