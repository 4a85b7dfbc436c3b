// The daemon's zigbee module end to end, in-process: the real ZNP coordinator logic (drivers/zigbee)
// on a real pseudo-terminal served by the in-process simulator, the zigbee2mqtt bridge on a real
// mosquitto. Join → interview of all five device types → reports as state JSON → /set switches the
// plug and dims the bulb; the pty vanishing and coming back while devices report; a restart from the
// device database.
#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <prometheus/registry.h>

#include "drivers/zigbee/device_db.h"
#include "drivers/zigbee/sim/simulator.h"
#include "mqtt/client.h"
#include "mqtt/zigbee_module/zigbee_module.h"
#include "tests/support/metrics_test_support.h"
#include "tests/support/mqtt_test_support.h"

namespace edged {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using std::chrono::milliseconds;

template <typename Predicate>
bool Eventually(Predicate predicate, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return predicate();
}


using test::MetricValue;

class ZigbeeModuleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = test::MosquittoBroker::Start();
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(*broker);
    auto probe = test::MqttProbe::Connect(*broker_, {"#"});
    ASSERT_TRUE(probe.ok()) << probe.status().ToString();
    probe_ = std::move(*probe);
    config_.mqtt = broker_->ClientConfig("edged_zigbee_module_test");
    config_.zigbee.enabled = true;
    config_.zigbee.serial.port = "simulator";
    config_.zigbee.permit_join = true;
  }

  void TearDown() override { StopModule(); }

  void StartModule() {
    registry_ = std::make_unique<prometheus::Registry>();
    auto client = mqtt::Client::Create(config_.mqtt, registry_.get());
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(*client);
    mqtt::zigbee_module::ZigbeeModuleOptions options;
    options.network.state_dir = dir_.path() / "zigbee";
    options.network.simulator_report_interval = 400ms;
    options.network.sreq_timeout = 2000ms;
    options.network.areq_timeout = 2000ms;
    options.network.reconnect_min = 50ms;
    options.network.reconnect_max = 400ms;
    auto module = mqtt::zigbee_module::NewZigbeeModule(config_, *client_, registry_.get(), std::move(options));
    ASSERT_TRUE(module.ok()) << module.status().ToString();
    module_ = std::move(*module);
    ASSERT_TRUE(module_->Start().ok());
    ASSERT_TRUE(client_->Start().ok());
    ASSERT_TRUE(Eventually([&] { return module_->network().coordinator_up(); }, 15s))
        << module_->health().message;
  }

  void StopModule() {
    if (module_) module_->Stop();
    if (client_) client_->Stop();
    module_.reset();
    client_.reset();
  }

  zigbee::sim::ZnpSimulator& Sim() { return *module_->network().simulator(); }

  std::string IeeeOf(const std::string& type) {
    for (const auto& d : Sim().Devices()) {
      if (d.type == type) return zigbee::detail::IeeeToString(d.ieee);
    }
    return "";
  }
  std::uint64_t RawIeeeOf(const std::string& type) {
    for (const auto& d : Sim().Devices()) {
      if (d.type == type) return d.ieee;
    }
    return 0;
  }

  int Interviewed() {
    int n = 0;
    for (const auto& d : module_->network().Devices()) n += d.interview_state == zigbee::InterviewState::kSuccessful;
    return n;
  }

  std::vector<zigbee::DeviceInfo> DatabaseOnDisk() {
    auto devices = zigbee::detail::LoadDevices(zigbee::detail::DeviceDatabasePath(dir_.path() / "zigbee"));
    EXPECT_TRUE(devices.ok()) << devices.status().ToString();
    return devices.ok() ? *devices : std::vector<zigbee::DeviceInfo>{};
  }

  void WaitAllInterviewed() {
    ASSERT_TRUE(Eventually([&] { return Interviewed() == 5; }, 20s))
        << Interviewed() << " of 5 interviewed; health: " << module_->health().message;
  }

  test::TempDir dir_{"edged-zigbee-module"};
  config::Config config_;
  std::unique_ptr<test::MosquittoBroker> broker_;
  std::unique_ptr<test::MqttProbe> probe_;
  std::unique_ptr<prometheus::Registry> registry_;
  std::unique_ptr<mqtt::Client> client_;
  std::unique_ptr<mqtt::zigbee_module::ZigbeeModule> module_;
};

TEST_F(ZigbeeModuleTest, JoinInterviewReportSwitchPlugDimBulb) {
  const auto t0 = std::chrono::steady_clock::now();
  StartModule();
  const auto up = std::chrono::steady_clock::now();
  WaitAllInterviewed();
  const auto interviewed = std::chrono::steady_clock::now();
  std::printf("coordinator up after %.0f ms, 5 devices interviewed after %.0f ms\n",
              std::chrono::duration<double, std::milli>(up - t0).count(),
              std::chrono::duration<double, std::milli>(interviewed - t0).count());
  EXPECT_TRUE(module_->health().state == HealthState::kOk) << module_->health().message;

  // Every device's model and power source came from the interview.
  std::map<std::string, std::string> models;
  for (const auto& d : module_->network().Devices()) {
    models[d.ieee_address] = d.model_id;
    EXPECT_FALSE(d.model_id.empty()) << d.ieee_address;
    EXPECT_FALSE(d.endpoints.empty()) << d.ieee_address;
  }
  EXPECT_EQ(models.size(), 5u);

  // Reports arrive decoded on MQTT, with link quality.
  const std::string climate = IeeeOf("climate_sensor");
  auto report = probe_->WaitFor("zigbee2mqtt/" + climate, [](const mqtt::Message& m) {
    json j = json::parse(m.payload, nullptr, false);
    return j.contains("temperature") && j.contains("humidity") && j.contains("linkquality");
  }, 10s);
  ASSERT_TRUE(report.has_value()) << probe_->Dump();

  // HomeAssistant discovery for the sensor, the switch and the light.
  EXPECT_TRUE(probe_->WaitFor("homeassistant/sensor/" + climate + "/temperature/config", {}, 10s)) << probe_->Dump();
  const std::string plug = IeeeOf("smart_plug");
  const std::string bulb = IeeeOf("color_bulb");
  EXPECT_TRUE(probe_->WaitFor("homeassistant/switch/" + plug + "/switch/config", {}, 10s)) << probe_->Dump();
  EXPECT_TRUE(probe_->WaitFor("homeassistant/light/" + bulb + "/light/config", {}, 10s)) << probe_->Dump();

  // /set switches the plug; the device's state and the published state follow.
  for (const char* state : {"ON", "OFF", "ON"}) {
    probe_->Clear();
    ASSERT_TRUE(probe_->Publish("zigbee2mqtt/" + plug + "/set", json{{"state", state}}.dump()).ok());
    auto m = probe_->WaitFor("zigbee2mqtt/" + plug, [&](const mqtt::Message& msg) {
      return test::PayloadJson(msg).value("state", "") == state;
    }, 5s);
    ASSERT_TRUE(m.has_value()) << state << "\n" << probe_->Dump();
    EXPECT_TRUE(Eventually([&] { return Sim().DeviceState(RawIeeeOf("smart_plug")).value("state", "") == state; }, 3s))
        << Sim().DeviceState(RawIeeeOf("smart_plug")).dump();
  }

  // /set dims the bulb.
  probe_->Clear();
  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/" + bulb + "/set", R"({"state":"ON","brightness":77})").ok());
  auto dimmed = probe_->WaitFor("zigbee2mqtt/" + bulb, [](const mqtt::Message& msg) {
    return test::PayloadJson(msg).value("brightness", -1) == 77;
  }, 5s);
  ASSERT_TRUE(dimmed.has_value()) << probe_->Dump();
  EXPECT_TRUE(Eventually([&] { return Sim().DeviceState(RawIeeeOf("color_bulb")).value("brightness", -1) == 77; }, 3s))
      << Sim().DeviceState(RawIeeeOf("color_bulb")).dump();

  // The database on disk has every device, interviewed.
  auto on_disk = DatabaseOnDisk();
  ASSERT_EQ(on_disk.size(), 5u);
  for (const auto& d : on_disk) EXPECT_EQ(d.interview_state, zigbee::InterviewState::kSuccessful) << d.ieee_address;

  EXPECT_EQ(MetricValue(*registry_, "edged_zigbee_coordinator_up"), 1.0);
  EXPECT_GT(MetricValue(*registry_, "edged_zigbee_frames_total", {{"direction", "in"}}).value_or(0), 10.0);
}

TEST_F(ZigbeeModuleTest, PtyVanishesAndReturnsWhileDevicesReport) {
  StartModule();
  WaitAllInterviewed();
  const std::string climate = IeeeOf("climate_sensor");
  constexpr int kCycles = 50;  // issue 4 asks for 50; each takes ~0.1 s
  double worst_ms = 0, total_ms = 0;
  for (int i = 0; i < kCycles; ++i) {
    Sim().VanishPort();
    ASSERT_TRUE(Eventually([&] { return !module_->network().coordinator_up(); }, 3s)) << "cycle " << i;
    EXPECT_EQ(module_->health().state, HealthState::kFailed);
    EXPECT_FALSE(module_->health().message.empty());
    std::this_thread::sleep_for(20ms);
    ASSERT_TRUE(Sim().RestorePort().ok());
    const auto restored = std::chrono::steady_clock::now();
    ASSERT_TRUE(Eventually([&] { return module_->network().coordinator_up(); }, 5s))
        << "cycle " << i << ": not back within 5 s: " << module_->health().message;
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - restored).count();
    worst_ms = std::max(worst_ms, ms);
    total_ms += ms;
    ASSERT_EQ(module_->network().Devices().size(), 5u) << "cycle " << i;
  }
  std::printf("%d pty cycles: recovery mean %.0f ms, worst %.0f ms\n", kCycles, total_ms / kCycles, worst_ms);
  // Nothing lost: the database on disk still has every device, and reports still arrive.
  EXPECT_EQ(DatabaseOnDisk().size(), 5u);
  EXPECT_EQ(Interviewed(), 5);
  probe_->Clear();
  auto report = probe_->WaitFor("zigbee2mqtt/" + climate, [](const mqtt::Message& m) {
    return json::parse(m.payload, nullptr, false).contains("temperature");
  }, 10s);
  EXPECT_TRUE(report.has_value()) << probe_->Dump();
}

TEST_F(ZigbeeModuleTest, RestartKeepsDevicesFromTheDatabase) {
  StartModule();
  WaitAllInterviewed();
  const std::string plug = IeeeOf("smart_plug");
  // A rename persists before the bridge answers.
  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/bridge/request/device/rename",
                              json{{"from", plug}, {"to", "kitchen_plug"}, {"transaction", "t1"}}.dump()).ok());
  auto renamed = probe_->WaitFor("zigbee2mqtt/bridge/response/device/rename", {}, 5s);
  ASSERT_TRUE(renamed.has_value()) << probe_->Dump();
  EXPECT_EQ(test::PayloadJson(renamed)["status"], "ok") << renamed->payload;
  StopModule();

  config_.zigbee.permit_join = false;  // nobody joins again: what is there comes from the file
  probe_->Clear();
  StartModule();
  auto devices = module_->network().Devices();
  ASSERT_EQ(devices.size(), 5u);
  bool found = false;
  for (const auto& d : devices) {
    EXPECT_EQ(d.interview_state, zigbee::InterviewState::kSuccessful) << d.ieee_address;
    found = found || (d.ieee_address == plug && d.friendly_name == "kitchen_plug");
  }
  EXPECT_TRUE(found);
  auto listed = probe_->WaitFor("zigbee2mqtt/bridge/devices", [](const mqtt::Message& m) {
    return m.payload.find("kitchen_plug") != std::string::npos;
  }, 5s);
  EXPECT_TRUE(listed.has_value()) << probe_->Dump();
}

}  // namespace
}  // namespace edged
