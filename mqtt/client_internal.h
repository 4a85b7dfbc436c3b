// Pure helpers of the MQTT client that tests reach directly: broker URL parsing and the reconnect
// backoff schedule. Not part of the public interface; only mqtt/ and tests/mqtt/ include this.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace edged::mqtt::detail {

struct ServerAddress {
  std::string host;  // without IPv6 brackets
  std::uint16_t port = 1883;
  bool tls = false;  // mqtts:// (or ssl://, tls://)

  // "host:port", with brackets around an IPv6 host: what log lines and health messages show.
  std::string ToString() const;
};

// Parses mqtt://host[:port], mqtts://host[:port] (also tcp://, ssl://, tls://), IPv6 as [::1].
// Default ports: 1883, or 8883 with TLS.
StatusOr<ServerAddress> ParseServerUrl(std::string_view url);

// The delay before the reconnect attempt after `failures` failed attempts in a row (0 = the first
// retry after a lost connection): min, 2*min, 4*min, ... capped at max.
std::chrono::seconds BackoffDelay(int failures, std::chrono::seconds min, std::chrono::seconds max);

}  // namespace edged::mqtt::detail
