// Golden-JSON tests of the pure builders: exposes/definitions, HomeAssistant discovery (each payload
// also checked against HomeAssistant's discovery schema), bridge/info, bridge/devices, bridge/event and
// the response envelope. The golden payloads follow zigbee2mqtt 2.14's homeassistant.ts and bridge.ts.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "mqtt/bridge/exposes.h"
#include "mqtt/bridge/payloads.h"
#include "mqtt/discovery/discovery.h"
#include "tests/bridge/ha_schema.h"
#include "tests/bridge/test_devices.h"

namespace edged {
namespace {

using nlohmann::json;
using mqtt::bridge::DefinitionFor;
using mqtt::discovery::DiscoveryContext;
using mqtt::discovery::DiscoveryMessage;

DiscoveryContext Context(bool availability = true) {
  DiscoveryContext c;
  c.base_topic = "zigbee2mqtt";
  c.discovery_topic = "homeassistant";
  c.availability = availability;
  c.version = "0.1.0";
  c.coordinator = test::TestCoordinator();
  return c;
}

std::map<std::string, DiscoveryMessage> ByTopic(const std::vector<DiscoveryMessage>& messages) {
  std::map<std::string, DiscoveryMessage> out;
  for (const auto& m : messages) out[m.topic] = m;
  return out;
}

const json kAvailability = json::parse(R"([
  {"topic":"zigbee2mqtt/bridge/state","value_template":"{{ value_json.state }}"},
  {"topic":"zigbee2mqtt/%s/availability","value_template":"{{ value_json.state }}"}])");

json Availability(const std::string& name) {
  json a = kAvailability;
  a[1]["topic"] = "zigbee2mqtt/" + name + "/availability";
  return a;
}

json DeviceBlock(const std::string& ieee, const std::string& name, const std::string& model,
                 const std::string& description) {
  return {{"identifiers", {"zigbee2mqtt_" + ieee}},
          {"manufacturer", "edged"},
          {"model", description},
          {"model_id", model},
          {"name", name},
          {"sw_version", "1.0.0"},
          {"via_device", "zigbee2mqtt_bridge_0x00124b00deadbeef"}};
}

TEST(BridgeExposes, SimulatorTypesHaveNativeDefinitions) {
  const std::map<std::string, std::vector<std::string>> expected = {
      {"climate_sensor", {"battery", "temperature", "humidity", "pressure", "voltage", "linkquality"}},
      {"smart_plug", {"state", "power", "voltage", "current", "energy", "linkquality"}},
      {"color_bulb", {"state", "brightness", "color_temp", "color", "linkquality"}},
      {"motion_sensor", {"occupancy", "illuminance", "battery", "voltage", "linkquality"}},
      {"door_contact", {"contact", "tamper", "battery_low", "battery", "linkquality"}},
  };
  for (const auto& [type, properties] : expected) {
    auto def = DefinitionFor(test::SimDevice(type, "0x0000000000000001", type));
    ASSERT_TRUE(def.has_value()) << type;
    EXPECT_EQ(def->source, "native") << type;
    EXPECT_EQ(mqtt::bridge::ExposedProperties(mqtt::bridge::DeviceExposes(*def)), properties) << type;
  }
}

TEST(BridgeExposes, GoldenLightExpose) {
  auto def = DefinitionFor(test::SimDevice("color_bulb", "0x0000000000000001", "bulb"));
  ASSERT_TRUE(def);
  // zigbee-herdsman-converters' Light().withBrightness().withColorTemp([150,500]).withColor(["xy"]).
  const json expected = json::parse(R"json({"type":"light","features":[
    {"name":"state","label":"State","access":7,"type":"binary","property":"state",
     "description":"On/off state of this light","value_on":"ON","value_off":"OFF","value_toggle":"TOGGLE"},
    {"name":"brightness","label":"Brightness","access":7,"type":"numeric","property":"brightness",
     "description":"Brightness of this light","value_max":254,"value_min":0},
    {"name":"color_temp","label":"Color temp","access":7,"type":"numeric","property":"color_temp",
     "description":"Color temperature of this light","unit":"mired","value_max":500,"value_min":150,
     "presets":[{"name":"coolest","value":150,"description":"Coolest temperature supported"},
                {"name":"cool","value":250,"description":"Cool temperature (250 mireds / 4000 Kelvin)"},
                {"name":"neutral","value":370,"description":"Neutral temperature (370 mireds / 2700 Kelvin)"},
                {"name":"warm","value":454,"description":"Warm temperature (454 mireds / 2200 Kelvin)"},
                {"name":"warmest","value":500,"description":"Warmest temperature supported"}]},
    {"name":"color_xy","label":"Color (X/Y)","access":7,"type":"composite","property":"color",
     "description":"Color of this light in the CIE 1931 color space (x/y)",
     "features":[{"name":"x","label":"X","access":7,"type":"numeric","property":"x"},
                 {"name":"y","label":"Y","access":7,"type":"numeric","property":"y"}]}]})json");
  EXPECT_EQ(def->exposes[0], expected) << def->exposes[0].dump(2);
}

TEST(BridgeExposes, UnknownModelGetsGeneratedDefinitionFromClusters) {
  auto device = test::SimDevice("smart_plug", "0x0000000000000001", "x");
  device.model_id = "SomethingElse";
  device.manufacturer = "ACME";
  auto def = DefinitionFor(device);
  ASSERT_TRUE(def);
  EXPECT_EQ(def->source, "generated");
  EXPECT_EQ(def->model, "SomethingElse");
  EXPECT_EQ(def->vendor, "ACME");
  EXPECT_EQ(def->description, "Automatically generated definition");
  EXPECT_EQ(mqtt::bridge::ExposedProperties(def->exposes),
            (std::vector<std::string>{"state", "power", "voltage", "current", "energy"}));
  device.model_id.clear();  // not interviewed yet
  EXPECT_FALSE(DefinitionFor(device));
}

TEST(BridgeExposes, LabelsFollowZigbeeHerdsmanConverters) {
  EXPECT_EQ(mqtt::bridge::LabelFromName("battery_low"), "Battery low");
  EXPECT_EQ(mqtt::bridge::LabelFromName("linkquality"), "Linkquality");
  EXPECT_EQ(mqtt::bridge::LabelFromName(""), "");
}

TEST(BridgeDiscovery, GoldenTemperatureSensor) {
  auto device = test::SimDevice("climate_sensor", "0x00124b0001020304", "climate");
  auto msgs = ByTopic(mqtt::discovery::DeviceDiscovery(device, *DefinitionFor(device), Context()));
  const std::string topic = "homeassistant/sensor/0x00124b0001020304/temperature/config";
  ASSERT_TRUE(msgs.count(topic));
  json expected = {
      {"availability", Availability("climate")},
      {"availability_mode", "all"},
      {"default_entity_id", "sensor.climate_temperature"},
      {"device", DeviceBlock("0x00124b0001020304", "climate", "edged.climate",
                             "Simulated temperature, humidity and pressure sensor")},
      {"device_class", "temperature"},
      {"enabled_by_default", true},
      {"object_id", "climate_temperature"},
      {"origin", {{"name", "edged"}, {"sw", "0.1.0"}}},
      {"state_class", "measurement"},
      {"state_topic", "zigbee2mqtt/climate"},
      {"unique_id", "0x00124b0001020304_temperature_zigbee2mqtt"},
      {"unit_of_measurement", "°C"},
      {"value_template", "{{ value_json[\"temperature\"] }}"}};
  EXPECT_EQ(msgs[topic].payload, expected) << msgs[topic].payload.dump(2);
  // Sorted keys, as zigbee2mqtt's stringify writes them.
  EXPECT_EQ(msgs[topic].payload.dump().substr(0, 16), R"({"availability":)");

  const std::string battery = "homeassistant/sensor/0x00124b0001020304/battery/config";
  ASSERT_TRUE(msgs.count(battery));
  EXPECT_EQ(msgs[battery].payload["entity_category"], "diagnostic");
  EXPECT_EQ(msgs[battery].payload["device_class"], "battery");
  EXPECT_FALSE(msgs[battery].payload.contains("name"));
  const std::string lqi = "homeassistant/sensor/0x00124b0001020304/linkquality/config";
  ASSERT_TRUE(msgs.count(lqi));
  EXPECT_EQ(msgs[lqi].payload["entity_category"], "diagnostic");
  EXPECT_EQ(msgs[lqi].payload["enabled_by_default"], false);
  EXPECT_EQ(msgs[lqi].payload["name"], "Linkquality");
  EXPECT_EQ(msgs[lqi].payload["unit_of_measurement"], "lqi");
  const std::string pressure = "homeassistant/sensor/0x00124b0001020304/pressure/config";
  EXPECT_EQ(msgs[pressure].payload["device_class"], "atmospheric_pressure");
  EXPECT_EQ(msgs[pressure].payload["unit_of_measurement"], "hPa");
  EXPECT_EQ(msgs.size(), 6u);
}

TEST(BridgeDiscovery, GoldenLightWithJsonSchema) {
  auto device = test::SimDevice("color_bulb", "0x00124b0001020305", "Living Room Bulb");
  auto msgs = ByTopic(mqtt::discovery::DeviceDiscovery(device, *DefinitionFor(device), Context()));
  const std::string topic = "homeassistant/light/0x00124b0001020305/light/config";
  ASSERT_TRUE(msgs.count(topic));
  json expected = {
      {"availability", Availability("Living Room Bulb")},
      {"availability_mode", "all"},
      {"brightness", true},
      {"brightness_scale", 254},
      {"command_topic", "zigbee2mqtt/Living Room Bulb/set"},
      {"default_entity_id", "light.living_room_bulb"},
      {"device", DeviceBlock("0x00124b0001020305", "Living Room Bulb", "edged.bulb",
                             "Simulated color and white spectrum bulb")},
      {"max_mireds", 500},
      {"min_mireds", 150},
      {"name", nullptr},
      {"object_id", "living_room_bulb"},
      {"origin", {{"name", "edged"}, {"sw", "0.1.0"}}},
      {"schema", "json"},
      {"state_topic", "zigbee2mqtt/Living Room Bulb"},
      {"supported_color_modes", {"xy", "color_temp"}},
      {"unique_id", "0x00124b0001020305_light_zigbee2mqtt"}};
  EXPECT_EQ(msgs[topic].payload, expected) << msgs[topic].payload.dump(2);
  EXPECT_EQ(msgs.size(), 2u);  // light + linkquality
}

TEST(BridgeDiscovery, GoldenSwitchAndContact) {
  auto plug = test::SimDevice("smart_plug", "0x00124b0001020306", "plug");
  auto msgs = ByTopic(mqtt::discovery::DeviceDiscovery(plug, *DefinitionFor(plug), Context(false)));
  const std::string sw = "homeassistant/switch/0x00124b0001020306/switch/config";
  ASSERT_TRUE(msgs.count(sw));
  json expected = {
      {"availability", {{{"topic", "zigbee2mqtt/bridge/state"}, {"value_template", "{{ value_json.state }}"}}}},
      {"command_topic", "zigbee2mqtt/plug/set"},
      {"default_entity_id", "switch.plug"},
      {"device", DeviceBlock("0x00124b0001020306", "plug", "edged.plug", "Simulated smart plug with power metering")},
      {"name", nullptr},
      {"object_id", "plug"},
      {"origin", {{"name", "edged"}, {"sw", "0.1.0"}}},
      {"payload_off", "OFF"},
      {"payload_on", "ON"},
      {"state_topic", "zigbee2mqtt/plug"},
      {"unique_id", "0x00124b0001020306_switch_zigbee2mqtt"},
      {"value_template", "{{ value_json[\"state\"] }}"}};
  EXPECT_EQ(msgs[sw].payload, expected) << msgs[sw].payload.dump(2);
  EXPECT_EQ(msgs["homeassistant/sensor/0x00124b0001020306/energy/config"].payload["state_class"], "total_increasing");

  auto door = test::SimDevice("door_contact", "0x00124b0001020307", "front door");
  auto dmsgs = ByTopic(mqtt::discovery::DeviceDiscovery(door, *DefinitionFor(door), Context(false)));
  const std::string contact = "homeassistant/binary_sensor/0x00124b0001020307/contact/config";
  ASSERT_TRUE(dmsgs.count(contact));
  const json& c = dmsgs[contact].payload;
  EXPECT_EQ(c["device_class"], "door");
  EXPECT_EQ(c["name"], nullptr);  // zigbee-herdsman-converters asks HomeAssistant not to add "Door"
  EXPECT_EQ(c["payload_on"], false);
  EXPECT_EQ(c["payload_off"], true);
  EXPECT_EQ(c["object_id"], "front_door_contact");
  EXPECT_EQ(c["unique_id"], "0x00124b0001020307_contact_zigbee2mqtt");
  const json& low = dmsgs["homeassistant/binary_sensor/0x00124b0001020307/battery_low/config"].payload;
  EXPECT_EQ(low["entity_category"], "diagnostic");
  EXPECT_EQ(low["device_class"], "battery");
}

TEST(BridgeDiscovery, EveryPayloadPassesHomeAssistantSchema) {
  std::set<std::string> components;
  std::set<std::string> unique_ids;
  int n = 0;
  for (const char* type : {"climate_sensor", "smart_plug", "color_bulb", "motion_sensor", "door_contact"}) {
    ++n;
    for (bool availability : {false, true}) {
      auto device = test::SimDevice(type, "0x00124b000000000" + std::to_string(n), type);
      for (const auto& m : mqtt::discovery::DeviceDiscovery(device, *DefinitionFor(device), Context(availability))) {
        components.insert(m.component);
        auto problems = test::CheckHomeAssistantDiscovery(m.component, m.payload);
        EXPECT_TRUE(problems.empty()) << m.topic << "\n" << ::testing::PrintToString(problems) << "\n" << m.payload.dump(2);
        EXPECT_EQ(m.topic, "homeassistant/" + m.component + "/" + device.ieee_address + "/" + m.object_id + "/config");
        if (availability) {
          EXPECT_TRUE(unique_ids.insert(m.payload["unique_id"].get<std::string>()).second) << m.topic;
        }
      }
    }
  }
  EXPECT_EQ(components, (std::set<std::string>{"sensor", "binary_sensor", "switch", "light"}));
  for (const auto& m : mqtt::discovery::BridgeDiscovery(Context())) {
    auto problems = test::CheckHomeAssistantDiscovery(m.component, m.payload);
    EXPECT_TRUE(problems.empty()) << m.topic << "\n" << ::testing::PrintToString(problems);
  }
}

TEST(BridgeDiscovery, SchemaCheckerCatchesBadPayloads) {
  // The checker must fail on what HomeAssistant rejects, or the test above proves nothing.
  EXPECT_FALSE(test::CheckHomeAssistantDiscovery("sensor", json::parse(R"({"unique_id":"x"})")).empty());
  EXPECT_FALSE(test::CheckHomeAssistantDiscovery(
                   "sensor", json::parse(R"({"unique_id":"x","state_topic":"t","device_class":"temperature","unit_of_measurement":"%"})"))
                   .empty());
  EXPECT_FALSE(test::CheckHomeAssistantDiscovery("binary_sensor", json::parse(R"({"unique_id":"x","state_topic":"t","device_class":"door","entity_category":"config"})"))
                   .empty());
  EXPECT_FALSE(test::CheckHomeAssistantDiscovery("switch", json::parse(R"({"unique_id":"x","state_topic":"t"})")).empty());
  EXPECT_FALSE(test::CheckHomeAssistantDiscovery(
                   "light", json::parse(R"({"unique_id":"x","schema":"json","command_topic":"c","supported_color_modes":["brightness","xy"]})"))
                   .empty());
  EXPECT_FALSE(test::CheckHomeAssistantDiscovery("sensor", json::parse(R"({"unique_id":"x","state_topic":"t","bogus":1})")).empty());
  EXPECT_TRUE(test::CheckHomeAssistantDiscovery("sensor", json::parse(R"({"unique_id":"x","state_topic":"t"})")).empty());
}

TEST(BridgeDiscovery, HomeAssistantOptionFalseDisablesDiscovery) {
  auto device = test::SimDevice("smart_plug", "0x00124b0001020306", "plug");
  device.options["homeassistant"] = false;
  EXPECT_TRUE(mqtt::discovery::DeviceDiscovery(device, *DefinitionFor(device), Context()).empty());
}

TEST(BridgeDiscovery, BridgeDevice) {
  auto msgs = ByTopic(mqtt::discovery::BridgeDiscovery(Context()));
  // zigbee2mqtt keys the bridge's topics by the base topic's character codes and the coordinator.
  const std::string topic =
      "homeassistant/binary_sensor/1221051039810110150109113116116_0x00124b00deadbeef/connection_state/config";
  ASSERT_TRUE(msgs.count(topic)) << ::testing::PrintToString([&] {
    std::vector<std::string> t;
    for (auto& [k, v] : msgs) t.push_back(k);
    return t;
  }());
  const json& p = msgs[topic].payload;
  EXPECT_EQ(p["unique_id"], "bridge_0x00124b00deadbeef_connection_state_zigbee2mqtt");
  EXPECT_EQ(p["state_topic"], "zigbee2mqtt/bridge/state");
  EXPECT_FALSE(p.contains("availability"));
  EXPECT_EQ(p["device"]["identifiers"], json::array({"zigbee2mqtt_bridge_0x00124b00deadbeef"}));
  EXPECT_EQ(p["device"]["name"], "Zigbee2MQTT Bridge");
  EXPECT_FALSE(p["device"].contains("via_device"));
  EXPECT_EQ(p["object_id"], "zigbee2mqtt_bridge_connection_state");
  const auto& pj = msgs["homeassistant/switch/1221051039810110150109113116116_0x00124b00deadbeef/permit_join/config"].payload;
  EXPECT_EQ(pj["command_topic"], "zigbee2mqtt/bridge/request/permit_join");
  EXPECT_EQ(pj["state_topic"], "zigbee2mqtt/bridge/info");
  EXPECT_EQ(pj["availability_mode"], "all");
}

TEST(BridgePayloads, ResponseEnvelopeEchoesTransaction) {
  EXPECT_EQ(mqtt::bridge::OkResponse(json::parse(R"({"transaction":"abc","id":"x"})"), {{"id", "x"}}).dump(),
            R"({"data":{"id":"x"},"status":"ok","transaction":"abc"})");
  EXPECT_EQ(mqtt::bridge::ErrorResponse(json::parse(R"({"transaction":7})"), "Device 'x' does not exist").dump(),
            R"({"data":{},"error":"Device 'x' does not exist","status":"error","transaction":7})");
  EXPECT_EQ(mqtt::bridge::OkResponse(json("254"), {{"time", 254}}).dump(), R"({"data":{"time":254},"status":"ok"})");
}

TEST(BridgePayloads, Events) {
  auto device = test::SimDevice("door_contact", "0x00124b0001020307", "door");
  EXPECT_EQ(mqtt::bridge::DeviceJoinedEvent(device).dump(),
            R"({"data":{"friendly_name":"door","ieee_address":"0x00124b0001020307"},"type":"device_joined"})");
  EXPECT_EQ(mqtt::bridge::DeviceInterviewEvent(device, "started").dump(),
            R"({"data":{"friendly_name":"door","ieee_address":"0x00124b0001020307","status":"started"},"type":"device_interview"})");
  json ok = mqtt::bridge::DeviceInterviewEvent(device, "successful");
  EXPECT_EQ(ok["data"]["supported"], true);
  EXPECT_EQ(ok["data"]["definition"]["model"], "edged.door");
  EXPECT_EQ(ok["data"]["definition"]["exposes"].back()["name"], "linkquality");
  EXPECT_EQ(mqtt::bridge::DeviceLeaveEvent("0x1", "door").dump(),
            R"({"data":{"friendly_name":"door","ieee_address":"0x1"},"type":"device_leave"})");
}

TEST(BridgePayloads, BridgeDevicesListsCoordinatorAndDevices) {
  auto plug = test::SimDevice("smart_plug", "0x00124b0001020306", "plug");
  plug.options["description"] = "kitchen";
  json devices = mqtt::bridge::BridgeDevicesPayload(test::TestCoordinator(), {plug});
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0]["type"], "Coordinator");
  EXPECT_EQ(devices[0]["ieee_address"], "0x00124b00deadbeef");
  const json& d = devices[1];
  EXPECT_EQ(d["friendly_name"], "plug");
  EXPECT_EQ(d["interview_state"], "SUCCESSFUL");
  EXPECT_EQ(d["interview_completed"], true);
  EXPECT_EQ(d["supported"], true);
  EXPECT_EQ(d["description"], "kitchen");
  EXPECT_EQ(d["power_source"], "Mains (single phase)");
  EXPECT_EQ(d["endpoints"]["1"]["clusters"]["input"][2], "genOnOff");
  EXPECT_EQ(d["definition"]["exposes"][0]["type"], "switch");
  EXPECT_EQ(d["definition"]["exposes"][0]["features"][0]["access"], 7);
  EXPECT_EQ(d["definition"]["exposes"][1]["access"], 5);  // power: state + get
}

TEST(BridgePayloads, BridgeInfo) {
  mqtt::bridge::BridgeInfoInput in;
  in.version = "0.1.0";
  in.coordinator = test::TestCoordinator();
  in.permit_join = true;
  in.permit_join_end = std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000000));
  json info = mqtt::bridge::BridgeInfoPayload(in);
  EXPECT_EQ(info["permit_join"], true);
  EXPECT_EQ(info["permit_join_end"], 1700000000000);
  EXPECT_EQ(info["coordinator"]["meta"]["revision"], 20240710);
  EXPECT_EQ(info["network"]["pan_id"], 0x1A62);
  in.permit_join = false;
  EXPECT_FALSE(mqtt::bridge::BridgeInfoPayload(in).contains("permit_join_end"));
}

}  // namespace
}  // namespace edged
