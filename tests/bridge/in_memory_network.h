// IN-TEST STAND-IN for the Zigbee network: an in-memory ZigbeeNetworkView that joins the simulator's
// device types, reports state and answers commands like a device would. It exists because the real
// coordinator (drivers/zigbee) had not landed its network API when the bridge was written; the bridge
// tests run against it over a REAL mosquitto broker. Replace with the coordinator + edged-zsim once
// drivers/zigbee/network.h exists (see the bridge's report).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "mqtt/bridge/network_view.h"
#include "tests/bridge/test_devices.h"

namespace edged::test {

class InMemoryNetwork : public mqtt::bridge::ZigbeeNetworkView {
 public:
  using DeviceInfo = mqtt::bridge::DeviceInfo;

  void SetEvents(mqtt::bridge::NetworkEvents events) override {
    std::lock_guard lock(mu_);
    events_ = std::move(events);
  }
  mqtt::bridge::CoordinatorInfo Coordinator() const override { return TestCoordinator(); }
  std::vector<DeviceInfo> Devices() const override {
    std::lock_guard lock(mu_);
    std::vector<DeviceInfo> out;
    for (const auto& ieee : order_) out.push_back(devices_.at(ieee));
    return out;
  }
  Status PermitJoin(std::chrono::seconds duration) override {
    std::lock_guard lock(mu_);
    if (duration.count() == 0) {
      permit_join_end_.reset();
    } else {
      permit_join_end_ = std::chrono::system_clock::now() + duration;
    }
    return OkStatus();
  }
  std::optional<std::chrono::system_clock::time_point> PermitJoinEnd() const override {
    std::lock_guard lock(mu_);
    return permit_join_end_;
  }
  Status Rename(const std::string& ieee, const std::string& new_name) override {
    std::unique_lock lock(mu_);
    ++rename_calls_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !hold_renames_; });
    auto it = devices_.find(ieee);
    if (it == devices_.end()) return NotFoundError("no device " + ieee);
    it->second.friendly_name = new_name;
    return OkStatus();
  }
  Status Remove(const std::string& ieee, bool force) override {
    static_cast<void>(force);
    std::lock_guard lock(mu_);
    if (devices_.erase(ieee) == 0) return NotFoundError("no device " + ieee);
    order_.erase(std::remove(order_.begin(), order_.end(), ieee), order_.end());
    return OkStatus();
  }
  Status SetOptions(const std::string& ieee, const nlohmann::json& options) override {
    std::lock_guard lock(mu_);
    auto it = devices_.find(ieee);
    if (it == devices_.end()) return NotFoundError("no device " + ieee);
    it->second.options = options;
    return OkStatus();
  }
  void SendCommand(const std::string& ieee, const nlohmann::json& command, Done done) override {
    {
      std::lock_guard lock(mu_);
      commands_.push_back({ieee, command});
      cv_.notify_all();
      // Held commands wait here for HoldCommands(false), like a coordinator that stopped answering;
      // the caller goes on, as with the real network.
      if (hold_commands_) {
        held_.push_back({ieee, command, std::move(done)});
        return;
      }
    }
    Complete(ieee, command, done);
  }
  void Read(const std::string& ieee, const nlohmann::json& command, Done done) override {
    nlohmann::json report = nlohmann::json::object();
    {
      std::lock_guard lock(mu_);
      reads_.push_back({ieee, command});
    }
    for (auto it = command.begin(); it != command.end(); ++it) {
      if (it.key() == "state") report["state"] = "OFF";
      if (it.key() == "temperature") report["temperature"] = 20.0;
    }
    Report(ieee, report, 180);
    done(OkStatus());
  }

  // ---- driving the simulated network ----

  // Joins a device of a simulator type and completes its interview.
  DeviceInfo Join(const std::string& type, const std::string& ieee, const std::string& name = "") {
    DeviceInfo d = SimDevice(type, ieee, name.empty() ? ieee : name);
    DeviceInfo joined = d;
    joined.interview_state = mqtt::bridge::InterviewState::kInProgress;
    joined.model_id.clear();
    {
      std::lock_guard lock(mu_);
      devices_[ieee] = joined;
      order_.push_back(ieee);
    }
    auto events = Events();
    if (events.device_joined) events.device_joined(joined);
    if (events.device_interview) events.device_interview(joined, "started");
    {
      std::lock_guard lock(mu_);
      devices_[ieee] = d;
    }
    if (events.device_interview) events.device_interview(d, "successful");
    return d;
  }
  void Report(const std::string& ieee, const nlohmann::json& state, std::optional<int> lqi) {
    auto events = Events();
    if (events.device_message) events.device_message(ieee, state, lqi);
  }
  void Leave(const std::string& ieee) {
    std::string name;
    {
      std::lock_guard lock(mu_);
      auto it = devices_.find(ieee);
      if (it == devices_.end()) return;
      name = it->second.friendly_name;
      devices_.erase(it);
      order_.erase(std::remove(order_.begin(), order_.end(), ieee), order_.end());
    }
    auto events = Events();
    if (events.device_leave) events.device_leave(ieee, name);
  }

  struct Command {
    std::string ieee;
    nlohmann::json payload;
  };
  std::vector<Command> commands() const {
    std::lock_guard lock(mu_);
    return commands_;
  }
  std::vector<Command> reads() const {
    std::lock_guard lock(mu_);
    return reads_;
  }
  bool WaitForCommands(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return commands_.size() >= n; });
  }
  void HoldCommands(bool hold) {
    std::vector<HeldCommand> release;
    {
      std::lock_guard lock(mu_);
      hold_commands_ = hold;
      if (!hold) release.swap(held_);
    }
    for (auto& c : release) Complete(c.ieee, c.command, c.done);
  }
  // Rename (a database write) blocks while held, like a write stuck on a hung disk; the bridge's
  // worker, which makes it, waits with it.
  void HoldRenames(bool hold) {
    {
      std::lock_guard lock(mu_);
      hold_renames_ = hold;
    }
    cv_.notify_all();
  }
  bool WaitForRenameCalls(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return rename_calls_ >= n; });
  }
  void FailCommands(bool fail) {
    std::lock_guard lock(mu_);
    fail_commands_ = fail;
  }
  std::optional<DeviceInfo> Find(const std::string& ieee) const {
    std::lock_guard lock(mu_);
    auto it = devices_.find(ieee);
    if (it == devices_.end()) return std::nullopt;
    return it->second;
  }

 private:
  // A device acknowledges, then reports its new attribute values, as a real one does (without
  // color_mode, which only the bridge's optimistic state carries).
  void Complete(const std::string& ieee, const nlohmann::json& command, const Done& done) {
    bool fail;
    {
      std::lock_guard lock(mu_);
      fail = fail_commands_;
    }
    if (fail) return done(DeadlineExceededError("AF_DATA_CONFIRM timed out (simulated)"));
    nlohmann::json report = command;
    report.erase("transition");
    if (report.contains("state") && report["state"] == "TOGGLE") report.erase("state");
    Report(ieee, report, 200);
    done(OkStatus());
  }

  mqtt::bridge::NetworkEvents Events() const {
    std::lock_guard lock(mu_);
    return events_;
  }

  mutable std::mutex mu_;
  std::condition_variable cv_;
  mqtt::bridge::NetworkEvents events_;
  std::map<std::string, DeviceInfo> devices_;
  std::vector<std::string> order_;
  std::optional<std::chrono::system_clock::time_point> permit_join_end_;
  std::vector<Command> commands_;
  std::vector<Command> reads_;
  bool hold_commands_ = false;
  bool fail_commands_ = false;
  struct HeldCommand {
    std::string ieee;
    nlohmann::json command;
    Done done;
  };
  std::vector<HeldCommand> held_;
  bool hold_renames_ = false;
  size_t rename_calls_ = 0;
};

}  // namespace edged::test
