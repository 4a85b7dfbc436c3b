// The lifecycle every capability of the daemon implements (MQTT bridge, Zigbee, cameras, storage, labels).
// The daemon starts the configured modules in order, stops them in reverse order, and reads their health
// for /readyz, metrics and availability topics. A module that fails is reported, never fatal to the rest.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace edged {

enum class HealthState { kOk, kWarning, kFailed };

std::string_view HealthStateName(HealthState state);  // "ok", "warning", "failed"

struct Health {
  HealthState state = HealthState::kOk;
  std::string message;  // empty when ok; otherwise what is wrong and what to do about it

  static Health Ok() { return {}; }
  static Health Warning(std::string message) { return {HealthState::kWarning, std::move(message)}; }
  static Health Failed(std::string message) { return {HealthState::kFailed, std::move(message)}; }
  bool ok() const { return state == HealthState::kOk; }
};

class Module {
 public:
  virtual ~Module() = default;

  // Stable, lower-case name used in logs, metrics labels and /readyz ("mqtt", "zigbee", ...).
  virtual std::string_view name() const = 0;

  // Starts the module's background work and returns without waiting on any peer: a broker, a
  // coordinator or a camera that is not there yet makes the module unhealthy, not Start() slow.
  // An error means the module cannot run at all with this configuration.
  virtual Status Start() = 0;

  // Stops all background work and releases every handle. Must return within a few seconds, and be
  // safe to call when Start() failed or was never called.
  virtual void Stop() = 0;

  // Current health; cheap and safe to call from any thread.
  virtual Health health() const = 0;
};

// Maps names to factories. Filled from one explicit list (edge/register_builtin.cc), never by static
// self-registration, which a static-library link can silently drop.
template <typename Base, typename... Args>
class Registry {
 public:
  using Factory = std::function<StatusOr<std::unique_ptr<Base>>(Args...)>;

  Status Add(std::string name, Factory factory) {
    if (!factories_.emplace(name, std::move(factory)).second) {
      return AlreadyExistsError("registry: '" + name + "' is registered twice");
    }
    return OkStatus();
  }

  StatusOr<std::unique_ptr<Base>> Create(std::string_view name, Args... args) const {
    auto it = factories_.find(std::string(name));
    if (it == factories_.end()) {
      std::string known;
      for (const auto& [n, f] : factories_) known += (known.empty() ? "" : ", ") + n;
      return NotFoundError("unknown name '" + std::string(name) + "'; expected one of: " + known);
    }
    return it->second(std::forward<Args>(args)...);
  }

  std::vector<std::string> Names() const {  // sorted, as std::map keeps them
    std::vector<std::string> names;
    for (const auto& [n, f] : factories_) names.push_back(n);
    return names;
  }

 private:
  std::map<std::string, Factory, std::less<>> factories_;
};

}  // namespace edged
