#include "mqtt/bridge/bridge.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <spdlog/spdlog.h>

#include "base/atomic_file.h"
#include "base/logging.h"
#include "mqtt/bridge/exposes.h"
#include "mqtt/bridge/payloads.h"
#include "mqtt/client.h"
#include "mqtt/discovery/discovery.h"

namespace edged::mqtt::bridge {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using SystemClock = std::chrono::system_clock;

namespace {

// The property label of edged_zigbee_state carries the unit, as Prometheus names do.
std::string MetricProperty(const std::string& property, const json* expose) {
  static const std::map<std::string, std::string> kSuffix = {
      {"°C", "_celsius"}, {"%", "_percent"}, {"hPa", "_hectopascals"}, {"kPa", "_kilopascals"},
      {"W", "_watts"},    {"V", "_volts"},   {"mV", "_millivolts"},     {"A", "_amperes"},
      {"kWh", "_kilowatt_hours"}, {"lx", "_lux"}, {"mired", "_mireds"}};
  if (expose != nullptr) {
    if (auto u = expose->find("unit"); u != expose->end() && u->is_string()) {
      if (auto it = kSuffix.find(u->get<std::string>()); it != kSuffix.end()) return property + it->second;
    }
  }
  return property;
}

// zigbee2mqtt accepts a bare "ON"/"off"/"toggle" as a /set payload.
bool IsStateWord(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  static const std::set<std::string> kWords = {"on", "off", "toggle", "open", "close", "stop", "lock", "unlock"};
  return kWords.count(s) != 0;
}

// Outside input can carry invalid UTF-8 into error texts and options; replace it instead of letting
// nlohmann::json throw on dump.
std::string Dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

std::optional<json> ParseJson(const std::string& text) {
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return std::nullopt;
  return value;
}

// Logs at most `burst` warnings per minute and then one summary, so a flood of bad input cannot flood
// the journal (STYLE: one actionable line per failure, not repeated).
class WarningLimiter {
 public:
  explicit WarningLimiter(std::shared_ptr<spdlog::logger> log) : log_(std::move(log)) {}
  void Warn(const std::string& message) {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    if (now - window_start_ > std::chrono::minutes(1)) {
      if (suppressed_ > 0) log_->warn("{} more bad messages in the last minute were not logged", suppressed_);
      window_start_ = now;
      count_ = 0;
      suppressed_ = 0;
    }
    if (++count_ <= kBurst) {
      log_->warn("{}", message);
    } else {
      ++suppressed_;
    }
  }

 private:
  static constexpr int kBurst = 20;
  std::shared_ptr<spdlog::logger> log_;
  std::mutex mu_;
  Clock::time_point window_start_ = Clock::now();
  int count_ = 0;
  int suppressed_ = 0;
};

// Handlers given to the MQTT client and the network may outlive the bridge (the client has no
// Unsubscribe and is shared by every module generation): they reach the bridge through this gate,
// which Stop() closes, waiting for a handler that is running.
template <typename T>
class Gate {
 public:
  explicit Gate(T* target) : target_(target) {}
  template <typename F>
  void Call(F&& f) {
    std::lock_guard lock(mu_);
    if (target_ == nullptr) return;
    try {
      f(*target_);
    } catch (const std::exception& e) {
      // Never let a library exception escape into the MQTT client's or the network's thread.
      Logger("zigbee")->warn("zigbee bridge: dropped an event: {}", e.what());
    }
  }
  void Close() {
    std::lock_guard lock(mu_);
    target_ = nullptr;
  }

 private:
  std::mutex mu_;
  T* target_;
};

enum class WorkKind { kRequest, kSet, kGet, kHomeAssistantStatus, kReconnected };

struct Work {
  WorkKind kind;
  std::string name;       // request name, or device friendly name / IEEE address
  std::string attribute;  // /set/<attribute>
  std::string payload;
};

}  // namespace

class Bridge::Impl {
 public:
  Impl(BridgeOptions options, Client& client, ZigbeeNetworkView& network, prometheus::Registry* registry)
      : options_(std::move(options)), client_(client), network_(network), log_(Logger("zigbee")), limiter_(log_) {
    if (registry == nullptr) {
      own_registry_ = std::make_unique<prometheus::Registry>();
      registry = own_registry_.get();
    }
    state_family_ = &prometheus::BuildGauge()
                         .Name("edged_zigbee_state")
                         .Help("Numeric state of a Zigbee device property (booleans and ON/OFF as 1/0); the "
                               "property label ends in the unit where one is known")
                         .Register(*registry);
    last_seen_family_ = &prometheus::BuildGauge()
                             .Name("edged_zigbee_last_seen_timestamp_seconds")
                             .Help("When a message from the Zigbee device last arrived (Unix time)")
                             .Register(*registry);
    lqi_family_ = &prometheus::BuildGauge()
                       .Name("edged_zigbee_linkquality")
                       .Help("Link quality (LQI 0..255) of the last message from the Zigbee device")
                       .Register(*registry);
    available_family_ = &prometheus::BuildGauge()
                             .Name("edged_zigbee_device_available")
                             .Help("1 while the Zigbee device was seen within its availability timeout")
                             .Register(*registry);
    auto& dropped = prometheus::BuildCounter()
                        .Name("edged_zigbee_bridge_queue_dropped_total")
                        .Help("MQTT commands dropped because the bridge's work queue was full")
                        .Register(*registry);
    dropped_ = &dropped.Add({});
    auto& depth = prometheus::BuildGauge()
                      .Name("edged_zigbee_bridge_queue_depth")
                      .Help("MQTT commands waiting for the bridge's worker")
                      .Register(*registry);
    depth_ = &depth.Add({});
    rejected_family_ = &prometheus::BuildCounter()
                            .Name("edged_zigbee_bridge_rejected_messages_total")
                            .Help("MQTT messages the bridge rejected, by reason")
                            .Register(*registry);
    for (const char* reason : {"oversized", "malformed", "unknown_device", "invalid_command", "command_failed",
                               "device_busy"}) {
      rejected_[reason] = &rejected_family_->Add({{"reason", reason}});
    }
    requests_family_ = &prometheus::BuildCounter()
                            .Name("edged_zigbee_bridge_requests_total")
                            .Help("bridge/request messages answered, by request and status")
                            .Register(*registry);
  }

  ~Impl() { Stop(); }

  Status Start() {
    std::lock_guard start_lock(lifecycle_mu_);
    if (started_) return FailedPreconditionError("zigbee bridge: Start() called twice");
    started_ = true;
    running_ = true;
    {
      // Never call the network while holding mu_: the network may deliver events under its own lock.
      auto coordinator = network_.Coordinator();
      auto devices = network_.Devices();
      std::lock_guard lock(mu_);
      coordinator_ = std::move(coordinator);
      // Saved states of devices that are no longer in the database are dropped here.
      json saved_states = LoadStates();
      for (const auto& info : devices) RestoreStateLocked(UpsertLocked(info), saved_states);
    }
    auto gate = gate_;
    network_.SetEvents(NetworkEvents{
        [gate](const DeviceInfo& d) { gate->Call([&](Impl& b) { b.OnJoined(d); }); },
        [gate](const DeviceInfo& d, std::string_view status) { gate->Call([&](Impl& b) { b.OnInterview(d, status); }); },
        [gate](const std::string& ieee, const std::string& name) { gate->Call([&](Impl& b) { b.OnLeave(ieee, name); }); },
        [gate](const std::string& ieee, const json& state, std::optional<int> lqi) {
          gate->Call([&](Impl& b) { b.OnMessage(ieee, state, lqi); });
        },
    });
    // Under the base topic the bridge reads only commands; what it publishes there itself is skipped at
    // the broker, which saves a read and a dispatch per state message.
    client_.Subscribe(
        options_.base_topic + "/#", 1, [gate](const Message& m) { gate->Call([&](Impl& b) { b.OnMqtt(m); }); },
        Client::OwnMessages::kSkip);
    if (options_.zigbee.homeassistant.enabled) {
      const std::string status_topic = options_.zigbee.homeassistant.status_topic;
      client_.Subscribe(status_topic, 1, [gate, status_topic](const Message& m) {
        if (m.topic != status_topic) return;
        gate->Call([&](Impl& b) { b.Enqueue({WorkKind::kHomeAssistantStatus, "", "", m.payload}); });
      });
    }
    client_.OnConnected([gate] { gate->Call([](Impl& b) { b.Enqueue({WorkKind::kReconnected, "", "", ""}); }); });
    if (options_.zigbee.permit_join) {
      if (Status s = network_.PermitJoin(options_.zigbee.permit_join_timeout); !s.ok()) {
        log_->warn("zigbee bridge: permit_join at start-up failed: {}", s.ToString());
      }
    }
    {
      const auto end = network_.PermitJoinEnd();
      std::lock_guard lock(mu_);
      AnnounceLocked(/*discovery=*/true, end);
    }
    worker_ = std::thread([this] { WorkerLoop(); });
    return OkStatus();
  }

  void Stop() {
    std::lock_guard start_lock(lifecycle_mu_);
    running_ = false;
    gate_->Close();
    {
      std::lock_guard lock(q_mu_);
      stopping_ = true;
    }
    q_cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    if (started_) SaveStates();
  }

  Health health() const {
    if (!running_) return Health::Failed("zigbee bridge is stopped");
    if (dropped_->Value() > 0) {
      return Health::Warning(fmt::format("zigbee bridge dropped {} MQTT commands since start because its queue was "
                                         "full; commands arrive faster than the coordinator answers",
                                         static_cast<long long>(dropped_->Value())));
    }
    return Health::Ok();
  }

 private:
  struct DeviceRecord {
    DeviceInfo info;
    std::optional<Definition> definition;
    json exposes = json::array();
    json state = json::object();
    std::optional<int> linkquality;
    std::optional<SystemClock::time_point> last_seen;
    std::optional<bool> published_available;
    std::vector<std::string> discovery_topics;
    std::map<std::string, prometheus::Gauge*> state_gauges;  // key: metric property label
    prometheus::Gauge* last_seen_gauge = nullptr;
    prometheus::Gauge* lqi_gauge = nullptr;
    prometheus::Gauge* available_gauge = nullptr;
    int commands_in_flight = 0;  // sent to the network, outcome not back yet
  };

  // A device that stopped answering takes 10 s per command to fail; its queue stays this short, so a
  // user's repeated taps are refused at once instead of piling up and running minutes later.
  static constexpr int kMaxCommandsInFlight = 8;

  // ---- publishing helpers (callers hold mu_) ----

  void Publish(const std::string& subtopic, const std::string& payload, bool retain, int qos = -1) {
    client_.Publish(options_.base_topic + "/" + subtopic, payload, qos < 0 ? options_.qos : qos, retain);
  }

  discovery::DiscoveryContext DiscoveryContextLocked() const {
    discovery::DiscoveryContext c;
    c.base_topic = options_.base_topic;
    c.discovery_topic = options_.zigbee.homeassistant.discovery_topic;
    c.availability = options_.zigbee.availability.enabled;
    c.version = options_.version;
    c.coordinator = coordinator_;
    return c;
  }

  void PublishInfoLocked(std::optional<SystemClock::time_point> permit_join_end) {
    BridgeInfoInput in;
    in.version = options_.version;
    in.coordinator = coordinator_;
    if (permit_join_end && *permit_join_end <= SystemClock::now()) permit_join_end.reset();
    in.permit_join_end = permit_join_end;
    in.permit_join = in.permit_join_end.has_value();
    published_permit_join_end_ = in.permit_join_end;
    in.log_level = "info";
    in.config = {{"mqtt", {{"base_topic", options_.base_topic}}},
                 {"homeassistant",
                  {{"enabled", options_.zigbee.homeassistant.enabled},
                   {"discovery_topic", options_.zigbee.homeassistant.discovery_topic},
                   {"status_topic", options_.zigbee.homeassistant.status_topic}}},
                 {"availability",
                  {{"enabled", options_.zigbee.availability.enabled},
                   {"active", {{"timeout", options_.zigbee.availability.active_timeout.count() / 60.0}}},
                   {"passive", {{"timeout", options_.zigbee.availability.passive_timeout.count() / 60.0}}}}},
                 {"permit_join", in.permit_join}};
    Publish("bridge/info", Dump(BridgeInfoPayload(in)), /*retain=*/true);
  }

  // bridge/devices lists every device, so publishing it on each event of a burst (200 devices joining)
  // would queue O(N^2) bytes; events mark it dirty and the worker publishes it once per burst.
  void MarkDevicesDirtyLocked() {
    devices_dirty_ = true;
    {
      std::lock_guard lock(q_mu_);
      wake_ = true;
    }
    q_cv_.notify_one();
  }

  void FlushDevices() {
    std::lock_guard lock(mu_);
    if (devices_dirty_) PublishDevicesLocked();
  }

  void PublishDevicesLocked() {
    devices_dirty_ = false;
    json out = json::array({CoordinatorEntry(coordinator_)});
    for (const auto& ieee : order_) out.push_back(DeviceEntry(devices_.at(ieee).info, devices_.at(ieee).definition));
    Publish("bridge/devices", Dump(out), /*retain=*/true);
  }

  void PublishDiscoveryLocked(DeviceRecord& rec) {
    if (!options_.zigbee.homeassistant.enabled) return;
    if (!rec.definition || rec.info.interview_state != InterviewState::kSuccessful) return;
    std::vector<std::string> topics;
    for (const auto& m : discovery::DeviceDiscovery(rec.info, *rec.definition, DiscoveryContextLocked())) {
      client_.Publish(m.topic, Dump(m.payload), 1, /*retain=*/true);
      topics.push_back(m.topic);
    }
    // Configs the device no longer has (options changed) are cleared, as zigbee2mqtt does.
    for (const auto& old : rec.discovery_topics) {
      if (std::find(topics.begin(), topics.end(), old) == topics.end()) client_.Publish(old, "", 1, true);
    }
    rec.discovery_topics = std::move(topics);
  }

  void ClearDiscoveryLocked(DeviceRecord& rec) {
    for (const auto& topic : rec.discovery_topics) client_.Publish(topic, "", 1, /*retain=*/true);
    rec.discovery_topics.clear();
  }

  bool RetainState(const DeviceRecord& rec) const {
    if (auto r = rec.info.options.find("retain"); r != rec.info.options.end() && r->is_boolean()) return r->get<bool>();
    if (auto it = options_.zigbee.devices.find(rec.info.ieee_address); it != options_.zigbee.devices.end() && it->second.retain) {
      return *it->second.retain;
    }
    return options_.zigbee.retain_state;
  }

  void PublishStateLocked(DeviceRecord& rec) {
    states_dirty_ = true;
    json message = rec.state;
    if (rec.linkquality) message["linkquality"] = *rec.linkquality;
    if (options_.zigbee.homeassistant.enabled) {
      // zigbee2mqtt's HomeAssistant extension adds every discovered property as null until known,
      // so HomeAssistant's templates never see an undefined key.
      for (const auto& p : ExposedProperties(rec.exposes)) {
        if (!message.contains(p)) message[p] = nullptr;
      }
    }
    if (message.empty()) return;
    Publish(rec.info.friendly_name, Dump(message), RetainState(rec), 0);
  }

  void PublishAvailabilityLocked(DeviceRecord& rec, bool available, bool force) {
    if (!options_.zigbee.availability.enabled) return;
    if (!force && rec.published_available == available) return;
    rec.published_available = available;
    Publish(rec.info.friendly_name + "/availability", AvailabilityPayload(available), /*retain=*/true, 1);
    if (rec.available_gauge) rec.available_gauge->Set(available ? 1 : 0);
  }

  bool AvailableLocked(const DeviceRecord& rec) const {
    if (!rec.last_seen) return false;
    const auto timeout = rec.info.active() ? options_.zigbee.availability.active_timeout
                                           : options_.zigbee.availability.passive_timeout;
    return SystemClock::now() - *rec.last_seen <= timeout;
  }

  void AnnounceLocked(bool discovery, std::optional<SystemClock::time_point> permit_join_end) {
    PublishInfoLocked(permit_join_end);
    PublishDevicesLocked();
    Publish("bridge/groups", "[]", /*retain=*/true);
    if (discovery && options_.zigbee.homeassistant.enabled) {
      for (const auto& m : discovery::BridgeDiscovery(DiscoveryContextLocked())) {
        client_.Publish(m.topic, Dump(m.payload), 1, /*retain=*/true);
      }
    }
    for (const auto& ieee : order_) {
      DeviceRecord& rec = devices_.at(ieee);
      if (discovery) PublishDiscoveryLocked(rec);
      if (!rec.state.empty() || rec.linkquality) PublishStateLocked(rec);
      if (rec.last_seen) PublishAvailabilityLocked(rec, AvailableLocked(rec), /*force=*/true);
    }
  }

  // ---- device records (callers hold mu_) ----

  DeviceRecord& UpsertLocked(const DeviceInfo& info) {
    auto [it, inserted] = devices_.try_emplace(info.ieee_address);
    DeviceRecord& rec = it->second;
    if (inserted) order_.push_back(info.ieee_address);
    if (!inserted && rec.info.friendly_name != info.friendly_name) RemoveMetricsLocked(rec);
    rec.info = info;
    rec.definition = DefinitionFor(info);
    rec.exposes = rec.definition ? DeviceExposes(*rec.definition) : json::array();
    EnsureMetricsLocked(rec);
    return rec;
  }

  // The last state of a device from state_file, with its series, as if it had just reported it.
  void RestoreStateLocked(DeviceRecord& rec, json& saved_states) {
    auto it = saved_states.find(rec.info.ieee_address);
    if (it == saved_states.end() || !it->is_object()) return;
    json state = std::move(*it);
    if (auto lqi = state.find("linkquality"); lqi != state.end()) {
      if (lqi->is_number_integer()) rec.linkquality = lqi->get<int>();
      state.erase(lqi);
    }
    rec.state = std::move(state);
    UpdateStateMetricsLocked(rec, rec.state);
  }

  json LoadStates() {
    if (options_.state_file.empty()) return json::object();
    std::error_code ec;
    if (!std::filesystem::exists(options_.state_file, ec)) return json::object();
    auto text = ReadFileToString(options_.state_file);
    if (!text.ok()) {
      log_->warn("zigbee bridge: cannot read the saved device states, starting without them: {}",
                 text.status().ToString());
      return json::object();
    }
    json states = json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (!states.is_object()) {
      log_->warn("zigbee bridge: {} is not a JSON object of device states; starting without them (the file "
                 "is rewritten within {} s)",
                 options_.state_file.string(),
                 std::chrono::duration_cast<std::chrono::seconds>(options_.state_save_interval).count());
      return json::object();
    }
    return states;
  }

  // Writes state_file when a state changed since the last write. The snapshot is taken under mu_; the
  // write (with its fsync) runs outside it, so reports never wait for the disk.
  void SaveStates() {
    if (options_.state_file.empty()) return;
    json states = json::object();
    {
      std::lock_guard lock(mu_);
      if (!states_dirty_) return;
      states_dirty_ = false;
      for (const auto& [ieee, rec] : devices_) {
        if (rec.state.empty() && !rec.linkquality) continue;
        json state = rec.state;
        if (rec.linkquality) state["linkquality"] = *rec.linkquality;
        states[ieee] = std::move(state);
      }
    }
    if (Status s = WriteFileAtomically(options_.state_file, Dump(states)); !s.ok()) {
      limiter_.Warn(fmt::format("zigbee bridge: saving the device states failed (retrying): {}", s.ToString()));
      std::lock_guard lock(mu_);
      states_dirty_ = true;
    }
  }

  void EnsureMetricsLocked(DeviceRecord& rec) {
    const std::map<std::string, std::string> labels = {{"device", rec.info.friendly_name}};
    if (!rec.last_seen_gauge) rec.last_seen_gauge = &last_seen_family_->Add(labels);
    if (!rec.lqi_gauge) rec.lqi_gauge = &lqi_family_->Add(labels);
    if (!rec.available_gauge) rec.available_gauge = &available_family_->Add(labels);
  }

  void RemoveMetricsLocked(DeviceRecord& rec) {
    for (auto& [property, gauge] : rec.state_gauges) state_family_->Remove(gauge);
    rec.state_gauges.clear();
    if (rec.last_seen_gauge) last_seen_family_->Remove(rec.last_seen_gauge);
    if (rec.lqi_gauge) lqi_family_->Remove(rec.lqi_gauge);
    if (rec.available_gauge) available_family_->Remove(rec.available_gauge);
    rec.last_seen_gauge = rec.lqi_gauge = rec.available_gauge = nullptr;
  }

  void UpdateStateMetricsLocked(DeviceRecord& rec, const json& delta) {
    for (auto it = delta.begin(); it != delta.end(); ++it) {
      const json* expose = FindExpose(rec.exposes, it.key());
      // Only exposed properties become series: the device database bounds the cardinality.
      if (expose == nullptr || it.key() == "linkquality") continue;
      std::optional<double> value;
      if (it->is_number()) value = it->get<double>();
      if (it->is_boolean()) value = it->get<bool>() ? 1 : 0;
      if (it->is_string() && (*it == "ON" || *it == "OFF")) value = *it == "ON" ? 1 : 0;
      if (!value) continue;
      const std::string property = MetricProperty(it.key(), expose);
      auto [g, inserted] = rec.state_gauges.try_emplace(property, nullptr);
      if (inserted) g->second = &state_family_->Add({{"device", rec.info.friendly_name}, {"property", property}});
      g->second->Set(*value);
    }
  }

  void EraseLocked(const std::string& ieee) {
    auto it = devices_.find(ieee);
    if (it == devices_.end()) return;
    DeviceRecord& rec = it->second;
    ClearDiscoveryLocked(rec);
    Publish(rec.info.friendly_name, "", /*retain=*/true, 1);
    if (options_.zigbee.availability.enabled) Publish(rec.info.friendly_name + "/availability", "", true, 1);
    RemoveMetricsLocked(rec);
    devices_.erase(it);
    states_dirty_ = true;
    order_.erase(std::remove(order_.begin(), order_.end(), ieee), order_.end());
  }

  DeviceRecord* ResolveLocked(const std::string& id) {
    if (auto it = devices_.find(id); it != devices_.end()) return &it->second;
    for (auto& [ieee, rec] : devices_) {
      if (rec.info.friendly_name == id) return &rec;
    }
    return nullptr;
  }

  // ---- network events (network thread; never block) ----

  void OnJoined(const DeviceInfo& info) {
    if (!running_) return;
    std::lock_guard lock(mu_);
    UpsertLocked(info);
    last_joined_ = info.ieee_address;
    MarkDevicesDirtyLocked();
    Publish("bridge/event", Dump(DeviceJoinedEvent(info)), /*retain=*/false);
  }

  void OnInterview(const DeviceInfo& info, std::string_view status) {
    if (!running_) return;
    std::lock_guard lock(mu_);
    DeviceRecord& rec = UpsertLocked(info);
    MarkDevicesDirtyLocked();
    Publish("bridge/event", Dump(DeviceInterviewEvent(info, status)), /*retain=*/false);
    if (status == "successful") {
      PublishDiscoveryLocked(rec);
      if (!rec.last_seen) rec.last_seen = SystemClock::now();  // it just answered the interview
      PublishAvailabilityLocked(rec, true, /*force=*/false);
    }
  }

  void OnLeave(const std::string& ieee, const std::string& name) {
    if (!running_) return;
    std::lock_guard lock(mu_);
    EraseLocked(ieee);
    MarkDevicesDirtyLocked();
    Publish("bridge/event", Dump(DeviceLeaveEvent(ieee, name)), /*retain=*/false);
  }

  void OnMessage(const std::string& ieee, const json& state, std::optional<int> lqi) {
    if (!running_) return;
    std::lock_guard lock(mu_);
    auto it = devices_.find(ieee);
    if (it == devices_.end()) return;  // not in the database (yet): nothing to publish under
    DeviceRecord& rec = it->second;
    rec.last_seen = SystemClock::now();
    rec.last_seen_gauge->Set(std::chrono::duration<double>(rec.last_seen->time_since_epoch()).count());
    if (lqi) {
      rec.linkquality = *lqi;
      rec.lqi_gauge->Set(*lqi);
    }
    if (state.is_object()) {
      for (auto kv = state.begin(); kv != state.end(); ++kv) rec.state[kv.key()] = kv.value();
      UpdateStateMetricsLocked(rec, state);
    }
    PublishAvailabilityLocked(rec, true, /*force=*/false);
    if (state.is_object() && !state.empty()) PublishStateLocked(rec);
  }

  // ---- MQTT side ----

  // Runs on the MQTT client's thread: classify cheaply, enqueue, never block.
  void OnMqtt(const Message& m) {
    if (!running_) return;
    const std::string prefix = options_.base_topic + "/";
    if (m.topic.rfind(prefix, 0) != 0) return;
    const std::string rest = m.topic.substr(prefix.size());
    Work work;
    if (rest.rfind("bridge/request/", 0) == 0) {
      work = {WorkKind::kRequest, rest.substr(15), "", m.payload};
    } else if (rest.rfind("bridge/", 0) == 0) {
      return;  // our own bridge/* publications
    } else if (!ClassifyDeviceTopic(rest, work)) {
      return;  // device state and availability echoes
    }
    work.payload = m.payload;
    if (m.payload.size() > options_.max_payload_bytes) {
      rejected_["oversized"]->Increment();
      const std::string what = fmt::format("zigbee bridge: ignored a {} byte message on '{}' (limit {} bytes)",
                                           m.payload.size(), m.topic, options_.max_payload_bytes);
      if (work.kind == WorkKind::kRequest) {
        Respond(work.name, json(), InvalidArgumentError(what).WithContext("payload too large"));
      } else {
        limiter_.Warn(what);
      }
      return;
    }
    Enqueue(std::move(work));
  }

  static bool ClassifyDeviceTopic(const std::string& rest, Work& work) {
    for (const char* verb : {"/set", "/get"}) {
      const WorkKind kind = verb[1] == 's' ? WorkKind::kSet : WorkKind::kGet;
      if (rest.size() > 4 && rest.compare(rest.size() - 4, 4, verb) == 0) {
        work = {kind, rest.substr(0, rest.size() - 4), "", ""};
        return true;
      }
      const auto pos = rest.rfind(std::string(verb) + "/");
      if (pos != std::string::npos && pos > 0 && rest.find('/', pos + 5) == std::string::npos && pos + 5 < rest.size()) {
        work = {kind, rest.substr(0, pos), rest.substr(pos + 5), ""};
        return true;
      }
    }
    return false;
  }

  void Enqueue(Work work) {
    bool dropped = false;
    {
      std::lock_guard lock(q_mu_);
      if (stopping_) return;
      if (queue_.size() >= options_.queue_limit) {
        dropped = true;
      } else {
        queue_.push_back(std::move(work));
        depth_->Set(static_cast<double>(queue_.size()));
      }
    }
    if (!dropped) {
      q_cv_.notify_one();
      return;
    }
    dropped_->Increment();
    if (work.kind == WorkKind::kRequest) {
      // Every request is answered, even one the bridge has no room for.
      Respond(work.name, ParseJson(work.payload).value_or(json()),
              UnavailableError("the bridge is busy (work queue full); retry later"));
    } else {
      limiter_.Warn("zigbee bridge: work queue full, dropped a message for '" + work.name + "'");
    }
  }

  void WorkerLoop() {
    auto next_tick = Clock::now();
    while (true) {
      std::optional<Work> work;
      {
        std::unique_lock lock(q_mu_);
        q_cv_.wait_until(lock, next_tick, [&] { return stopping_ || !queue_.empty() || wake_; });
        if (stopping_) return;
        wake_ = false;
        if (!queue_.empty()) {
          work = std::move(queue_.front());
          queue_.pop_front();
          depth_->Set(static_cast<double>(queue_.size()));
        }
      }
      if (work) Handle(*work);
      FlushDevices();
      if (Clock::now() >= next_tick) {
        Tick();
        next_tick = Clock::now() + options_.availability_check_interval;
      }
      if (Clock::now() >= next_state_save_) {
        SaveStates();
        next_state_save_ = Clock::now() + options_.state_save_interval;
      }
    }
  }

  void Handle(const Work& work) {
    // The boundary for library exceptions: a bug triggered by odd input costs one message, not the daemon.
    try {
      HandleUnguarded(work);
    } catch (const std::exception& e) {
      limiter_.Warn(fmt::format("zigbee bridge: dropped a message for '{}': {}", work.name, e.what()));
    }
  }

  void HandleUnguarded(const Work& work) {
    switch (work.kind) {
      case WorkKind::kRequest: HandleRequest(work); break;
      case WorkKind::kSet: HandleSet(work, /*set=*/true); break;
      case WorkKind::kGet: HandleSet(work, /*set=*/false); break;
      case WorkKind::kHomeAssistantStatus: {
        std::string s = work.payload;
        std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
        if (s == "online") {
          log_->info("HomeAssistant came online; re-announcing discovery and states");
          const auto end = network_.PermitJoinEnd();
          std::lock_guard lock(mu_);
          AnnounceLocked(/*discovery=*/true, end);
        }
        break;
      }
      case WorkKind::kReconnected: {
        // The client re-publishes retained messages itself; states that are not retained are sent
        // again so consumers see the current values after the broker came back.
        std::lock_guard lock(mu_);
        for (const auto& ieee : order_) {
          DeviceRecord& rec = devices_.at(ieee);
          if (!RetainState(rec) && (!rec.state.empty() || rec.linkquality)) PublishStateLocked(rec);
        }
        break;
      }
    }
  }

  void Tick() {
    auto end = network_.PermitJoinEnd();
    if (end && *end <= SystemClock::now()) end.reset();
    std::lock_guard lock(mu_);
    if (options_.zigbee.availability.enabled) {
      for (const auto& ieee : order_) {
        DeviceRecord& rec = devices_.at(ieee);
        if (rec.last_seen) PublishAvailabilityLocked(rec, AvailableLocked(rec), /*force=*/false);
      }
    }
    // Permit join ended (or changed) without a request: bridge/info follows, as in zigbee2mqtt.
    if (end != published_permit_join_end_) PublishInfoLocked(end);
  }

  void Respond(const std::string& name, const json& request, const StatusOr<json>& result) {
    const bool known = kKnownRequests.count(name) != 0;
    const std::string status = result.ok() ? "ok" : "error";
    requests_family_->Add({{"request", known ? name : "unknown"}, {"status", status}}).Increment();
    const json response = result.ok() ? OkResponse(request, *result)
                                      : ErrorResponse(request, std::string(result.status().message()));
    // A request name with wildcard characters cannot be a topic; answer on the bare response topic.
    const bool valid_topic = name.find_first_of("+#") == std::string::npos && !name.empty();
    client_.Publish(options_.base_topic + "/bridge/response" + (valid_topic ? "/" + name : ""), Dump(response),
                    options_.qos, false);
    if (!result.ok()) log_->warn("zigbee bridge: request '{}' failed: {}", name, result.status().message());
  }

  void HandleRequest(const Work& work) {
    // zigbee2mqtt's utils.parseJSON(message, message): JSON when it parses, the raw text otherwise.
    const json request = ParseJson(work.payload).value_or(json(work.payload));
    StatusOr<json> result = InvalidArgumentError("Unknown request '" + work.name + "'");
    if (work.name == "permit_join") result = PermitJoin(request);
    else if (work.name == "device/rename") result = Rename(request);
    else if (work.name == "device/remove") result = Remove(request);
    else if (work.name == "device/options") result = Options(request);
    else if (work.name == "health_check") result = json{{"healthy", network_health_ok()}};
    else if (work.name == "restart") result = json::object();
    Respond(work.name, request, result);
    if (work.name == "restart") {
      if (options_.restart) {
        options_.restart();
      } else {
        const auto end = network_.PermitJoinEnd();
        std::lock_guard lock(mu_);
        AnnounceLocked(/*discovery=*/true, end);
      }
    }
  }

  bool network_health_ok() const { return true; }

  StatusOr<json> PermitJoin(const json& request) {
    std::optional<long long> time;
    auto parse = [&](const json& v) -> std::optional<long long> {
      if (v.is_number_integer()) return v.get<long long>();
      if (v.is_number_float()) return static_cast<long long>(v.get<double>());
      if (v.is_string()) {
        const std::string s = v.get<std::string>();
        if (s.empty() || s.size() > 9) return std::nullopt;
        char* end = nullptr;
        long long n = std::strtoll(s.c_str(), &end, 10);
        if (end == s.c_str()) return std::nullopt;
        return n;
      }
      return std::nullopt;
    };
    if (request.is_object()) {
      if (!request.contains("time")) return InvalidArgumentError("Invalid payload");
      time = parse(request["time"]);
      if (request.contains("device")) return UnimplementedError("permit_join via a specific device is not supported");
    } else {
      time = parse(request);
    }
    if (!time || *time < 0 || *time > 254) {
      return InvalidArgumentError("Invalid payload: 'time' must be a number of seconds from 0 to 254");
    }
    RETURN_IF_ERROR(network_.PermitJoin(std::chrono::seconds(*time)));
    {
      const auto end = network_.PermitJoinEnd();
      std::lock_guard lock(mu_);
      PublishInfoLocked(end);
    }
    return json{{"time", *time}};
  }

  static Status ValidateFriendlyName(const std::string& name) {
    if (name.empty()) return InvalidArgumentError("friendly_name must not be empty");
    if (name.size() > 255) return InvalidArgumentError("friendly_name is longer than 255 characters");
    if (name.find_first_of("+#") != std::string::npos) return InvalidArgumentError("friendly_name must not contain + or #");
    if (name.front() == '/' || name.back() == '/') return InvalidArgumentError("friendly_name must not start or end with /");
    if (name.find('\0') != std::string::npos) return InvalidArgumentError("friendly_name must not contain NUL");
    if (name == "bridge" || name.rfind("bridge/", 0) == 0) return InvalidArgumentError("friendly_name 'bridge' is reserved");
    for (const char* suffix : {"/set", "/get", "/availability"}) {
      const std::string s = suffix;
      if (name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
        return InvalidArgumentError("friendly_name must not end with " + s);
      }
      if (name.find(s + "/") != std::string::npos) return InvalidArgumentError("friendly_name must not contain " + s + "/");
    }
    return OkStatus();
  }

  StatusOr<json> Rename(const json& request) {
    if (!request.is_object()) return InvalidArgumentError("Invalid payload");
    const bool last = request.value("last", json(false)) == json(true);
    if ((!request.contains("from") && !last) || !request.contains("to")) return InvalidArgumentError("Invalid payload");
    if (!request["to"].is_string()) return InvalidArgumentError("'to' must be a string");
    std::string to = request["to"].get<std::string>();
    to.erase(0, to.find_first_not_of(" \t"));
    to.erase(to.find_last_not_of(" \t") + 1);
    RETURN_IF_ERROR(ValidateFriendlyName(to));
    const bool ha_rename = request.value("homeassistant_rename", json(false)) == json(true);
    std::string ieee, from_name;
    {
      std::lock_guard lock(mu_);
      std::string from;
      if (last) {
        if (last_joined_.empty()) return InvalidArgumentError("No device has joined since start");
        from = last_joined_;
      } else {
        if (!request["from"].is_string()) return InvalidArgumentError("'from' must be a string");
        from = request["from"].get<std::string>();
      }
      DeviceRecord* rec = ResolveLocked(from);
      if (rec == nullptr) return NotFoundError("Device '" + from + "' does not exist");
      if (DeviceRecord* other = ResolveLocked(to); other != nullptr && other != rec) {
        return AlreadyExistsError("friendly_name '" + to + "' is already in use");
      }
      ieee = rec->info.ieee_address;
      from_name = rec->info.friendly_name;
    }
    RETURN_IF_ERROR(network_.Rename(ieee, to));
    std::lock_guard lock(mu_);
    auto it = devices_.find(ieee);
    if (it == devices_.end()) return NotFoundError("Device '" + ieee + "' left while it was renamed");
    DeviceRecord& rec = it->second;
    // Clear the retained topics under the old name, then publish everything under the new one.
    Publish(from_name, "", /*retain=*/true, 1);
    if (options_.zigbee.availability.enabled) Publish(from_name + "/availability", "", true, 1);
    if (ha_rename) ClearDiscoveryLocked(rec);
    DeviceInfo info = rec.info;
    info.friendly_name = to;
    UpsertLocked(info);
    UpdateStateMetricsLocked(rec, rec.state);
    if (rec.linkquality) rec.lqi_gauge->Set(*rec.linkquality);
    if (rec.last_seen) rec.last_seen_gauge->Set(std::chrono::duration<double>(rec.last_seen->time_since_epoch()).count());
    PublishDevicesLocked();
    PublishDiscoveryLocked(rec);
    if (!rec.state.empty() || rec.linkquality) PublishStateLocked(rec);
    if (rec.last_seen) PublishAvailabilityLocked(rec, AvailableLocked(rec), /*force=*/true);
    return json{{"from", from_name}, {"to", to}, {"homeassistant_rename", ha_rename}};
  }

  StatusOr<json> Remove(const json& request) {
    std::string id;
    bool force = false, block = false;
    if (request.is_object()) {
      if (!request.contains("id") || !request["id"].is_string()) return InvalidArgumentError("Invalid payload");
      id = request["id"].get<std::string>();
      force = request.value("force", json(false)) == json(true);
      block = request.value("block", json(false)) == json(true);
    } else if (request.is_string()) {
      id = request.get<std::string>();
    } else {
      return InvalidArgumentError("Invalid payload");
    }
    std::string ieee, name;
    {
      std::lock_guard lock(mu_);
      DeviceRecord* rec = ResolveLocked(id);
      if (rec == nullptr) return NotFoundError("Device '" + id + "' does not exist");
      ieee = rec->info.ieee_address;
      name = rec->info.friendly_name;
    }
    if (Status s = network_.Remove(ieee, force); !s.ok()) {
      return InternalError(fmt::format("Failed to remove device '{}' (block: {}, force: {}) ({})", name, block, force,
                                       s.message()));
    }
    std::lock_guard lock(mu_);
    EraseLocked(ieee);
    PublishDevicesLocked();
    return json{{"id", id}, {"block", block}, {"force", force}, {"keep_config", false}, {"clear_cache", false}};
  }

  StatusOr<json> Options(const json& request) {
    if (!request.is_object() || !request.contains("id") || !request["id"].is_string() || !request.contains("options") ||
        !request["options"].is_object()) {
      return InvalidArgumentError("Invalid payload");
    }
    const std::string id = request["id"].get<std::string>();
    std::string ieee;
    json from;
    {
      std::lock_guard lock(mu_);
      DeviceRecord* rec = ResolveLocked(id);
      if (rec == nullptr) return NotFoundError("Device '" + id + "' does not exist");
      ieee = rec->info.ieee_address;
      from = rec->info.options;
    }
    json to = from;
    to.merge_patch(request["options"]);  // null removes a key, objects merge, as zigbee2mqtt's settings do
    for (const char* reserved : {"friendly_name", "friendlyName", "ID", "type", "devices"}) to.erase(reserved);
    RETURN_IF_ERROR(network_.SetOptions(ieee, to));
    std::lock_guard lock(mu_);
    auto it = devices_.find(ieee);
    if (it == devices_.end()) return NotFoundError("Device '" + id + "' left while its options changed");
    DeviceInfo info = it->second.info;
    info.options = to;
    DeviceRecord& rec = UpsertLocked(info);
    PublishDevicesLocked();
    if (to.value("homeassistant", json(true)) == json(false)) {
      ClearDiscoveryLocked(rec);
    } else {
      PublishDiscoveryLocked(rec);
    }
    return json{{"from", from}, {"to", to}, {"id", id}, {"restart_required", false}};
  }

  // /set and /get: validate against the device's exposes, then hand to the network.
  void HandleSet(const Work& work, bool set) {
    const char* verb = set ? "set" : "get";
    std::string ieee;
    json exposes, cached;
    bool optimistic = true;
    {
      std::lock_guard lock(mu_);
      DeviceRecord* rec = ResolveLocked(work.name);
      if (rec == nullptr) {
        Reject("unknown_device", fmt::format("Entity '{}' is unknown", work.name));
        return;
      }
      if (!rec->definition) {
        Reject("unknown_device", fmt::format("Cannot publish to unsupported device '{}'", work.name));
        return;
      }
      ieee = rec->info.ieee_address;
      exposes = rec->exposes;
      cached = rec->state;
      optimistic = rec->info.options.value("optimistic", json(true)) != json(false);
    }
    json command;
    if (!work.attribute.empty()) {
      command = {{work.attribute, ParseJson(work.payload).value_or(json(work.payload))}};
    } else if (auto parsed = ParseJson(work.payload); parsed && parsed->is_object()) {
      command = std::move(*parsed);
    } else if (IsStateWord(work.payload)) {
      command = {{"state", work.payload}};
    } else {
      Reject("malformed", fmt::format("Invalid message '{}' on {}/{}, skipping", work.payload.substr(0, 200),
                                      work.name, verb));
      return;
    }
    if (Status s = ValidateCommand(command, exposes, set); !s.ok()) {
      Reject("invalid_command", fmt::format("Publish '{}' to '{}' failed: {}", verb, work.name, s.message()));
      return;
    }
    if (set) {
      if (auto st = command.find("state"); st != command.end() && st->is_string()) {
        std::string v = st->get<std::string>();
        std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::toupper(c); });
        *st = v;
      }
    }
    {
      std::lock_guard lock(mu_);
      auto it = devices_.find(ieee);
      if (it == devices_.end()) {
        Reject("unknown_device", fmt::format("Entity '{}' is unknown", work.name));
        return;
      }
      if (it->second.commands_in_flight >= kMaxCommandsInFlight) {
        Reject("device_busy", fmt::format("Publish '{}' to '{}' failed: {} earlier commands are still waiting for "
                                          "the device (out of range, or without power?)",
                                          verb, work.name, kMaxCommandsInFlight));
        return;
      }
      ++it->second.commands_in_flight;
    }
    // The worker does not wait for the device: one that stopped answering must not hold up commands to
    // the others or the bridge requests. The outcome comes back on the network's thread.
    json optimistic_state = set && optimistic ? OptimisticState(command, cached) : json::object();
    auto done = [gate = gate_, verb = std::string(verb), name = work.name, ieee,
                 optimistic_state = std::move(optimistic_state)](Status sent) {
      gate->Call([&](Impl& b) { b.OnCommandDone(sent, verb, name, ieee, optimistic_state); });
    };
    if (set) {
      network_.SendCommand(ieee, command, std::move(done));
    } else {
      network_.Read(ieee, command, std::move(done));
    }
  }

  void OnCommandDone(const Status& sent, const std::string& verb, const std::string& name, const std::string& ieee,
                     const json& optimistic_state) {
    std::lock_guard lock(mu_);
    auto it = devices_.find(ieee);
    if (it != devices_.end() && it->second.commands_in_flight > 0) --it->second.commands_in_flight;
    if (!sent.ok()) {
      Reject("command_failed", fmt::format("Publish '{}' to '{}' failed: '{}'", verb, name, sent.message()));
      return;
    }
    if (optimistic_state.empty() || it == devices_.end()) return;
    for (auto kv = optimistic_state.begin(); kv != optimistic_state.end(); ++kv) it->second.state[kv.key()] = kv.value();
    UpdateStateMetricsLocked(it->second, optimistic_state);
    PublishStateLocked(it->second);
  }

  static Status ValidateCommand(const json& command, const json& exposes, bool set) {
    if (command.empty()) return InvalidArgumentError("empty command");
    const int need = set ? kAccessSet : (kAccessGet | kAccessState);
    for (auto it = command.begin(); it != command.end(); ++it) {
      const std::string& key = it.key();
      if (set && key == "transition") {
        if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 6553) {
          return InvalidArgumentError("'transition' must be a number of seconds from 0 to 6553");
        }
        continue;
      }
      const json* expose = FindExpose(exposes, key);
      if (expose == nullptr || (expose->value("access", 0) & need) == 0) {
        return InvalidArgumentError(fmt::format("No converter available for '{}' ({})", key, Dump(*it)));
      }
      if (!set) continue;
      const std::string type = expose->value("type", "");
      if (type == "numeric") {
        if (!it->is_number()) return InvalidArgumentError(fmt::format("'{}' must be a number, got {}", key, Dump(*it)));
        const double v = it->get<double>();
        if ((expose->contains("value_min") && v < (*expose)["value_min"].get<double>()) ||
            (expose->contains("value_max") && v > (*expose)["value_max"].get<double>())) {
          return InvalidArgumentError(fmt::format("'{}' {} is out of range {}..{}", key, v,
                                                  expose->value("value_min", json()).dump(),
                                                  expose->value("value_max", json()).dump()));
        }
      } else if (type == "binary") {
        std::string v = it->is_string() ? it->get<std::string>() : Dump(*it);
        std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::toupper(c); });
        if (v != "ON" && v != "OFF" && !(v == "TOGGLE" && expose->contains("value_toggle"))) {
          return InvalidArgumentError(fmt::format("'{}' must be ON, OFF or TOGGLE, got {}", key, Dump(*it)));
        }
      } else if (type == "composite") {
        if (!it->is_object()) return InvalidArgumentError(fmt::format("'{}' must be an object", key));
        for (const auto& f : (*expose)["features"]) {
          const std::string p = f.value("property", "");
          if (!it->contains(p) || !(*it)[p].is_number()) {
            return InvalidArgumentError(fmt::format("'{}' needs a number '{}'", key, p));
          }
          const double v = (*it)[p].get<double>();
          if (key == "color" && (v < 0 || v > 1)) return InvalidArgumentError("color x and y must be within 0..1");
        }
        for (auto f = it->begin(); f != it->end(); ++f) {
          if (FindExpose((*expose)["features"], f.key()) == nullptr) {
            return InvalidArgumentError(fmt::format("'{}' has no feature '{}'", key, f.key()));
          }
        }
      }
    }
    return OkStatus();
  }

  // What zigbee2mqtt's converters return as `state` after a successful command (light/on_off,
  // brightness, color_temp, color).
  static json OptimisticState(const json& command, const json& cached) {
    json state = json::object();
    if (auto s = command.find("state"); s != command.end() && s->is_string()) {
      std::string v = s->get<std::string>();
      if (v == "TOGGLE") v = cached.contains("state") && cached["state"] == "ON" ? "OFF" : "ON";
      state["state"] = v;
    }
    if (auto b = command.find("brightness"); b != command.end() && b->is_number()) {
      const int v = static_cast<int>(b->get<double>());
      state["brightness"] = v;
      state["state"] = v == 0 ? "OFF" : "ON";
    }
    if (auto ct = command.find("color_temp"); ct != command.end() && ct->is_number()) {
      state["color_temp"] = static_cast<int>(ct->get<double>());
      state["color_mode"] = "color_temp";
    }
    if (auto c = command.find("color"); c != command.end() && c->is_object()) {
      state["color"] = {{"x", (*c)["x"]}, {"y", (*c)["y"]}};
      state["color_mode"] = "xy";
    }
    return state;
  }

  // A rejected device command: counted, logged (rate-limited) and sent to bridge/logging as
  // zigbee2mqtt does with its error log lines.
  void Reject(const std::string& reason, const std::string& message) {
    rejected_[reason]->Increment();
    limiter_.Warn("zigbee bridge: " + message);
    client_.Publish(options_.base_topic + "/bridge/logging",
                    Dump(json{{"level", "error"}, {"message", message}, {"namespace", "z2m"}}), 0, false);
  }

  static inline const std::set<std::string> kKnownRequests = {"permit_join", "device/rename", "device/remove",
                                                              "device/options", "health_check", "restart"};

  BridgeOptions options_;
  Client& client_;
  ZigbeeNetworkView& network_;
  std::shared_ptr<spdlog::logger> log_;
  WarningLimiter limiter_;

  std::unique_ptr<prometheus::Registry> own_registry_;
  prometheus::Family<prometheus::Gauge>* state_family_;
  prometheus::Family<prometheus::Gauge>* last_seen_family_;
  prometheus::Family<prometheus::Gauge>* lqi_family_;
  prometheus::Family<prometheus::Gauge>* available_family_;
  prometheus::Family<prometheus::Counter>* rejected_family_;
  prometheus::Family<prometheus::Counter>* requests_family_;
  std::map<std::string, prometheus::Counter*> rejected_;
  prometheus::Counter* dropped_;
  prometheus::Gauge* depth_;
  std::shared_ptr<Gate<Impl>> gate_ = std::make_shared<Gate<Impl>>(this);

  std::mutex lifecycle_mu_;
  bool started_ = false;
  std::atomic<bool> running_{false};

  // Device records and what was published about them.
  std::mutex mu_;
  CoordinatorInfo coordinator_;
  std::map<std::string, DeviceRecord> devices_;  // key: IEEE address
  std::vector<std::string> order_;               // join order, as bridge/devices lists them
  std::string last_joined_;
  std::optional<SystemClock::time_point> published_permit_join_end_;
  bool devices_dirty_ = false;
  bool states_dirty_ = false;
  Clock::time_point next_state_save_ = Clock::now();  // worker only

  // MQTT → worker queue.
  std::mutex q_mu_;
  std::condition_variable q_cv_;
  std::deque<Work> queue_;
  bool stopping_ = false;
  bool wake_ = false;  // devices_dirty_ was set
  std::thread worker_;
};

BridgeOptions BridgeOptionsFromConfig(const config::Config& config, std::string version) {
  BridgeOptions o;
  o.base_topic = config.mqtt.base_topic;
  o.qos = config.mqtt.qos;
  o.zigbee = config.zigbee;
  o.version = std::move(version);
  return o;
}

StatusOr<std::unique_ptr<Bridge>> Bridge::Create(BridgeOptions options, Client& client, ZigbeeNetworkView& network,
                                                 prometheus::Registry* registry) {
  if (options.base_topic.empty() || options.base_topic.find_first_of("+#") != std::string::npos) {
    return InvalidArgumentError("zigbee bridge: mqtt.base_topic '" + options.base_topic +
                                "' must be non-empty and free of + and #");
  }
  if (options.zigbee.homeassistant.enabled && options.zigbee.homeassistant.discovery_topic == options.base_topic) {
    return InvalidArgumentError("zigbee bridge: zigbee.homeassistant.discovery_topic must differ from mqtt.base_topic");
  }
  if (options.queue_limit == 0) return InvalidArgumentError("zigbee bridge: queue_limit must be at least 1");
  if (options.qos < 0 || options.qos > 2) return InvalidArgumentError("zigbee bridge: qos must be 0, 1 or 2");
  try {
    return std::unique_ptr<Bridge>(new Bridge(std::make_unique<Impl>(std::move(options), client, network, registry)));
  } catch (const std::exception& e) {
    // prometheus-cpp throws when a metric family is registered twice with other labels.
    return InternalError(std::string("zigbee bridge: cannot register metrics: ") + e.what());
  }
}

Bridge::Bridge(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Bridge::~Bridge() { Stop(); }
Status Bridge::Start() { return impl_->Start(); }
void Bridge::Stop() {
  if (impl_) impl_->Stop();
}
Health Bridge::health() const { return impl_->health(); }

namespace {

class BridgeModule : public Module {
 public:
  BridgeModule(std::unique_ptr<Module> network, std::unique_ptr<Bridge> bridge)
      : network_(std::move(network)), bridge_(std::move(bridge)) {}
  ~BridgeModule() override { Stop(); }
  std::string_view name() const override { return "zigbee"; }
  Status Start() override {
    if (network_) RETURN_IF_ERROR(network_->Start());
    return bridge_->Start();
  }
  void Stop() override {
    bridge_->Stop();
    if (network_) network_->Stop();
  }
  Health health() const override {
    Health b = bridge_->health();
    Health n = network_ ? network_->health() : Health::Ok();
    return static_cast<int>(n.state) >= static_cast<int>(b.state) ? n : b;
  }

 private:
  std::unique_ptr<Module> network_;
  std::unique_ptr<Bridge> bridge_;
};

}  // namespace

std::unique_ptr<Module> MakeBridgeModule(std::unique_ptr<Module> network, std::unique_ptr<Bridge> bridge) {
  return std::make_unique<BridgeModule>(std::move(network), std::move(bridge));
}

}  // namespace edged::mqtt::bridge
