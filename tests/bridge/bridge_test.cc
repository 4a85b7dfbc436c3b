// The bridge over a REAL mosquitto broker (tests/support) and the in-memory network stand-in
// (tests/bridge/in_memory_network.h, clearly not the coordinator): join → interview → discovery,
// reports → state JSON and metrics, /set and /get, bridge requests, rename/remove cleanup, broker
// restart, HomeAssistant restart, availability, bad input, a full queue, and a bounded-time property
// test throwing random payloads at every subscribed topic.
#include <gtest/gtest.h>

#include <prometheus/registry.h>

#include <random>
#include <set>
#include <thread>

#include "base/atomic_file.h"
#include "mqtt/bridge/bridge.h"
#include "mqtt/client.h"
#include "tests/bridge/ha_schema.h"
#include "tests/bridge/in_memory_network.h"
#include "tests/support/metrics_test_support.h"
#include "tests/support/mqtt_test_support.h"

namespace edged {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kPlug[] = "0x00124b0000000002";
constexpr char kBulb[] = "0x00124b0000000003";
constexpr char kClimate[] = "0x00124b0000000001";
constexpr char kDoor[] = "0x00124b0000000005";

using test::MetricValue;


class BridgeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = test::MosquittoBroker::Start();
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(*broker);
    auto probe = test::MqttProbe::Connect(*broker_, {"#"});
    ASSERT_TRUE(probe.ok()) << probe.status().ToString();
    probe_ = std::move(*probe);
  }

  void TearDown() override {
    if (bridge_) bridge_->Stop();
    if (client_) client_->Stop();
  }

  mqtt::bridge::BridgeOptions Options() {
    mqtt::bridge::BridgeOptions o;
    o.base_topic = "zigbee2mqtt";
    o.zigbee.availability.enabled = true;
    o.availability_check_interval = milliseconds(200);
    return o;
  }

  void StartBridge(mqtt::bridge::BridgeOptions options) {
    auto client = mqtt::Client::Create(broker_->ClientConfig("edged_bridge_test"), &registry_);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(*client);
    auto bridge = mqtt::bridge::Bridge::Create(std::move(options), *client_, net_, &registry_);
    ASSERT_TRUE(bridge.ok()) << bridge.status().ToString();
    bridge_ = std::move(*bridge);
    ASSERT_TRUE(bridge_->Start().ok());
    ASSERT_TRUE(client_->Start().ok());
    ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/bridge/state", test::PayloadIs(R"({"state":"online"})")))
        << probe_->Dump();
    ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/bridge/devices")) << probe_->Dump();
  }
  void StartBridge() { StartBridge(Options()); }

  // Sends a bridge request with a fresh transaction and returns the response.
  json Request(const std::string& name, json payload) {
    const std::string tx = "tx" + std::to_string(++transaction_);
    payload["transaction"] = tx;
    EXPECT_TRUE(probe_->Publish("zigbee2mqtt/bridge/request/" + name, payload.dump()).ok());
    auto m = probe_->WaitFor("zigbee2mqtt/bridge/response/" + name,
                             [&](const mqtt::Message& msg) { return test::PayloadJson(msg)["transaction"] == tx; });
    EXPECT_TRUE(m.has_value()) << "no response to " << name << "\n" << probe_->Dump();
    return test::PayloadJson(m);
  }

  prometheus::Registry registry_;
  std::unique_ptr<test::MosquittoBroker> broker_;
  std::unique_ptr<test::MqttProbe> probe_;
  test::InMemoryNetwork net_;
  std::unique_ptr<mqtt::Client> client_;
  std::unique_ptr<mqtt::bridge::Bridge> bridge_;
  int transaction_ = 0;
};

TEST_F(BridgeTest, JoinInterviewPublishesEventsDevicesAndValidDiscovery) {
  StartBridge();
  // The bridge itself is announced as a HomeAssistant device at start.
  ASSERT_TRUE(probe_->WaitFor("homeassistant/binary_sensor/+/connection_state/config")) << probe_->Dump();
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/bridge/info")) << probe_->Dump();

  for (const auto& [type, ieee] : std::vector<std::pair<std::string, std::string>>{
           {"climate_sensor", kClimate}, {"smart_plug", kPlug}, {"color_bulb", kBulb},
           {"motion_sensor", "0x00124b0000000004"}, {"door_contact", kDoor}}) {
    net_.Join(type, ieee, type);
  }
  auto joined = probe_->WaitFor("zigbee2mqtt/bridge/event", test::PayloadContains(R"("type":"device_joined")"));
  ASSERT_TRUE(joined) << probe_->Dump();
  EXPECT_EQ(test::PayloadJson(joined)["data"]["ieee_address"], kClimate);
  auto interviewed = probe_->WaitFor("zigbee2mqtt/bridge/event", [](const mqtt::Message& m) {
    return m.payload.find(R"("status":"successful")") != std::string::npos;
  });
  ASSERT_TRUE(interviewed) << probe_->Dump();
  EXPECT_EQ(test::PayloadJson(interviewed)["data"]["definition"]["model"], "edged.climate");

  // 6 + 6 + 2 + 5 + 5 configs (each device's exposes plus linkquality).
  // Plus the bridge's own 6 configs.
  auto all_configs = probe_->WaitForCount("homeassistant/+/+/+/config", 30, milliseconds(5000));
  std::vector<mqtt::Message> configs;
  for (const auto& m : all_configs) {
    if (m.topic.find("_0x00124b00deadbeef/") == std::string::npos) configs.push_back(m);
  }
  ASSERT_EQ(configs.size(), 24u) << probe_->Dump();
  EXPECT_EQ(test::RetainedMessages(*broker_, "homeassistant/#").size(), 30u);
  std::set<std::string> components;
  for (const auto& m : configs) {
    const std::string component = m.topic.substr(14, m.topic.find('/', 14) - 14);
    components.insert(component);
    auto problems = test::CheckHomeAssistantDiscovery(component, json::parse(m.payload));
    EXPECT_TRUE(problems.empty()) << m.topic << ": " << ::testing::PrintToString(problems);
  }
  EXPECT_EQ(components, (std::set<std::string>{"sensor", "binary_sensor", "switch", "light"}));

  // bridge/devices is retained and lists the coordinator and all five devices.
  auto devices = test::RetainedMessages(*broker_, "zigbee2mqtt/bridge/devices");
  ASSERT_TRUE(devices.count("zigbee2mqtt/bridge/devices"));
  json list = json::parse(devices["zigbee2mqtt/bridge/devices"]);
  ASSERT_EQ(list.size(), 6u);
  EXPECT_EQ(list[2]["friendly_name"], "smart_plug");
  EXPECT_EQ(list[2]["definition"]["exposes"][0]["features"][0]["access"], 7);
}

TEST_F(BridgeTest, ReportsBecomeStateJsonAndMetrics) {
  StartBridge();
  net_.Join("climate_sensor", kClimate, "climate");
  net_.Report(kClimate, {{"temperature", 21.5}, {"humidity", 40}}, 120);
  auto state = probe_->WaitFor("zigbee2mqtt/climate", test::PayloadContains(R"("temperature":21.5)"));
  ASSERT_TRUE(state) << probe_->Dump();
  json s = test::PayloadJson(state);
  EXPECT_EQ(s["humidity"], 40);
  EXPECT_EQ(s["linkquality"], 120);
  EXPECT_TRUE(s.contains("pressure") && s["pressure"].is_null());  // discovered, not reported yet
  EXPECT_EQ(test::RetainedMessages(*broker_, "zigbee2mqtt/climate").size(), 1u);  // retain_state defaults to true
  // The cached state is merged: a later report keeps earlier keys.
  net_.Report(kClimate, {{"pressure", 1013}}, 110);
  auto merged = probe_->WaitFor("zigbee2mqtt/climate", test::PayloadContains(R"("pressure":1013)"));
  ASSERT_TRUE(merged);
  EXPECT_EQ(test::PayloadJson(merged)["temperature"], 21.5);

  EXPECT_EQ(MetricValue(registry_, "edged_zigbee_state", {{"device", "climate"}, {"property", "temperature_celsius"}}), 21.5);
  EXPECT_EQ(MetricValue(registry_, "edged_zigbee_state", {{"device", "climate"}, {"property", "pressure_hectopascals"}}), 1013);
  EXPECT_EQ(MetricValue(registry_, "edged_zigbee_linkquality", {{"device", "climate"}}), 110);
  EXPECT_EQ(MetricValue(registry_, "edged_zigbee_device_available", {{"device", "climate"}}), 1);
  auto last_seen = MetricValue(registry_, "edged_zigbee_last_seen_timestamp_seconds", {{"device", "climate"}});
  ASSERT_TRUE(last_seen);
  EXPECT_NEAR(*last_seen, std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(), 30);
  // Keys a device sends that it does not expose never become series (bounded cardinality).
  net_.Report(kClimate, {{"bogus_key", 1}}, 100);
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/climate", test::PayloadContains("bogus_key")));
  EXPECT_FALSE(MetricValue(registry_, "edged_zigbee_state", {{"device", "climate"}, {"property", "bogus_key"}}));
  // Booleans are 0/1.
  net_.Join("door_contact", kDoor, "door");
  net_.Report(kDoor, {{"contact", false}, {"battery_low", true}}, 90);
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/door", test::PayloadContains(R"("contact":false)")));
  EXPECT_EQ(MetricValue(registry_, "edged_zigbee_state", {{"device", "door"}, {"property", "contact"}}), 0);
  EXPECT_EQ(MetricValue(registry_, "edged_zigbee_state", {{"device", "door"}, {"property", "battery_low"}}), 1);
}

TEST_F(BridgeTest, StatesSurviveARestart) {
  test::TempDir dir("edged-bridge-states");
  auto options = Options();
  options.state_file = dir.path() / "state.json";
  StartBridge(options);
  net_.Join("climate_sensor", kClimate, "climate");
  net_.Report(kClimate, {{"temperature", 21.5}, {"humidity", 40}}, 120);
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/climate", test::PayloadContains(R"("humidity":40)"))) << probe_->Dump();

  // A restart: bridge and client stop, new ones start on the same network and state file.
  const auto restart = [&] {
    bridge_->Stop();
    bridge_.reset();
    client_->Stop();
    client_.reset();
    probe_->Clear();
    StartBridge(options);
  };
  restart();
  auto saved = ReadFileToString(options.state_file);
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();
  EXPECT_EQ(json::parse(*saved)[kClimate], json({{"temperature", 21.5}, {"humidity", 40}, {"linkquality", 120}}));
  // The series are back before the device reports again.
  EXPECT_EQ(MetricValue(registry_, "edged_zigbee_state", {{"device", "climate"}, {"property", "temperature_celsius"}}),
            21.5);
  // One property arrives; the state carries the other's last value instead of null.
  net_.Report(kClimate, {{"temperature", 22}}, 110);
  auto state = probe_->WaitFor("zigbee2mqtt/climate", test::PayloadContains(R"("temperature":22)"));
  ASSERT_TRUE(state) << probe_->Dump();
  EXPECT_EQ(test::PayloadJson(state)["humidity"], 40);
  EXPECT_EQ(test::PayloadJson(state)["linkquality"], 110);

  // A damaged file costs the saved states, never the start; the next save replaces it.
  bridge_->Stop();
  ASSERT_TRUE(WriteFileAtomically(options.state_file, "{not json").ok());
  bridge_.reset();
  client_->Stop();
  client_.reset();
  probe_->Clear();
  StartBridge(options);
  net_.Report(kClimate, {{"temperature", 23}}, 100);
  state = probe_->WaitFor("zigbee2mqtt/climate", test::PayloadContains(R"("temperature":23)"));
  ASSERT_TRUE(state) << probe_->Dump();
  EXPECT_TRUE(test::PayloadJson(state)["humidity"].is_null());
  bridge_->Stop();
  saved = ReadFileToString(options.state_file);
  ASSERT_TRUE(saved.ok());
  EXPECT_EQ(json::parse(*saved)[kClimate]["temperature"], 23);
}

TEST_F(BridgeTest, SetSwitchesThePlugAndDimsTheBulb) {
  StartBridge();
  net_.Join("smart_plug", kPlug, "plug");
  net_.Join("color_bulb", kBulb, "bulb");
  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/plug/set", R"({"state":"ON"})").ok());
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/plug", test::PayloadContains(R"("state":"ON")"))) << probe_->Dump();
  ASSERT_TRUE(net_.WaitForCommands(1, milliseconds(2000)));
  EXPECT_EQ(net_.commands()[0].ieee, kPlug);
  EXPECT_EQ(net_.commands()[0].payload, json::parse(R"({"state":"ON"})"));
  EXPECT_EQ(MetricValue(registry_, "edged_zigbee_state", {{"device", "plug"}, {"property", "state"}}), 1);

  // A bare word, and TOGGLE flips the cached state.
  probe_->Clear();
  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/plug/set", "off").ok());
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/plug", test::PayloadContains(R"("state":"OFF")"))) << probe_->Dump();
  probe_->Clear();
  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/plug/set/state", "TOGGLE").ok());
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/plug", test::PayloadContains(R"("state":"ON")"))) << probe_->Dump();

  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/bulb/set", R"({"brightness":128,"transition":2})").ok());
  // The device's own report comes first; the optimistic state (state ON from a brightness command) follows.
  auto dimmed = probe_->WaitFor("zigbee2mqtt/bulb", [](const mqtt::Message& m) {
    return m.payload.find(R"("brightness":128)") != std::string::npos && m.payload.find(R"("state":"ON")") != std::string::npos;
  });
  ASSERT_TRUE(dimmed) << probe_->Dump();
  EXPECT_EQ(test::PayloadJson(dimmed)["state"], "ON");
  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/bulb/set", R"({"color_temp":300})").ok());
  auto ct = probe_->WaitFor("zigbee2mqtt/bulb", test::PayloadContains(R"("color_mode":"color_temp")"));
  ASSERT_TRUE(ct) << probe_->Dump();
  EXPECT_EQ(test::PayloadJson(ct)["color_temp"], 300);
  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/bulb/set", R"({"color":{"x":0.3,"y":0.4}})").ok());
  auto xy = probe_->WaitFor("zigbee2mqtt/bulb", test::PayloadContains(R"("color_mode":"xy")"));
  ASSERT_TRUE(xy);
  EXPECT_EQ(test::PayloadJson(xy)["color"]["x"], 0.3);
  EXPECT_EQ(MetricValue(registry_, "edged_zigbee_state", {{"device", "bulb"}, {"property", "brightness"}}), 128);

  // /get reads; the answer comes back as a report.
  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/bulb/get", R"({"state":""})").ok());
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/bulb", test::PayloadContains(R"("state":"OFF")"))) << probe_->Dump();
  EXPECT_EQ(net_.reads().size(), 1u);
}

TEST_F(BridgeTest, NonOptimisticDeviceWaitsForTheReport) {
  StartBridge();
  net_.Join("smart_plug", kPlug, "plug");
  EXPECT_EQ(Request("device/options", {{"id", "plug"}, {"options", {{"optimistic", false}}}})["status"], "ok");
  net_.FailCommands(true);  // the command fails: neither an optimistic nor a confirmed state appears
  probe_->Clear();
  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/plug/set", R"({"state":"ON"})").ok());
  auto logged = probe_->WaitFor("zigbee2mqtt/bridge/logging", test::PayloadContains("timed out"));
  ASSERT_TRUE(logged) << probe_->Dump();
  EXPECT_EQ(test::PayloadJson(logged)["level"], "error");
  EXPECT_TRUE(probe_->Messages("zigbee2mqtt/plug").empty()) << probe_->Dump();
  EXPECT_EQ(MetricValue(registry_, "edged_zigbee_bridge_rejected_messages_total", {{"reason", "command_failed"}}), 1);
}

TEST_F(BridgeTest, BadDeviceCommandsAreLoggedAndCountedNeverSent) {
  StartBridge();
  net_.Join("color_bulb", kBulb, "bulb");
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"zigbee2mqtt/bulb/set", "{not json"},
      {"zigbee2mqtt/bulb/set", R"({"brightness":999})"},
      {"zigbee2mqtt/bulb/set", R"({"brightness":"high"})"},
      {"zigbee2mqtt/bulb/set", R"({"colour":1})"},
      {"zigbee2mqtt/bulb/set", R"({"state":"MAYBE"})"},
      {"zigbee2mqtt/bulb/set", R"({"color":{"x":2,"y":0.1}})"},
      {"zigbee2mqtt/bulb/set", R"({"color":{"x":0.2}})"},
      {"zigbee2mqtt/bulb/set", R"([1,2,3])"},
      {"zigbee2mqtt/bulb/set", R"({})"},
      {"zigbee2mqtt/nosuchdevice/set", R"({"state":"ON"})"},
      {"zigbee2mqtt/bulb/set", std::string(70 * 1024, 'x')},
  };
  for (const auto& [topic, payload] : bad) ASSERT_TRUE(probe_->Publish(topic, payload).ok());
  // Everything rejected: 9 invalid/malformed, 1 unknown device, 1 oversized; nothing reached the network.
  auto logs = probe_->WaitForCount("zigbee2mqtt/bridge/logging", 10, milliseconds(5000));
  EXPECT_EQ(logs.size(), 10u) << probe_->Dump();
  // The oversized message is published last and logs nothing on bridge/logging: wait for its count
  // instead of racing the bridge's queue.
  const auto deadline = std::chrono::steady_clock::now() + milliseconds(5000);
  while (MetricValue(registry_, "edged_zigbee_bridge_rejected_messages_total", {{"reason", "oversized"}}) != 1 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE(net_.commands().empty());
  EXPECT_EQ(MetricValue(registry_, "edged_zigbee_bridge_rejected_messages_total", {{"reason", "oversized"}}), 1);
  EXPECT_EQ(MetricValue(registry_, "edged_zigbee_bridge_rejected_messages_total", {{"reason", "unknown_device"}}), 1);
  // Still working.
  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/bulb/set", R"({"state":"ON"})").ok());
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/bulb", test::PayloadContains(R"("state":"ON")")));
}

TEST_F(BridgeTest, BridgeRequestsAnswerWithTransaction) {
  StartBridge();
  net_.Join("smart_plug", kPlug, "plug");
  json r = Request("health_check", json::object());
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["data"]["healthy"], true);

  r = Request("permit_join", {{"time", 60}});
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(r["data"]["time"], 60);
  ASSERT_TRUE(net_.PermitJoinEnd());
  auto info = probe_->WaitFor("zigbee2mqtt/bridge/info", test::PayloadContains(R"("permit_join":true)"));
  ASSERT_TRUE(info) << probe_->Dump();
  EXPECT_TRUE(test::PayloadJson(info).contains("permit_join_end"));
  EXPECT_EQ(Request("permit_join", {{"time", 0}})["status"], "ok");
  EXPECT_FALSE(net_.PermitJoinEnd());
  EXPECT_EQ(Request("permit_join", {{"time", 999}})["status"], "error");
  EXPECT_EQ(Request("permit_join", {{"value", true}})["error"], "Invalid payload");

  r = Request("device/options", {{"id", "plug"}, {"options", {{"description", "kitchen"}, {"retain", false}}}});
  EXPECT_EQ(r["status"], "ok") << r;
  EXPECT_EQ(r["data"]["to"]["description"], "kitchen");
  EXPECT_EQ(net_.Find(kPlug)->options["description"], "kitchen");  // persisted through the network
  EXPECT_EQ(Request("device/options", {{"id", "ghost"}, {"options", json::object()}})["error"],
            "Device 'ghost' does not exist");
  EXPECT_EQ(Request("device/options", {{"id", "plug"}})["status"], "error");

  EXPECT_EQ(Request("device/rename", {{"from", "plug"}, {"to", "a/set"}})["status"], "error");
  EXPECT_EQ(Request("device/rename", {{"from", "plug"}, {"to", "x+y"}})["status"], "error");
  EXPECT_EQ(Request("device/rename", {{"from", "plug"}, {"to", 5}})["status"], "error");
  EXPECT_EQ(Request("device/remove", {{"id", "ghost"}})["status"], "error");
  EXPECT_EQ(Request("no/such/request", json::object())["error"], "Unknown request 'no/such/request'");

  // A malformed request is answered too (no transaction can be echoed from it).
  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/bridge/request/device/rename", "{oops").ok());
  auto bad = probe_->WaitFor("zigbee2mqtt/bridge/response/device/rename", [](const mqtt::Message& m) {
    return test::PayloadJson(m).value("transaction", json()).is_null();
  });
  ASSERT_TRUE(bad) << probe_->Dump();
  EXPECT_EQ(test::PayloadJson(bad)["status"], "error");

  r = Request("restart", json::object());
  EXPECT_EQ(r["status"], "ok");
  EXPECT_EQ(MetricValue(registry_, "edged_zigbee_bridge_requests_total", {{"request", "health_check"}, {"status", "ok"}}), 1);
}

TEST_F(BridgeTest, RenameAndRemoveCleanUpRetainedTopics) {
  StartBridge();
  net_.Join("smart_plug", kPlug, "plug");
  net_.Report(kPlug, {{"state", "ON"}, {"power", 12.5}}, 150);
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/plug", test::PayloadContains("12.5")));
  ASSERT_EQ(test::RetainedMessages(*broker_, "zigbee2mqtt/plug").size(), 1u);

  json r = Request("device/rename", {{"from", "plug"}, {"to", "kitchen/plug"}, {"homeassistant_rename", true}});
  ASSERT_EQ(r["status"], "ok") << r;
  EXPECT_EQ(r["data"], json::parse(R"({"from":"plug","to":"kitchen/plug","homeassistant_rename":true})"));
  EXPECT_EQ(net_.Find(kPlug)->friendly_name, "kitchen/plug");
  auto renamed = probe_->WaitFor("zigbee2mqtt/kitchen/plug", test::PayloadContains("12.5"));
  ASSERT_TRUE(renamed) << probe_->Dump();
  EXPECT_TRUE(test::RetainedMessages(*broker_, "zigbee2mqtt/plug").empty());
  EXPECT_TRUE(test::RetainedMessages(*broker_, "zigbee2mqtt/plug/availability").empty());
  auto retained = test::RetainedMessages(*broker_, "homeassistant/#");
  const std::string sw = std::string("homeassistant/switch/") + kPlug + "/switch/config";
  ASSERT_TRUE(retained.count(sw));
  EXPECT_EQ(json::parse(retained[sw])["command_topic"], "zigbee2mqtt/kitchen/plug/set");
  EXPECT_EQ(json::parse(retained[sw])["device"]["name"], "kitchen/plug");
  // Commands work under the new name, metrics follow the name.
  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/kitchen/plug/set", R"({"state":"OFF"})").ok());
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/kitchen/plug", test::PayloadContains(R"("state":"OFF")")));
  EXPECT_TRUE(MetricValue(registry_, "edged_zigbee_state", {{"device", "kitchen/plug"}, {"property", "power_watts"}}));
  EXPECT_FALSE(MetricValue(registry_, "edged_zigbee_state", {{"device", "plug"}, {"property", "power_watts"}}));

  r = Request("device/remove", {{"id", "kitchen/plug"}, {"force", true}});
  ASSERT_EQ(r["status"], "ok") << r;
  EXPECT_EQ(r["data"], json::parse(R"({"id":"kitchen/plug","block":false,"force":true,"keep_config":false,"clear_cache":false})"));
  EXPECT_FALSE(net_.Find(kPlug));
  EXPECT_TRUE(test::RetainedMessages(*broker_, "zigbee2mqtt/kitchen/#").empty());
  for (const auto& [topic, payload] : test::RetainedMessages(*broker_, "homeassistant/#")) {
    EXPECT_EQ(topic.find(kPlug), std::string::npos) << topic << " still retained";
  }
  EXPECT_FALSE(MetricValue(registry_, "edged_zigbee_linkquality", {{"device", "kitchen/plug"}}));
  // A removed device is unknown afterwards.
  EXPECT_EQ(Request("device/remove", {{"id", "kitchen/plug"}})["status"], "error");
  auto devices = json::parse(test::RetainedMessages(*broker_, "zigbee2mqtt/bridge/devices")["zigbee2mqtt/bridge/devices"]);
  EXPECT_EQ(devices.size(), 1u);  // the coordinator
}

TEST_F(BridgeTest, DeviceLeaveClearsItsTopics) {
  StartBridge();
  net_.Join("door_contact", kDoor, "door");
  net_.Report(kDoor, {{"contact", true}}, 80);
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/door"));
  net_.Leave(kDoor);
  auto left = probe_->WaitFor("zigbee2mqtt/bridge/event", test::PayloadContains("device_leave"));
  ASSERT_TRUE(left) << probe_->Dump();
  EXPECT_EQ(test::PayloadJson(left)["data"]["friendly_name"], "door");
  EXPECT_TRUE(test::RetainedMessages(*broker_, "zigbee2mqtt/door").empty());
}

TEST_F(BridgeTest, BrokerRestartReannouncesEverything) {
  StartBridge();
  net_.Join("smart_plug", kPlug, "plug");
  net_.Report(kPlug, {{"state", "ON"}}, 150);
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/plug"));
  probe_.reset();
  ASSERT_TRUE(broker_->Restart().ok());  // no persistence: the broker forgot every retained message
  auto probe = test::MqttProbe::Connect(*broker_, {"#"});
  ASSERT_TRUE(probe.ok());
  probe_ = std::move(*probe);
  EXPECT_TRUE(probe_->WaitFor("zigbee2mqtt/bridge/state", test::PayloadIs(R"({"state":"online"})"), milliseconds(10000)))
      << probe_->Dump();
  EXPECT_TRUE(probe_->WaitFor("zigbee2mqtt/bridge/devices", {}, milliseconds(5000))) << probe_->Dump();
  EXPECT_TRUE(probe_->WaitFor("zigbee2mqtt/bridge/info", {}, milliseconds(5000)));
  EXPECT_TRUE(probe_->WaitFor("zigbee2mqtt/plug", test::PayloadContains(R"("state":"ON")"), milliseconds(5000)));
  EXPECT_TRUE(probe_->WaitFor(std::string("homeassistant/switch/") + kPlug + "/switch/config", {}, milliseconds(5000)));
  EXPECT_TRUE(probe_->WaitFor("homeassistant/binary_sensor/+/connection_state/config", {}, milliseconds(5000)));
  // Commands work over the new connection.
  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/plug/set", R"({"state":"OFF"})").ok());
  EXPECT_TRUE(probe_->WaitFor("zigbee2mqtt/plug", test::PayloadContains(R"("state":"OFF")")));
}

TEST_F(BridgeTest, HomeAssistantOnlineReannouncesDiscoveryAndState) {
  StartBridge();
  net_.Join("color_bulb", kBulb, "bulb");
  net_.Report(kBulb, {{"state", "ON"}, {"brightness", 10}}, 150);
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/bulb"));
  probe_->Clear();
  ASSERT_TRUE(probe_->Publish("homeassistant/status", "online").ok());
  EXPECT_TRUE(probe_->WaitFor(std::string("homeassistant/light/") + kBulb + "/light/config")) << probe_->Dump();
  EXPECT_TRUE(probe_->WaitFor("zigbee2mqtt/bulb", test::PayloadContains(R"("brightness":10)")));
  probe_->Clear();
  ASSERT_TRUE(probe_->Publish("homeassistant/status", "offline").ok());
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_TRUE(probe_->Messages("homeassistant/light/#").empty());
}

TEST_F(BridgeTest, AvailabilityFollowsLastSeenWithMainsAndBatteryTimeouts) {
  auto options = Options();
  options.zigbee.availability.active_timeout = seconds(1);   // mains: the plug
  options.zigbee.availability.passive_timeout = seconds(60);  // battery: the door contact
  StartBridge(options);
  net_.Join("smart_plug", kPlug, "plug");
  net_.Join("door_contact", kDoor, "door");
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/plug/availability", test::PayloadIs(R"({"state":"online"})")));
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/door/availability", test::PayloadIs(R"({"state":"online"})")));
  auto offline = probe_->WaitFor("zigbee2mqtt/plug/availability", test::PayloadIs(R"({"state":"offline"})"),
                                 milliseconds(4000));
  ASSERT_TRUE(offline) << probe_->Dump();
  EXPECT_EQ(test::RetainedMessages(*broker_, "zigbee2mqtt/plug/availability")["zigbee2mqtt/plug/availability"], R"({"state":"offline"})");
  EXPECT_EQ(MetricValue(registry_, "edged_zigbee_device_available", {{"device", "plug"}}), 0);
  // The battery device keeps its longer timeout.
  EXPECT_FALSE(probe_->WaitFor("zigbee2mqtt/door/availability", test::PayloadIs(R"({"state":"offline"})"),
                               milliseconds(100)));
  probe_->Clear();
  net_.Report(kPlug, {{"power", 3}}, 140);
  EXPECT_TRUE(probe_->WaitFor("zigbee2mqtt/plug/availability", test::PayloadIs(R"({"state":"online"})")));
  // Discovery includes the per-device availability topic.
  auto retained = test::RetainedMessages(*broker_, std::string("homeassistant/switch/") + kPlug + "/switch/config");
  ASSERT_EQ(retained.size(), 1u);
  json cfg = json::parse(retained.begin()->second);
  EXPECT_EQ(cfg["availability_mode"], "all");
  EXPECT_EQ(cfg["availability"][1]["topic"], "zigbee2mqtt/plug/availability");
}

TEST_F(BridgeTest, FullQueueDropsAndStillAnswersRequests) {
  auto options = Options();
  options.queue_limit = 4;
  StartBridge(options);
  net_.Join("smart_plug", kPlug, "plug");
  net_.HoldRenames(true);  // the database write hangs (a hung disk): the worker waits in Rename
  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/bridge/request/device/rename", R"({"from":"plug","to":"socket"})").ok());
  ASSERT_TRUE(net_.WaitForRenameCalls(1, milliseconds(3000)));
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(probe_->Publish("zigbee2mqtt/bridge/request/health_check", json{{"transaction", i}}.dump()).ok());
  }
  // 4 wait in the queue; the other 16 are answered at once with an error.
  auto busy = probe_->WaitForCount("zigbee2mqtt/bridge/response/health_check", 16, milliseconds(5000));
  ASSERT_EQ(busy.size(), 16u) << probe_->Dump();
  EXPECT_EQ(test::PayloadJson(busy[0])["status"], "error");
  EXPECT_NE(test::PayloadJson(busy[0])["error"].get<std::string>().find("busy"), std::string::npos);
  EXPECT_EQ(MetricValue(registry_, "edged_zigbee_bridge_queue_dropped_total", {}), 16);
  EXPECT_EQ(bridge_->health().state, HealthState::kWarning);
  // Zigbee traffic is not stalled by the blocked worker: reports still publish.
  net_.Report(kPlug, {{"power", 7}}, 100);
  EXPECT_TRUE(probe_->WaitFor("zigbee2mqtt/plug", test::PayloadContains(R"("power":7)")));
  net_.HoldRenames(false);
  auto all = probe_->WaitForCount("zigbee2mqtt/bridge/response/health_check", 20, milliseconds(5000));
  EXPECT_EQ(all.size(), 20u);
}

TEST_F(BridgeTest, ADeviceThatStopsAnsweringHoldsUpNothingElse) {
  StartBridge();
  net_.Join("smart_plug", kPlug, "plug");
  net_.Join("climate_sensor", kClimate, "climate");
  net_.HoldCommands(true);  // the plug never acknowledges (until released below)
  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/plug/set", R"({"state":"OFF"})").ok());
  ASSERT_TRUE(net_.WaitForCommands(1, milliseconds(3000)));
  // Bridge requests are still answered and reports still published while the command is pending.
  json health = Request("health_check", json::object());
  EXPECT_EQ(health["status"], "ok");
  net_.Report(kClimate, {{"temperature", 19.5}}, 100);
  ASSERT_TRUE(probe_->WaitFor("zigbee2mqtt/climate", test::PayloadContains(R"("temperature":19.5)")));
  EXPECT_FALSE(probe_->WaitFor("zigbee2mqtt/plug", test::PayloadContains(R"("state":"OFF")"), milliseconds(200)));
  // Its queue stays short: with 8 commands waiting, more taps are refused at once, and said so.
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(probe_->Publish("zigbee2mqtt/plug/set", R"({"state":"OFF"})").ok());
  ASSERT_TRUE(net_.WaitForCommands(8, milliseconds(3000)));
  auto busy = probe_->WaitFor("zigbee2mqtt/bridge/logging", test::PayloadContains("still waiting for the device"));
  ASSERT_TRUE(busy) << probe_->Dump();
  EXPECT_EQ(MetricValue(registry_, "edged_zigbee_bridge_rejected_messages_total", {{"reason", "device_busy"}}), 2);
  EXPECT_EQ(net_.commands().size(), 8u);
  // The acknowledgements come late: the state follows them then, and the queue is free again.
  net_.HoldCommands(false);
  EXPECT_TRUE(probe_->WaitFor("zigbee2mqtt/plug", test::PayloadContains(R"("state":"OFF")"))) << probe_->Dump();
  ASSERT_TRUE(probe_->Publish("zigbee2mqtt/plug/set", R"({"state":"ON"})").ok());
  EXPECT_TRUE(probe_->WaitFor("zigbee2mqtt/plug", test::PayloadContains(R"("state":"ON")"))) << probe_->Dump();
}

// Random and malformed payloads at every topic the bridge subscribes to, for a bounded time: the
// bridge never crashes, and every bridge request is answered (transaction echoed when it had one).
TEST_F(BridgeTest, PropertyRandomPayloadsOnEveryTopic) {
  StartBridge();
  net_.Join("smart_plug", kPlug, "plug");
  net_.Join("color_bulb", kBulb, "bulb");
  net_.Join("climate_sensor", kClimate, "climate");
  std::mt19937 rng(20250101);
  auto pick = [&](const std::vector<std::string>& v) { return v[rng() % v.size()]; };
  const std::vector<std::string> requests = {"permit_join", "device/rename", "device/remove", "device/options",
                                             "health_check", "restart", "nonsense", "device/options/extra"};
  const std::vector<std::string> device_topics = {
      "zigbee2mqtt/plug/set", "zigbee2mqtt/bulb/set", "zigbee2mqtt/climate/set", "zigbee2mqtt/bulb/get",
      "zigbee2mqtt/plug/set/state", "zigbee2mqtt/bulb/set/brightness", "zigbee2mqtt/ghost/set",
      "zigbee2mqtt/0x00124b0000000003/set", "homeassistant/status", "zigbee2mqtt/plug", "zigbee2mqtt//set"};
  const std::vector<std::string> fragments = {
      R"({"state":"ON"})", R"({"state":"TOGGLE"})", R"({"brightness":)", R"({"brightness":-1})",
      R"({"color":{"x":0.5,"y":0.5}})", R"({"color_temp":1e308})", "null", "[]", "\"str\"", "online", "ON",
      R"({"time":"abc"})", R"({"time":10})", R"({"id":"plug","options":{"retain":true}})",
      R"({"from":"bulb","to":"bulb2"})", R"({"from":"bulb2","to":"bulb"})", R"({"id":"ghost"})",
      "\xff\xfe\x00garbage", "{\"a\":{\"b\":{\"c\":[1,2,{\"d\":null}]}}}", "", R"({"transition":1,"state":"OFF"})"};
  const auto deadline = std::chrono::steady_clock::now() + seconds(3);
  int sent_requests = 0;
  std::set<std::string> transactions;
  while (std::chrono::steady_clock::now() < deadline) {
    std::string payload = pick(fragments);
    if (rng() % 4 == 0) {  // random bytes
      payload.clear();
      for (size_t n = rng() % 64; n > 0; --n) payload.push_back(static_cast<char>(rng() % 256));
    }
    if (rng() % 2 == 0) {
      json j = json::parse(payload, nullptr, false);
      const std::string tx = "p" + std::to_string(sent_requests);
      if (j.is_object()) {
        j["transaction"] = tx;
        payload = j.dump();
        transactions.insert(tx);
      }
      ASSERT_TRUE(probe_->Publish("zigbee2mqtt/bridge/request/" + pick(requests), payload).ok());
      ++sent_requests;
    } else {
      ASSERT_TRUE(probe_->Publish(pick(device_topics), payload).ok());
    }
  }
  auto responses = probe_->WaitForCount("zigbee2mqtt/bridge/response/#", sent_requests, milliseconds(15000));
  EXPECT_EQ(static_cast<int>(responses.size()), sent_requests) << "requests sent: " << sent_requests;
  for (const auto& r : responses) {
    json j = json::parse(r.payload, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << r.payload;
    EXPECT_TRUE(j["status"] == "ok" || j["status"] == "error") << r.payload;
    if (j.contains("transaction")) transactions.erase(j["transaction"].get<std::string>());
  }
  EXPECT_TRUE(transactions.empty()) << transactions.size() << " transactions never answered";
  // Still alive and correct afterwards.
  EXPECT_EQ(Request("health_check", json::object())["status"], "ok");
  EXPECT_EQ(bridge_->health().state, HealthState::kOk);
}

TEST(BridgeCreate, OptionsFromConfig) {
  config::Config c;
  c.mqtt.base_topic = "z2m";
  c.mqtt.qos = 0;
  c.zigbee.retain_state = false;
  c.zigbee.availability.active_timeout = seconds(42);
  auto o = mqtt::bridge::BridgeOptionsFromConfig(c, "1.2.3");
  EXPECT_EQ(o.base_topic, "z2m");
  EXPECT_EQ(o.qos, 0);
  EXPECT_FALSE(o.zigbee.retain_state);
  EXPECT_EQ(o.zigbee.availability.active_timeout, seconds(42));
  EXPECT_EQ(o.version, "1.2.3");
}

TEST(BridgeCreate, RejectsBadOptions) {
  test::InMemoryNetwork net;
  auto client = mqtt::Client::Create(config::MqttConfig{}, nullptr);
  ASSERT_TRUE(client.ok());
  mqtt::bridge::BridgeOptions o;
  o.base_topic = "a/#";
  EXPECT_EQ(mqtt::bridge::Bridge::Create(o, **client, net, nullptr).status().code(), StatusCode::kInvalidArgument);
  o.base_topic = "homeassistant";
  EXPECT_EQ(mqtt::bridge::Bridge::Create(o, **client, net, nullptr).status().code(), StatusCode::kInvalidArgument);
  o.base_topic = "zigbee2mqtt";
  o.queue_limit = 0;
  EXPECT_FALSE(mqtt::bridge::Bridge::Create(o, **client, net, nullptr).ok());
  o.queue_limit = 10;
  EXPECT_TRUE(mqtt::bridge::Bridge::Create(o, **client, net, nullptr).ok());
}

}  // namespace
}  // namespace edged
