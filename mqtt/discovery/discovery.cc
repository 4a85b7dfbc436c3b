#include "mqtt/discovery/discovery.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <string_view>

namespace edged::mqtt::discovery {
namespace {

using nlohmann::json;
using bridge::kAccessSet;
using bridge::kAccessState;

// An entry before topics are filled in: the shape of zigbee2mqtt's DiscoveryEntry.
// discovery_payload may hold the placeholders state_topic (bool), state_topic_postfix,
// command_topic (true = the device's /set topic), command_topic_prefix/_postfix, availability false.
struct Entry {
  std::string type;
  std::string object_id;
  json payload;
};

// zigbee2mqtt's NUMERIC_DISCOVERY_LOOKUP / BINARY_DISCOVERY_LOOKUP rows for the properties edged
// exposes (a table, not a switch, so a new property is one line).
const json& NumericLookup(std::string_view name) {
  static const json kTable = {
      {"battery", {{"device_class", "battery"}, {"state_class", "measurement"}}},
      {"current", {{"device_class", "current"}, {"state_class", "measurement"}}},
      {"energy", {{"device_class", "energy"}, {"state_class", "total_increasing"}}},
      {"humidity", {{"device_class", "humidity"}, {"state_class", "measurement"}}},
      {"illuminance", {{"device_class", "illuminance"}, {"state_class", "measurement"}}},
      {"linkquality",
       {{"enabled_by_default", false},
        {"entity_category", "diagnostic"},
        {"icon", "mdi:signal"},
        {"state_class", "measurement"}}},
      {"power", {{"device_class", "power"}, {"state_class", "measurement"}}},
      {"pressure", {{"device_class", "atmospheric_pressure"}, {"state_class", "measurement"}}},
      {"temperature", {{"device_class", "temperature"}, {"state_class", "measurement"}}},
      {"voltage", {{"device_class", "voltage"}, {"state_class", "measurement"}}},
  };
  static const json kEmpty = json::object();
  auto it = kTable.find(std::string(name));
  return it == kTable.end() ? kEmpty : *it;
}

const json& BinaryLookup(std::string_view name) {
  static const json kTable = {
      {"battery_low", {{"entity_category", "diagnostic"}, {"device_class", "battery"}}},
      {"contact", {{"device_class", "door"}}},
      {"occupancy", {{"device_class", "occupancy"}}},
      {"tamper", {{"device_class", "tamper"}}},
  };
  static const json kEmpty = json::object();
  auto it = kTable.find(std::string(name));
  return it == kTable.end() ? kEmpty : *it;
}

void Merge(json& into, const json& from) {
  for (auto it = from.begin(); it != from.end(); ++it) into[it.key()] = it.value();
}

std::string Str(const json& e, const char* key) {
  auto it = e.find(key);
  return it != e.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string ValueTemplate(const std::string& property) { return "{{ value_json[\"" + property + "\"] }}"; }

// extension/homeassistant.ts exposeToConfig(), for one expose of a device without endpoint names.
std::vector<Entry> ExposeToEntries(const json& expose) {
  std::vector<Entry> entries;
  const std::string type = Str(expose, "type");
  const std::string name = Str(expose, "name");
  const std::string property = Str(expose, "property");
  const std::string label = Str(expose, "label");
  const int access = expose.value("access", 0);

  if (type == "light") {
    const json& features = expose["features"];
    auto has = [&](std::string_view n) {
      return std::any_of(features.begin(), features.end(), [&](const json& f) { return Str(f, "name") == n; });
    };
    Entry e{"light", "light", {{"name", nullptr}, {"brightness", has("brightness")}, {"schema", "json"},
                               {"command_topic", true}, {"brightness_scale", 254}}};
    json modes = json::array();
    if (has("color_xy")) modes.push_back("xy");
    if (has("color_temp")) modes.push_back("color_temp");
    e.payload["supported_color_modes"] = modes.empty() ? json::array({"brightness"}) : modes;
    for (const auto& f : features) {
      if (Str(f, "name") == "color_temp") {
        if (f.contains("value_max")) e.payload["max_mireds"] = f["value_max"];
        if (f.contains("value_min")) e.payload["min_mireds"] = f["value_min"];
      }
    }
    entries.push_back(std::move(e));
  } else if (type == "switch") {
    for (const auto& f : expose["features"]) {
      if (Str(f, "name") != "state") continue;
      const std::string prop = Str(f, "property");
      entries.push_back({"switch", "switch",
                         {{"name", nullptr},
                          {"payload_off", f.value("value_off", json())},
                          {"payload_on", f.value("value_on", json())},
                          {"value_template", ValueTemplate(prop)},
                          {"command_topic", true}}});
    }
  } else if (type == "binary") {
    if (access & kAccessSet) {
      const json on = expose.value("value_on", json());
      const json off = expose.value("value_off", json());
      Entry e{"switch", "switch_" + name,
              {{"name", label},
               {"value_template", on.is_boolean()
                                      ? "{% if value_json[\"" + property + "\"] %}true{% else %}false{% endif %}"
                                      : ValueTemplate(property)},
               {"payload_on", on.is_string() ? on.get<std::string>() : on.dump()},
               {"payload_off", off.is_string() ? off.get<std::string>() : off.dump()},
               {"command_topic", true},
               {"command_topic_postfix", property}}};
      Merge(e.payload, BinaryLookup(name));
      entries.push_back(std::move(e));
    } else {
      Entry e{"binary_sensor", name,
              {{"name", label},
               {"value_template", ValueTemplate(property)},
               {"payload_on", expose.value("value_on", json())},
               {"payload_off", expose.value("value_off", json())}}};
      Merge(e.payload, BinaryLookup(name));
      entries.push_back(std::move(e));
    }
  } else if (type == "numeric") {
    if (access & kAccessSet) {
      Entry e{"number", name,
              {{"name", label},
               {"value_template", ValueTemplate(property)},
               {"command_topic", true},
               {"command_topic_postfix", property}}};
      if (expose.contains("unit")) e.payload["unit_of_measurement"] = expose["unit"];
      if (expose.contains("value_step")) e.payload["step"] = expose["value_step"];
      Merge(e.payload, NumericLookup(name));
      if (NumericLookup(name).value("device_class", "") != "temperature") e.payload.erase("device_class");
      if (expose.contains("value_min")) e.payload["min"] = expose["value_min"];
      if (expose.contains("value_max")) e.payload["max"] = expose["value_max"];
      entries.push_back(std::move(e));
    } else {
      Entry e{"sensor", name,
              {{"name", label}, {"value_template", ValueTemplate(property)}, {"enabled_by_default", true}}};
      const std::string unit = Str(expose, "unit");
      if (!unit.empty()) e.payload["unit_of_measurement"] = unit;
      Merge(e.payload, NumericLookup(name));
      if (unit == "Wh" || unit == "kWh") {
        Merge(e.payload, {{"device_class", "energy"}, {"state_class", "total_increasing"}});
      } else if (unit == "A" || unit == "mA") {
        Merge(e.payload, {{"device_class", "current"}, {"state_class", "measurement"}});
      } else if (unit == "mW" || unit == "W" || unit == "kW") {
        Merge(e.payload, {{"device_class", "power"}, {"state_class", "measurement"}});
      }
      // HomeAssistant warns about a device_class without a unit.
      if (e.payload.contains("device_class") && !e.payload.contains("unit_of_measurement")) {
        e.payload.erase("device_class");
      }
      if (e.payload.value("entity_category", "") == "config") e.payload["entity_category"] = "diagnostic";
      entries.push_back(std::move(e));
    }
  } else if (type == "enum") {
    const json& values = expose.value("values", json::array());
    if ((access & kAccessSet) && values.size() == 1) {
      entries.push_back({"button", property,
                         {{"name", label},
                          {"state_topic", false},
                          {"command_topic", true},
                          {"command_topic_postfix", property},
                          {"payload_press", values[0].is_string() ? values[0].get<std::string>() : values[0].dump()}}});
    } else if (access & kAccessSet) {
      json options = json::array();
      for (const auto& v : values) options.push_back(v.is_string() ? v.get<std::string>() : v.dump());
      Entry e{"select", property,
              {{"name", label},
               {"state_topic", (access & kAccessState) != 0},
               {"command_topic", true},
               {"command_topic_postfix", property},
               {"options", options}}};
      if (access & kAccessState) e.payload["value_template"] = ValueTemplate(property);
      entries.push_back(std::move(e));
    } else if (access & kAccessState) {
      entries.push_back({"sensor", property, {{"name", label}, {"value_template", ValueTemplate(property)}}});
    }
  }

  // Post-processing shared by every expose type (same order as zigbee2mqtt).
  const std::string category = Str(expose, "category");
  for (auto& entry : entries) {
    if (category == "config" || category == "diagnostic") entry.payload["entity_category"] = category;
    if (auto ha = expose.find("homeassistant"); ha != expose.end() && ha->is_object()) {
      if (ha->contains("entityCategory")) entry.payload["entity_category"] = (*ha)["entityCategory"];
      if (ha->contains("deviceClass")) entry.payload["device_class"] = (*ha)["deviceClass"];
      if (ha->contains("enabledByDefault")) entry.payload["enabled_by_default"] = (*ha)["enabledByDefault"];
      if (ha->contains("icon")) entry.payload["icon"] = (*ha)["icon"];
      if (ha->contains("name")) entry.payload["name"] = (*ha)["name"];
    }
    if ((entry.type == "binary_sensor" || entry.type == "sensor") && entry.payload.value("entity_category", "") == "config") {
      entry.payload["entity_category"] = "diagnostic";
    }
    // Let HomeAssistant name the entity after its device_class.
    if (entry.payload.contains("device_class") && entry.payload.contains("name") && !entry.payload["name"].is_null()) {
      entry.payload.erase("name");
    }
  }
  return entries;
}

std::string ObjectIdBase(std::string name) {
  // devicePayload.name.replace(/\s+/g, "_").toLowerCase()
  std::string out;
  bool in_space = false;
  for (char c : name) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!in_space) out.push_back('_');
      in_space = true;
    } else {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
      in_space = false;
    }
  }
  return out;
}

// zigbee2mqtt's getEncodedBaseTopic(): the base topic's character codes, concatenated.
std::string EncodedBaseTopic(const std::string& base) {
  std::string out;
  for (unsigned char c : base) out += std::to_string(static_cast<int>(c));
  return out;
}

// extension/homeassistant.ts discover(): topics, ids, device block, origin and availability.
DiscoveryMessage Finalize(Entry entry, const std::string& entity_name, const std::string& entity_id,
                          const std::string& topic_key, const json& device_block, bool device_availability,
                          bool is_bridge, const DiscoveryContext& ctx) {
  json p = std::move(entry.payload);
  const std::string base = ctx.base_topic + "/" + entity_name;
  std::string state_topic = base;
  if (p.contains("state_topic_postfix")) {
    state_topic += "/" + p["state_topic_postfix"].get<std::string>();
    p.erase("state_topic_postfix");
  }
  if (!p.contains("state_topic") || (p["state_topic"].is_boolean() && p["state_topic"].get<bool>())) {
    p["state_topic"] = state_topic;
  } else {
    p.erase("state_topic");
  }

  std::string object_id = ObjectIdBase(device_block["name"].get<std::string>());
  const auto underscore = entry.object_id.find('_');
  if (entry.object_id.rfind(entry.type, 0) == 0 && underscore != std::string::npos) {
    object_id += "_" + entry.object_id.substr(underscore + 1);
  } else if (entry.object_id.rfind(entry.type, 0) != 0) {
    object_id += "_" + entry.object_id;
  }
  p["object_id"] = object_id;
  p["default_entity_id"] = entry.type + "." + object_id;
  p["unique_id"] = entity_id + "_" + entry.object_id + "_" + ctx.base_topic;
  p["device"] = device_block;
  p["origin"] = {{"name", "edged"}, {"sw", ctx.version}};

  if (!p.contains("availability") || !(p["availability"].is_boolean() && !p["availability"].get<bool>())) {
    json availability = json::array({{{"topic", ctx.base_topic + "/bridge/state"}}});
    if (!is_bridge) {
      if (device_availability) {
        p["availability_mode"] = "all";
        availability.push_back({{"topic", base + "/availability"}});
      }
    } else {
      p["availability_mode"] = "all";
    }
    for (auto& a : availability) a["value_template"] = "{{ value_json.state }}";
    p["availability"] = availability;
  } else {
    p.erase("availability");
  }

  std::string prefix, postfix;
  if (p.contains("command_topic_prefix")) {
    prefix = p["command_topic_prefix"].get<std::string>() + "/";
    p.erase("command_topic_prefix");
  }
  if (p.contains("command_topic_postfix")) {
    postfix = "/" + p["command_topic_postfix"].get<std::string>();
    p.erase("command_topic_postfix");
  }
  if (p.contains("command_topic") && p["command_topic"].is_boolean()) {
    if (p["command_topic"].get<bool>()) {
      p["command_topic"] = base + "/" + prefix + "set" + postfix;
    } else {
      p.erase("command_topic");
    }
  }

  DiscoveryMessage m;
  m.component = entry.type;
  m.object_id = entry.object_id;
  m.topic = ctx.discovery_topic + "/" + entry.type + "/" + topic_key + "/" + entry.object_id + "/config";
  m.payload = std::move(p);
  return m;
}

}  // namespace

std::string BridgeIdentifier(const DiscoveryContext& context) {
  return "zigbee2mqtt_bridge_" + context.coordinator.ieee_address;
}

nlohmann::json DeviceBlock(const bridge::DeviceInfo& device, const bridge::Definition& definition,
                           const DiscoveryContext& context) {
  std::string name = device.friendly_name;
  if (auto ha = device.options.find("homeassistant"); ha != device.options.end() && ha->is_object()) {
    if (auto n = ha->find("name"); n != ha->end() && n->is_string()) name = n->get<std::string>();
  }
  json block = {{"identifiers", json::array({"zigbee2mqtt_" + device.ieee_address})},
                {"name", name},
                {"model", definition.description},
                {"model_id", definition.model},
                {"manufacturer", definition.vendor},
                {"via_device", BridgeIdentifier(context)}};
  if (!device.software_build_id.empty()) block["sw_version"] = device.software_build_id;
  if (device.hardware_version) block["hw_version"] = *device.hardware_version;
  return block;
}

std::vector<DiscoveryMessage> DeviceDiscovery(const bridge::DeviceInfo& device, const bridge::Definition& definition,
                                              const DiscoveryContext& context) {
  std::vector<DiscoveryMessage> out;
  // options.homeassistant: false turns discovery off for the device, as in zigbee2mqtt.
  if (auto ha = device.options.find("homeassistant"); ha != device.options.end() && ha->is_boolean() && !ha->get<bool>()) {
    return out;
  }
  const json device_block = DeviceBlock(device, definition, context);
  const bool availability = context.availability && device.options.value("availability", json(true)) != json(false);
  for (const auto& expose : bridge::DeviceExposes(definition)) {
    for (auto& entry : ExposeToEntries(expose)) {
      out.push_back(Finalize(std::move(entry), device.friendly_name, device.ieee_address, device.ieee_address,
                             device_block, availability, /*is_bridge=*/false, context));
    }
  }
  return out;
}

std::vector<DiscoveryMessage> BridgeDiscovery(const DiscoveryContext& context) {
  const std::string bridge_topic = context.base_topic + "/bridge";
  const std::vector<Entry> entries = {
      {"binary_sensor", "connection_state",
       {{"name", "Connection state"},
        {"device_class", "connectivity"},
        {"entity_category", "diagnostic"},
        {"state_topic", true},
        {"state_topic_postfix", "state"},
        {"value_template", "{{ value_json.state }}"},
        {"payload_on", "online"},
        {"payload_off", "offline"},
        {"availability", false}}},
      {"binary_sensor", "restart_required",
       {{"name", "Restart required"},
        {"device_class", "problem"},
        {"entity_category", "diagnostic"},
        {"enabled_by_default", false},
        {"state_topic", true},
        {"state_topic_postfix", "info"},
        {"value_template", "{{ value_json.restart_required }}"},
        {"payload_on", true},
        {"payload_off", false}}},
      {"button", "restart",
       {{"name", "Restart"},
        {"device_class", "restart"},
        {"state_topic", false},
        {"command_topic", bridge_topic + "/request/restart"},
        {"payload_press", ""}}},
      {"sensor", "version",
       {{"name", "Version"},
        {"icon", "mdi:zigbee"},
        {"entity_category", "diagnostic"},
        {"state_topic", true},
        {"state_topic_postfix", "info"},
        {"value_template", "{{ value_json.version }}"}}},
      {"sensor", "coordinator_version",
       {{"name", "Coordinator version"},
        {"icon", "mdi:chip"},
        {"entity_category", "diagnostic"},
        {"enabled_by_default", false},
        {"state_topic", true},
        {"state_topic_postfix", "info"},
        {"value_template", "{{ value_json.coordinator.meta.revision }}"}}},
      {"switch", "permit_join",
       {{"name", "Permit join"},
        {"icon", "mdi:human-greeting-proximity"},
        {"state_topic", true},
        {"state_topic_postfix", "info"},
        {"value_template", "{{ value_json.permit_join | lower }}"},
        {"command_topic", bridge_topic + "/request/permit_join"},
        {"state_on", "true"},
        {"state_off", "false"},
        {"payload_on", "{\"time\": 254}"},
        {"payload_off", "{\"time\": 0}"}}},
  };
  const std::string id = "bridge_" + context.coordinator.ieee_address;
  const json device_block = {{"identifiers", json::array({BridgeIdentifier(context)})},
                             {"name", "Zigbee2MQTT Bridge"},
                             {"model", "Bridge"},
                             {"manufacturer", "edged"},
                             {"hw_version", context.coordinator.type + " " + context.coordinator.revision},
                             {"sw_version", context.version}};
  std::vector<DiscoveryMessage> out;
  for (const auto& entry : entries) {
    out.push_back(Finalize(entry, "bridge", id, EncodedBaseTopic(context.base_topic) + "_" + context.coordinator.ieee_address,
                           device_block,
                           /*device_availability=*/false, /*is_bridge=*/true, context));
  }
  return out;
}

}  // namespace edged::mqtt::discovery
