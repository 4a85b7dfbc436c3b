#include "mqtt/bridge/exposes.h"

#include <algorithm>
#include <cctype>
#include <functional>

namespace edged::mqtt::bridge {
namespace {

using nlohmann::json;

// zigbee-herdsman-converters' standard exposes (lib/exposes.ts `presets`), with the same names,
// descriptions, units and ranges, so HomeAssistant and dashboards see what zigbee2mqtt shows.
json Battery() {
  json e = NumericExpose("battery", kAccessState | kAccessGet);
  e["unit"] = "%";
  e["description"] = "Remaining battery in %, can take up to 24 hours before reported";
  e["value_min"] = 0;
  e["value_max"] = 100;
  e["category"] = "diagnostic";
  return e;
}
json BatteryVoltage() {
  json e = NumericExpose("voltage", kAccessState | kAccessGet);
  e["unit"] = "mV";
  e["description"] = "Voltage of the battery in millivolts";
  e["category"] = "diagnostic";
  return e;
}
json BatteryLow() {
  json e = BinaryExpose("battery_low", kAccessState, true, false);
  e["description"] = "Indicates if the battery of this device is almost empty";
  e["category"] = "diagnostic";
  return e;
}
json Tamper() {
  json e = BinaryExpose("tamper", kAccessState, true, false);
  e["description"] = "Indicates whether the device is tampered";
  e["category"] = "diagnostic";
  return e;
}
json Measurement(std::string_view name, std::string_view unit, std::string_view description) {
  json e = NumericExpose(name, kAccessState | kAccessGet);
  e["unit"] = unit;
  e["description"] = description;
  return e;
}
json Temperature() { return Measurement("temperature", "°C", "Measured temperature value"); }
json Humidity() { return Measurement("humidity", "%", "Measured relative humidity"); }
json Pressure() { return Measurement("pressure", "hPa", "The measured atmospheric pressure"); }
json Illuminance() { return Measurement("illuminance", "lx", "Measured illuminance"); }
json Power() { return Measurement("power", "W", "Instantaneous measured power"); }
json Voltage() {
  json e = Measurement("voltage", "V", "Measured electrical potential value");
  e["homeassistant"] = {{"entityCategory", "diagnostic"}};  // as zigbee-herdsman-converters' electricityMeter
  return e;
}
json Current() { return Measurement("current", "A", "Instantaneous measured electrical current"); }
json Energy() { return Measurement("energy", "kWh", "Sum of consumed energy"); }
json Occupancy(int access) {
  json e = BinaryExpose("occupancy", access, true, false);
  e["description"] = "Indicates whether the device detected occupancy";
  return e;
}
json Contact() {
  json e = BinaryExpose("contact", kAccessState, false, true);
  e["description"] = "Indicates if the contact is closed (= true) or open (= false)";
  // Keeps HomeAssistant from naming the entity "<device> Door" (zigbee-herdsman-converters does the same).
  e["homeassistant"] = {{"name", nullptr}};
  return e;
}

json SwitchExpose() {
  json state = BinaryExpose("state", kAccessAll, "ON", "OFF");
  state["value_toggle"] = "TOGGLE";
  state["description"] = "On/off state of the switch";
  return {{"type", "switch"}, {"features", json::array({state})}};
}

json LightExpose(bool brightness, bool color_temp, bool color_xy) {
  json features = json::array();
  json state = BinaryExpose("state", kAccessAll, "ON", "OFF");
  state["value_toggle"] = "TOGGLE";
  state["description"] = "On/off state of this light";
  features.push_back(state);
  if (brightness) {
    json b = NumericExpose("brightness", kAccessAll);
    b["value_min"] = 0;
    b["value_max"] = 254;
    b["description"] = "Brightness of this light";
    features.push_back(b);
  }
  if (color_temp) {
    // colorTempPhysicalMin/Max as zigbee2mqtt assumes them when a bulb does not report them.
    constexpr int kMin = 150, kMax = 500;
    json ct = NumericExpose("color_temp", kAccessAll);
    ct["unit"] = "mired";
    ct["value_min"] = kMin;
    ct["value_max"] = kMax;
    ct["description"] = "Color temperature of this light";
    ct["presets"] = json::array({
        {{"name", "coolest"}, {"value", kMin}, {"description", "Coolest temperature supported"}},
        {{"name", "cool"}, {"value", 250}, {"description", "Cool temperature (250 mireds / 4000 Kelvin)"}},
        {{"name", "neutral"}, {"value", 370}, {"description", "Neutral temperature (370 mireds / 2700 Kelvin)"}},
        {{"name", "warm"}, {"value", 454}, {"description", "Warm temperature (454 mireds / 2200 Kelvin)"}},
        {{"name", "warmest"}, {"value", kMax}, {"description", "Warmest temperature supported"}},
    });
    features.push_back(ct);
  }
  if (color_xy) {
    json xy = {{"type", "composite"},
               {"name", "color_xy"},
               {"label", "Color (X/Y)"},
               {"property", "color"},
               {"access", kAccessAll},
               {"description", "Color of this light in the CIE 1931 color space (x/y)"},
               {"features", json::array({NumericExpose("x", kAccessAll), NumericExpose("y", kAccessAll)})}};
    features.push_back(xy);
  }
  return {{"type", "light"}, {"features", features}};
}

struct KnownDefinition {
  KnownModel model;
  std::function<Definition()> make;
};

Definition Make(std::string model, std::string description, json exposes) {
  Definition d;
  d.model = std::move(model);
  d.vendor = "edged";
  d.description = std::move(description);
  d.exposes = std::move(exposes);
  return d;
}

const std::vector<KnownDefinition>& KnownDefinitions() {
  // The simulator's device types (drivers/zigbee/sim/simulator.cc MakeDevice). Their Basic cluster
  // modelId is the key; the exposes follow the clusters and converters each type has.
  static const std::vector<KnownDefinition> kTable = {
      {{"edged.climate", "climate_sensor"},
       [] {
         return Make("edged.climate", "Simulated temperature, humidity and pressure sensor",
                     json::array({Battery(), Temperature(), Humidity(), Pressure(), BatteryVoltage()}));
       }},
      {{"edged.plug", "smart_plug"},
       [] {
         return Make("edged.plug", "Simulated smart plug with power metering",
                     json::array({SwitchExpose(), Power(), Voltage(), Current(), Energy()}));
       }},
      {{"edged.bulb", "color_bulb"},
       [] {
         return Make("edged.bulb", "Simulated color and white spectrum bulb",
                     json::array({LightExpose(true, true, true)}));
       }},
      {{"edged.motion", "motion_sensor"},
       [] {
         return Make("edged.motion", "Simulated motion sensor",
                     json::array({Occupancy(kAccessState | kAccessGet), Illuminance(), Battery(), BatteryVoltage()}));
       }},
      {{"edged.door", "door_contact"},
       [] {
         return Make("edged.door", "Simulated door and window contact sensor",
                     json::array({Contact(), Tamper(), BatteryLow(), Battery()}));
       }},
  };
  return kTable;
}

bool HasCluster(const DeviceInfo& device, std::string_view cluster) {
  for (const auto& ep : device.endpoints) {
    if (std::find(ep.input_clusters.begin(), ep.input_clusters.end(), cluster) != ep.input_clusters.end()) {
      return true;
    }
  }
  return false;
}

// zigbee2mqtt generates a definition for models it does not know from the input clusters
// (zigbee-herdsman-converters lib/generateDefinition.ts); this follows its cluster → expose rules
// for the clusters edged converts.
Definition Generate(const DeviceInfo& device) {
  json exposes = json::array();
  const bool on_off = HasCluster(device, "genOnOff");
  const bool level = HasCluster(device, "genLevelCtrl");
  const bool color = HasCluster(device, "lightingColorCtrl");
  if (level || color) {
    exposes.push_back(LightExpose(level, color, color));
  } else if (on_off) {
    exposes.push_back(SwitchExpose());
  }
  if (HasCluster(device, "msTemperatureMeasurement")) exposes.push_back(Temperature());
  if (HasCluster(device, "msRelativeHumidity")) exposes.push_back(Humidity());
  if (HasCluster(device, "msPressureMeasurement")) exposes.push_back(Pressure());
  if (HasCluster(device, "msIlluminanceMeasurement")) exposes.push_back(Illuminance());
  if (HasCluster(device, "msOccupancySensing")) exposes.push_back(Occupancy(kAccessState | kAccessGet));
  if (HasCluster(device, "ssIasZone")) {
    // The zone type is only known after enrollment; a contact is the commonest IAS zone device.
    exposes.push_back(Contact());
    exposes.push_back(Tamper());
    exposes.push_back(BatteryLow());
  }
  if (HasCluster(device, "haElectricalMeasurement")) {
    exposes.push_back(Power());
    exposes.push_back(Voltage());
    exposes.push_back(Current());
  }
  if (HasCluster(device, "seMetering")) exposes.push_back(Energy());
  if (HasCluster(device, "genPowerCfg")) exposes.push_back(Battery());

  Definition d;
  d.model = device.model_id;
  d.vendor = device.manufacturer;
  d.description = "Automatically generated definition";
  d.source = "generated";
  d.exposes = std::move(exposes);
  return d;
}

void CollectProperties(const json& exposes, std::vector<std::string>& out) {
  for (const auto& e : exposes) {
    if (e.contains("features") && e.value("type", "") != "composite") {
      CollectProperties(e["features"], out);
      continue;
    }
    if (auto it = e.find("property"); it != e.end() && it->is_string() && !it->get<std::string>().empty()) {
      const std::string p = it->get<std::string>();
      if (std::find(out.begin(), out.end(), p) == out.end()) out.push_back(p);
    }
  }
}

const json* FindIn(const json& exposes, std::string_view property) {
  for (const auto& e : exposes) {
    if (e.contains("features") && e.value("type", "") != "composite") {
      if (const json* f = FindIn(e["features"], property)) return f;
      continue;
    }
    if (auto it = e.find("property"); it != e.end() && it->is_string() && *it == property) return &e;
  }
  return nullptr;
}

}  // namespace

std::string_view InterviewStateName(InterviewState state) {
  switch (state) {
    case InterviewState::kPending: return "PENDING";
    case InterviewState::kInProgress: return "IN_PROGRESS";
    case InterviewState::kSuccessful: return "SUCCESSFUL";
    case InterviewState::kFailed: return "FAILED";
  }
  return "PENDING";
}

std::string LabelFromName(std::string_view name) {
  std::string label(name);
  std::replace(label.begin(), label.end(), '_', ' ');
  if (!label.empty()) label[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(label[0])));
  return label;
}

nlohmann::json NumericExpose(std::string_view name, int access) {
  return {{"type", "numeric"}, {"name", name}, {"label", LabelFromName(name)}, {"property", name}, {"access", access}};
}

nlohmann::json BinaryExpose(std::string_view name, int access, nlohmann::json value_on, nlohmann::json value_off) {
  return {{"type", "binary"},         {"name", name},         {"label", LabelFromName(name)},
          {"property", name},         {"access", access},     {"value_on", std::move(value_on)},
          {"value_off", std::move(value_off)}};
}

nlohmann::json EnumExpose(std::string_view name, int access, std::vector<std::string> values) {
  return {{"type", "enum"},   {"name", name},     {"label", LabelFromName(name)},
          {"property", name}, {"access", access}, {"values", std::move(values)}};
}

std::optional<Definition> DefinitionFor(const DeviceInfo& device) {
  if (device.model_id.empty()) return std::nullopt;
  for (const auto& known : KnownDefinitions()) {
    if (device.model_id == known.model.zigbee_model) return known.make();
  }
  return Generate(device);
}

nlohmann::json DeviceExposes(const Definition& definition) {
  json exposes = definition.exposes;
  json lqi = NumericExpose("linkquality", kAccessState);
  lqi["unit"] = "lqi";
  lqi["description"] = "Link quality (signal strength)";
  lqi["value_min"] = 0;
  lqi["value_max"] = 255;
  lqi["category"] = "diagnostic";
  exposes.push_back(std::move(lqi));
  return exposes;
}

nlohmann::json DefinitionPayload(const Definition& definition) {
  return {{"source", definition.source},       {"model", definition.model},
          {"vendor", definition.vendor},       {"description", definition.description},
          {"exposes", DeviceExposes(definition)}, {"supports_ota", definition.supports_ota},
          {"options", definition.options}};
}

std::vector<std::string> ExposedProperties(const nlohmann::json& exposes) {
  std::vector<std::string> out;
  CollectProperties(exposes, out);
  return out;
}

const nlohmann::json* FindExpose(const nlohmann::json& exposes, std::string_view property) {
  return FindIn(exposes, property);
}

const std::vector<KnownModel>& KnownModels() {
  static const std::vector<KnownModel> kModels = [] {
    std::vector<KnownModel> models;
    for (const auto& d : KnownDefinitions()) models.push_back(d.model);
    return models;
  }();
  return kModels;
}

}  // namespace edged::mqtt::bridge
