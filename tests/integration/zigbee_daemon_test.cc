// The edged daemon as a user runs it with `zigbee.serial.port: simulator`: the coordinator starts on the
// in-process simulator's pty, devices join and are interviewed, and zigbee2mqtt's topics appear on a
// real mosquitto — device state JSON, HomeAssistant discovery, bridge/devices; /set switches the plug.
// After a SIGKILL the device database brings every device back. The bridge on the real coordinator:
// every discovery config passes HomeAssistant's schema, the bulb dims, rename and remove clean up
// retained topics, and a broker restart re-announces everything.
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/bridge/ha_schema.h"
#include "tests/support/mqtt_test_support.h"

namespace edged {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using test::MosquittoBroker;
using test::MqttProbe;
using test::Subprocess;
using test::TempDir;

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}


class ZigbeeDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = MosquittoBroker::Start();
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();
    WriteConfig(true);
  }

  void WriteConfig(bool permit_join) {
    std::ofstream out(dir_.path() / "edged.yaml");
    out << "state_dir: " << (dir_.path() / "state").string() << "\n"
        << "mqtt:\n  server: " << broker_->url() << "\n  base_topic: zigbee2mqtt\n"
        << "  reconnect_min_delay: 1s\n  reconnect_max_delay: 2s\n"
        << "http:\n  address: 127.0.0.1\n  port: " << test::FreeTcpPort() << "\n"
        << "logging:\n  level: debug\n"
        << "zigbee:\n  enabled: true\n  permit_join: " << (permit_join ? "true" : "false") << "\n"
        << "  serial:\n    port: simulator\n"
        << "  simulator:\n    report_interval: 1s\n"
        << "storage:\n  enabled: false\n"
        << "labels:\n  enabled: false\n";
  }

  void StartDaemon() {
    auto process = Subprocess::Start({EDGED_BINARY, "--config", (dir_.path() / "edged.yaml").string()},
                                     dir_.path() / "edged.log");
    ASSERT_TRUE(process.ok()) << process.status().ToString();
    daemon_ = std::move(process).value();
  }

  // The ieee_address of the device whose model id contains `model` in the latest bridge/devices.
  std::string FindDevice(MqttProbe& probe, const std::string& model) {
    for (auto& m : probe.Messages("zigbee2mqtt/bridge/devices")) {
      json list = test::PayloadJson(m);
      if (!list.is_array()) continue;
      for (const auto& d : list) {
        if (d.value("model_id", "").find(model) != std::string::npos) return d.value("ieee_address", "");
      }
    }
    return "";
  }

  std::string Log() const { return ReadFile(dir_.path() / "edged.log"); }

  TempDir dir_{"edged-zigbee-daemon"};
  std::unique_ptr<MosquittoBroker> broker_;
  std::unique_ptr<Subprocess> daemon_;
};

// bridge/devices lists `n` interviewed devices.
std::function<bool(const mqtt::Message&)> InterviewedDevices(std::size_t n) {
  return [n](const mqtt::Message& m) {
    json list = test::PayloadJson(m);
    if (!list.is_array()) return false;
    std::size_t done = 0;
    for (const auto& d : list) done += d.value("type", "") != "Coordinator" && d.value("interview_completed", false);
    return done >= n;
  };
}

TEST_F(ZigbeeDaemon, SimulatorDevicesAppearOnMqttAndObeyCommands) {
  auto probe = MqttProbe::Connect(*broker_, {"#"});
  ASSERT_TRUE(probe.ok());
  const auto start = std::chrono::steady_clock::now();
  StartDaemon();
  ASSERT_TRUE((*probe)->WaitFor("zigbee2mqtt/bridge/state", test::PayloadIs(R"({"state":"online"})"), 10s)) << Log();
  auto devices = (*probe)->WaitFor("zigbee2mqtt/bridge/devices", InterviewedDevices(5), 30s);
  ASSERT_TRUE(devices.has_value()) << (*probe)->Dump() << "\nlog:\n" << Log();
  std::printf("5 devices interviewed %.0f ms after launch\n",
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());

  // A climate report as zigbee2mqtt state JSON, and its HomeAssistant discovery config.
  auto report = (*probe)->WaitFor("zigbee2mqtt/+", [](const mqtt::Message& m) {
    return test::PayloadJson(m).contains("temperature");
  }, 10s);
  ASSERT_TRUE(report.has_value()) << (*probe)->Dump();
  auto discovery = (*probe)->WaitFor("homeassistant/sensor/+/temperature/config", {}, 10s);
  ASSERT_TRUE(discovery.has_value()) << (*probe)->Dump();
  EXPECT_EQ(test::PayloadJson(*discovery).value("device_class", ""), "temperature");
  // Retained: a late subscriber gets it (the flag is only set on delivery to a new subscription).
  auto late_ha = MqttProbe::Connect(*broker_, {discovery->topic});
  ASSERT_TRUE(late_ha.ok());
  auto retained = (*late_ha)->WaitFor(discovery->topic, {}, 3s);
  ASSERT_TRUE(retained.has_value());
  EXPECT_TRUE(retained->retain);

  // /set switches the plug and the new state comes back.
  const std::string plug = FindDevice(**probe, "plug");
  ASSERT_FALSE(plug.empty()) << devices->payload;
  for (const char* state : {"ON", "OFF"}) {
    ASSERT_TRUE((*probe)->Publish("zigbee2mqtt/" + plug + "/set", json{{"state", state}}.dump()).ok());
    auto m = (*probe)->WaitFor("zigbee2mqtt/" + plug, [&](const mqtt::Message& msg) {
      return test::PayloadJson(msg).value("state", "") == state;
    }, 5s);
    ASSERT_TRUE(m.has_value()) << state << "\n" << (*probe)->Dump() << "\nlog:\n" << Log();
    (*probe)->Clear();
  }

  // SIGKILL loses nothing acknowledged: restarted without permitting joins, the database alone brings
  // every device back.
  daemon_->Signal(SIGKILL);
  ASSERT_TRUE(daemon_->Wait(5s).ok());
  WriteConfig(false);
  // The retained list from the first run must not count: clear it.
  ASSERT_TRUE((*probe)->Publish("zigbee2mqtt/bridge/devices", "", 1, true).ok());
  auto late = MqttProbe::Connect(*broker_, {"zigbee2mqtt/bridge/#"});
  ASSERT_TRUE(late.ok());
  StartDaemon();
  EXPECT_TRUE((*late)->WaitFor("zigbee2mqtt/bridge/devices", InterviewedDevices(5), 15s)) << (*late)->Dump() << Log();
}

TEST_F(ZigbeeDaemon, BridgeOnTheRealCoordinatorDiscoversCommandsRenamesRemovesAndReannounces) {
  auto probe = MqttProbe::Connect(*broker_, {"#"});
  ASSERT_TRUE(probe.ok());
  StartDaemon();
  auto devices = (*probe)->WaitFor("zigbee2mqtt/bridge/devices", InterviewedDevices(5), 30s);
  ASSERT_TRUE(devices.has_value()) << (*probe)->Dump() << "\nlog:\n" << Log();
  int transaction = 0;
  const auto request = [&](const std::string& name, json payload) {
    const std::string tx = "tx" + std::to_string(++transaction);
    payload["transaction"] = tx;
    EXPECT_TRUE((*probe)->Publish("zigbee2mqtt/bridge/request/" + name, payload.dump()).ok());
    auto m = (*probe)->WaitFor("zigbee2mqtt/bridge/response/" + name,
                               [&](const mqtt::Message& r) { return test::PayloadJson(r).value("transaction", "") == tx; });
    EXPECT_TRUE(m.has_value()) << "no response to " << name << "\n" << (*probe)->Dump();
    return m ? test::PayloadJson(*m) : json();
  };
  // No rejoin of a removed device while this test runs.
  ASSERT_EQ(request("permit_join", {{"time", 0}})["status"], "ok");

  // Every retained discovery config is valid for HomeAssistant, and each component edged uses is there.
  // (Configs are published after each interview; wait until the last device's switch/light are in.)
  const std::string plug = FindDevice(**probe, "plug");
  const std::string bulb = FindDevice(**probe, "bulb");
  ASSERT_FALSE(plug.empty() || bulb.empty()) << devices->payload;
  ASSERT_TRUE((*probe)->WaitFor("homeassistant/light/" + bulb + "/light/config", {}, 10s)) << (*probe)->Dump();
  std::set<std::string> components;
  for (const auto& [topic, payload] : test::RetainedMessages(*broker_, "homeassistant/#")) {
    const std::string component = topic.substr(14, topic.find('/', 14) - 14);
    components.insert(component);
    for (const auto& problem : test::CheckHomeAssistantDiscovery(component, json::parse(payload))) {
      ADD_FAILURE() << topic << ": " << problem;
    }
  }
  for (const char* c : {"sensor", "binary_sensor", "switch", "light"}) EXPECT_TRUE(components.count(c)) << c;

  // The bulb dims: the device reports its new level and the state JSON carries it.
  ASSERT_TRUE((*probe)->Publish("zigbee2mqtt/" + bulb + "/set", R"({"brightness":128,"transition":2})").ok());
  ASSERT_TRUE((*probe)->WaitFor("zigbee2mqtt/" + bulb, [](const mqtt::Message& m) {
    json state = test::PayloadJson(m);
    return state.is_object() && state["brightness"] == 128 && state["state"] == "ON";
  })) << (*probe)->Dump() << "\nlog:\n" << Log();

  // Rename: the old retained state goes, commands work under the new name, discovery follows.
  ASSERT_TRUE((*probe)->WaitFor("zigbee2mqtt/" + plug, {}, 10s));
  json renamed = request("device/rename", {{"from", plug}, {"to", "kitchen/plug"}, {"homeassistant_rename", true}});
  ASSERT_EQ(renamed["status"], "ok") << renamed;
  EXPECT_TRUE(test::RetainedMessages(*broker_, "zigbee2mqtt/" + plug).empty());
  const std::string switch_config = "homeassistant/switch/" + plug + "/switch/config";
  auto retained = test::RetainedMessages(*broker_, switch_config);
  ASSERT_TRUE(retained.count(switch_config));
  EXPECT_EQ(json::parse(retained[switch_config])["command_topic"], "zigbee2mqtt/kitchen/plug/set");
  ASSERT_TRUE((*probe)->Publish("zigbee2mqtt/kitchen/plug/set", R"({"state":"ON"})").ok());
  ASSERT_TRUE((*probe)->WaitFor("zigbee2mqtt/kitchen/plug", test::PayloadContains(R"("state":"ON")")))
      << (*probe)->Dump();

  // Remove: every retained topic of the device is cleared.
  json removed = request("device/remove", {{"id", "kitchen/plug"}, {"force", true}});
  ASSERT_EQ(removed["status"], "ok") << removed;
  EXPECT_TRUE(test::RetainedMessages(*broker_, "zigbee2mqtt/kitchen/#").empty());
  for (const auto& [topic, payload] : test::RetainedMessages(*broker_, "homeassistant/#")) {
    EXPECT_EQ(topic.find(plug), std::string::npos) << topic << " is still retained";
  }

  // A broker restart (it forgets every retained message): edged reconnects and re-announces.
  probe->reset();
  ASSERT_TRUE(broker_->Restart().ok());
  auto after = MqttProbe::Connect(*broker_, {"#"});
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE((*after)->WaitFor("zigbee2mqtt/bridge/state", test::PayloadIs(R"({"state":"online"})"), 15s))
      << (*after)->Dump() << "\nlog:\n" << Log();
  EXPECT_TRUE((*after)->WaitFor("zigbee2mqtt/bridge/devices", InterviewedDevices(4), 5s)) << (*after)->Dump();
  EXPECT_TRUE((*after)->WaitFor("homeassistant/light/" + bulb + "/light/config", {}, 5s)) << (*after)->Dump();
  EXPECT_TRUE((*after)->WaitFor("zigbee2mqtt/" + bulb, test::PayloadContains(R"("brightness":128)"), 5s));
  EXPECT_FALSE((*after)->WaitFor("homeassistant/switch/" + plug + "/switch/config", {}, 1s));
}

}  // namespace
}  // namespace edged
