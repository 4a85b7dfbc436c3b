// A small checker for HomeAssistant MQTT discovery payloads, written from HomeAssistant's MQTT docs
// (integrations/sensor.mqtt, binary_sensor.mqtt, switch.mqtt, light.mqtt "json" schema, and the
// shared availability/device/origin blocks): required keys, allowed keys with their value types, the
// enumerations HomeAssistant validates (device_class, state_class, entity_category, color modes) and
// the units HomeAssistant accepts for the device classes edged uses. Returns every problem found.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace edged::test {

enum class JsonKind { kString, kBool, kInt, kNumber, kList, kObject, kStringOrNull, kScalar };

inline bool KindMatches(const nlohmann::json& v, JsonKind kind) {
  switch (kind) {
    case JsonKind::kString: return v.is_string();
    case JsonKind::kBool: return v.is_boolean();
    case JsonKind::kInt: return v.is_number_integer();
    case JsonKind::kNumber: return v.is_number();
    case JsonKind::kList: return v.is_array();
    case JsonKind::kObject: return v.is_object();
    case JsonKind::kStringOrNull: return v.is_string() || v.is_null();
    case JsonKind::kScalar: return v.is_string() || v.is_boolean() || v.is_number();
  }
  return false;
}

inline std::vector<std::string> CheckHomeAssistantDiscovery(const std::string& component, const nlohmann::json& p) {
  using K = JsonKind;
  std::vector<std::string> problems;
  auto fail = [&](const std::string& what) { problems.push_back(component + ": " + what); };
  if (!p.is_object()) {
    fail("payload is not a JSON object");
    return problems;
  }
  // Keys every MQTT entity accepts (mqtt/schema: MQTT_ENTITY_COMMON_SCHEMA + availability).
  std::map<std::string, K> allowed = {
      {"availability", K::kList},          {"availability_mode", K::kString}, {"availability_topic", K::kString},
      {"availability_template", K::kString}, {"device", K::kObject},          {"origin", K::kObject},
      {"enabled_by_default", K::kBool},    {"entity_category", K::kString},   {"entity_picture", K::kString},
      {"icon", K::kString},                {"json_attributes_topic", K::kString},
      {"json_attributes_template", K::kString}, {"name", K::kStringOrNull},   {"object_id", K::kString},
      {"default_entity_id", K::kString},   {"unique_id", K::kString},         {"qos", K::kInt},
      {"encoding", K::kString},            {"payload_available", K::kString}, {"payload_not_available", K::kString}};
  std::set<std::string> required;
  std::set<std::string> device_classes;
  if (component == "sensor") {
    required = {"state_topic"};
    for (auto& [k, v] : std::map<std::string, K>{{"state_topic", K::kString},
                                                 {"value_template", K::kString},
                                                 {"unit_of_measurement", K::kString},
                                                 {"device_class", K::kString},
                                                 {"state_class", K::kString},
                                                 {"expire_after", K::kInt},
                                                 {"force_update", K::kBool},
                                                 {"suggested_display_precision", K::kInt},
                                                 {"options", K::kList}}) {
      allowed[k] = v;
    }
    device_classes = {"apparent_power", "aqi", "atmospheric_pressure", "battery", "carbon_dioxide",
                      "carbon_monoxide", "current", "data_rate", "data_size", "date", "distance", "duration",
                      "energy", "energy_storage", "enum", "frequency", "gas", "humidity", "illuminance",
                      "irradiance", "moisture", "monetary", "nitrogen_dioxide", "nitrogen_monoxide",
                      "nitrous_oxide", "ozone", "ph", "pm1", "pm10", "pm25", "power_factor", "power",
                      "precipitation", "precipitation_intensity", "pressure", "reactive_power",
                      "signal_strength", "sound_pressure", "speed", "sulphur_dioxide", "temperature",
                      "timestamp", "volatile_organic_compounds", "volatile_organic_compounds_parts", "voltage",
                      "volume", "volume_storage", "volume_flow_rate", "water", "weight", "wind_speed"};
  } else if (component == "binary_sensor") {
    required = {"state_topic"};
    for (auto& [k, v] : std::map<std::string, K>{{"state_topic", K::kString},
                                                 {"value_template", K::kString},
                                                 {"payload_on", K::kScalar},
                                                 {"payload_off", K::kScalar},
                                                 {"device_class", K::kString},
                                                 {"expire_after", K::kInt},
                                                 {"force_update", K::kBool},
                                                 {"off_delay", K::kInt}}) {
      allowed[k] = v;
    }
    device_classes = {"battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
                      "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
                      "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
                      "tamper", "update", "vibration", "window"};
  } else if (component == "switch") {
    required = {"command_topic"};
    for (auto& [k, v] : std::map<std::string, K>{{"command_topic", K::kString},
                                                 {"command_template", K::kString},
                                                 {"state_topic", K::kString},
                                                 {"value_template", K::kString},
                                                 {"payload_on", K::kScalar},
                                                 {"payload_off", K::kScalar},
                                                 {"state_on", K::kScalar},
                                                 {"state_off", K::kScalar},
                                                 {"optimistic", K::kBool},
                                                 {"retain", K::kBool},
                                                 {"device_class", K::kString}}) {
      allowed[k] = v;
    }
    device_classes = {"outlet", "switch"};
  } else if (component == "light") {
    required = {"command_topic", "schema"};
    for (auto& [k, v] : std::map<std::string, K>{{"schema", K::kString},
                                                 {"command_topic", K::kString},
                                                 {"state_topic", K::kString},
                                                 {"brightness", K::kBool},
                                                 {"brightness_scale", K::kInt},
                                                 {"supported_color_modes", K::kList},
                                                 {"max_mireds", K::kInt},
                                                 {"min_mireds", K::kInt},
                                                 {"max_kelvin", K::kInt},
                                                 {"min_kelvin", K::kInt},
                                                 {"color_temp_kelvin", K::kBool},
                                                 {"effect", K::kBool},
                                                 {"effect_list", K::kList},
                                                 {"flash", K::kBool},
                                                 {"flash_time_long", K::kInt},
                                                 {"flash_time_short", K::kInt},
                                                 {"optimistic", K::kBool},
                                                 {"retain", K::kBool},
                                                 {"transition", K::kBool},
                                                 {"white_scale", K::kInt}}) {
      allowed[k] = v;
    }
  } else {
    // button, select, number: edged only checks the common keys for these.
    for (auto it = p.begin(); it != p.end(); ++it) allowed.emplace(it.key(), K::kScalar);
    for (auto it = p.begin(); it != p.end(); ++it) {
      if (!p[it.key()].is_primitive()) allowed[it.key()] = p[it.key()].is_array() ? K::kList : K::kObject;
    }
  }

  for (const auto& key : required) {
    if (!p.contains(key)) fail("required key '" + key + "' is missing");
  }
  for (auto it = p.begin(); it != p.end(); ++it) {
    auto a = allowed.find(it.key());
    if (a == allowed.end()) {
      fail("key '" + it.key() + "' is not allowed");
    } else if (!KindMatches(it.value(), a->second)) {
      fail("key '" + it.key() + "' has the wrong type: " + it.value().dump());
    }
  }
  if (!p.contains("unique_id")) fail("unique_id is needed for the device registry");
  if (auto dc = p.find("device_class"); dc != p.end() && dc->is_string() && !device_classes.empty() &&
                                        !device_classes.count(dc->get<std::string>())) {
    fail("device_class '" + dc->get<std::string>() + "' is not a " + component + " device class");
  }
  if (auto sc = p.find("state_class"); sc != p.end()) {
    static const std::set<std::string> kStateClasses = {"measurement", "measurement_angle", "total", "total_increasing"};
    if (!sc->is_string() || !kStateClasses.count(sc->get<std::string>())) fail("bad state_class " + sc->dump());
  }
  if (auto ec = p.find("entity_category"); ec != p.end()) {
    if (*ec != "config" && *ec != "diagnostic") fail("bad entity_category " + ec->dump());
    if (*ec == "config" && (component == "sensor" || component == "binary_sensor")) {
      fail("entity_category config is not allowed for a read-only entity");
    }
  }
  if (auto am = p.find("availability_mode"); am != p.end() && *am != "all" && *am != "any" && *am != "latest") {
    fail("bad availability_mode " + am->dump());
  }
  if (auto av = p.find("availability"); av != p.end() && av->is_array()) {
    for (const auto& a : *av) {
      if (!a.is_object() || !a.contains("topic") || !a["topic"].is_string()) fail("availability entry without topic");
      for (auto it = a.begin(); a.is_object() && it != a.end(); ++it) {
        static const std::set<std::string> kKeys = {"topic", "payload_available", "payload_not_available", "value_template"};
        if (!kKeys.count(it.key())) fail("availability key '" + it.key() + "' is not allowed");
      }
    }
  }
  if (auto d = p.find("device"); d != p.end() && d->is_object()) {
    static const std::set<std::string> kKeys = {"identifiers", "connections", "name", "model", "model_id",
                                                "manufacturer", "sw_version", "hw_version", "via_device",
                                                "suggested_area", "configuration_url", "serial_number"};
    for (auto it = d->begin(); it != d->end(); ++it) {
      if (!kKeys.count(it.key())) fail("device key '" + it.key() + "' is not allowed");
    }
    if (!d->contains("identifiers") && !d->contains("connections")) fail("device needs identifiers or connections");
  }
  if (auto o = p.find("origin"); o != p.end()) {
    if (!o->is_object() || !o->contains("name")) fail("origin needs a name");
    static const std::set<std::string> kKeys = {"name", "sw", "sw_version", "url", "support_url"};
    for (auto it = o->begin(); o->is_object() && it != o->end(); ++it) {
      if (!kKeys.count(it.key())) fail("origin key '" + it.key() + "' is not allowed");
    }
  }
  // Units HomeAssistant accepts for the device classes edged emits (sensor/const.py DEVICE_CLASS_UNITS).
  static const std::map<std::string, std::set<std::string>> kUnits = {
      {"temperature", {"°C", "°F", "K"}},
      {"humidity", {"%"}},
      {"battery", {"%"}},
      {"atmospheric_pressure", {"cbar", "bar", "hPa", "mmHg", "inHg", "kPa", "mbar", "Pa", "psi"}},
      {"power", {"mW", "W", "kW", "MW", "GW", "TW", "BTU/h"}},
      {"voltage", {"V", "mV", "µV", "kV", "MV"}},
      {"current", {"A", "mA"}},
      {"energy", {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal", "Mcal", "Gcal"}},
      {"illuminance", {"lx"}}};
  if (component == "sensor" && p.contains("device_class")) {
    auto units = kUnits.find(p["device_class"].get<std::string>());
    if (units != kUnits.end() && (!p.contains("unit_of_measurement") ||
                                  !units->second.count(p["unit_of_measurement"].get<std::string>()))) {
      fail("device_class " + units->first + " needs one of its units, got " +
           p.value("unit_of_measurement", nlohmann::json()).dump());
    }
  }
  if (component == "light") {
    if (p.value("schema", "") != "json") fail("edged's lights use the json schema");
    static const std::set<std::string> kModes = {"onoff", "brightness", "color_temp", "hs", "xy",
                                                 "rgb", "rgbw", "rgbww", "white"};
    if (auto m = p.find("supported_color_modes"); m != p.end() && m->is_array()) {
      for (const auto& mode : *m) {
        if (!mode.is_string() || !kModes.count(mode.get<std::string>())) fail("bad color mode " + mode.dump());
      }
      // HomeAssistant: onoff and brightness must be the only mode when present.
      for (const char* lone : {"onoff", "brightness"}) {
        if (m->size() > 1 && std::find(m->begin(), m->end(), lone) != m->end()) {
          fail(std::string(lone) + " cannot be combined with other color modes");
        }
      }
    }
  }
  return problems;
}

}  // namespace edged::test
