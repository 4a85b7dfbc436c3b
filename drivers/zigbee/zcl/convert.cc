#include "drivers/zigbee/zcl/convert.h"

#include <cmath>
#include <map>

#include <spdlog/fmt/fmt.h>

#include "drivers/zigbee/zcl/clusters.h"

namespace edged::zigbee::zcl {
namespace {

using json = nlohmann::json;

double Round(double v, int digits) {
  const double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

// A JSON number for values that are whole, so 21.0 prints as 21 as zigbee2mqtt's JavaScript does.
json Num(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 9e15) return static_cast<std::int64_t>(v);
  return v;
}

std::optional<double> Number(const Value& v) { return v.AsNumber(); }

// Bitmaps as integers; a peer may send any type for any attribute, so out-of-range values (negative,
// NaN, huge floats) become 0 instead of undefined behaviour in a cast.
std::uint64_t Bits(double v) {
  if (!(v >= 0 && v < 18446744073709551615.0)) return 0;
  return static_cast<std::uint64_t>(v);
}

void PutLE16(Bytes& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
}

}  // namespace

json ZoneStatusToState(std::uint16_t zone_status, std::uint16_t zone_type) {
  json out = json::object();
  const bool alarm1 = (zone_status & 0x0001) != 0;
  if (zone_type == 0x000D) {
    out["occupancy"] = alarm1;
  } else {
    out["contact"] = !alarm1;  // alarm1 set = opened
  }
  out["tamper"] = (zone_status & 0x0004) != 0;
  out["battery_low"] = (zone_status & 0x0008) != 0;
  return out;
}

json AttributesToState(std::uint16_t cl, std::span<const AttributeRecord> attributes, const MeasurementScale& scale) {
  json out = json::object();
  for (const auto& rec : attributes) {
    const auto n = Number(rec.value);
    if (!n) continue;
    const double v = *n;
    switch (cl) {
      case cluster::kTemperature:
        if (rec.id == attr::kMeasuredValue && v != -32768) out["temperature"] = Num(Round(v / 100.0, 2));
        break;
      case cluster::kHumidity:
        if (rec.id == attr::kMeasuredValue && v != 0xFFFF) out["humidity"] = Num(Round(v / 100.0, 2));
        break;
      case cluster::kPressure:
        if (rec.id == attr::kMeasuredValue && v != -32768) out["pressure"] = Num(v);  // hPa (= 0.1 kPa)
        break;
      case cluster::kIlluminance:
        if (rec.id == attr::kMeasuredValue && v != 0xFFFF) {
          out["illuminance"] = Num(v <= 0 ? 0 : std::round(std::pow(10.0, (v - 1) / 10000.0)));
        }
        break;
      case cluster::kPowerConfiguration:
        if (rec.id == attr::kBatteryPercentageRemaining && v != 0xFF) {
          out["battery"] = Num(std::min(100.0, std::round(v / 2.0)));
        } else if (rec.id == attr::kBatteryVoltage && v != 0xFF) {
          out["voltage"] = Num(v * 100);  // mV
        }
        break;
      case cluster::kOccupancy:
        if (rec.id == attr::kOccupancy) out["occupancy"] = (Bits(v) & 1) != 0;
        break;
      case cluster::kIasZone:
        if (rec.id == attr::kZoneStatus) out.update(ZoneStatusToState(static_cast<std::uint16_t>(Bits(v)), 0x0015));
        break;
      case cluster::kOnOff:
        if (rec.id == attr::kOnOff) out["state"] = v != 0 ? "ON" : "OFF";
        break;
      case cluster::kLevelControl:
        if (rec.id == attr::kCurrentLevel) out["brightness"] = Num(v);
        break;
      case cluster::kColorControl:
        if (rec.id == attr::kColorTemperature) {
          out["color_temp"] = Num(v);
        } else if (rec.id == attr::kCurrentX) {
          out["color"]["x"] = Round(v / 65535.0, 4);
        } else if (rec.id == attr::kCurrentY) {
          out["color"]["y"] = Round(v / 65535.0, 4);
        } else if (rec.id == attr::kColorMode) {
          static constexpr const char* kModes[] = {"hs", "xy", "color_temp"};
          if (v >= 0 && v <= 2) out["color_mode"] = kModes[static_cast<int>(v)];
        }
        break;
      case cluster::kElectricalMeasurement:
        if (rec.id == attr::kActivePower && v != -32768) {
          out["power"] = Num(Round(v * scale.power_multiplier / scale.power_divisor, 2));
        } else if (rec.id == attr::kRmsVoltage && v != 0xFFFF) {
          out["voltage"] = Num(Round(v * scale.voltage_multiplier / scale.voltage_divisor, 2));
        } else if (rec.id == attr::kRmsCurrent && v != 0xFFFF) {
          out["current"] = Num(Round(v * scale.current_multiplier / scale.current_divisor, 3));
        }
        break;
      case cluster::kMetering:
        if (rec.id == attr::kCurrentSummationDelivered) {
          out["energy"] = Num(Round(v * scale.energy_multiplier / scale.energy_divisor, 2));
        }
        break;
      default:
        break;
    }
  }
  return out;
}

json ClusterCommandToState(std::uint16_t cl, const Frame& frame) {
  if (frame.header.kind != FrameKind::kCluster) return json::object();
  if (cl == cluster::kIasZone && frame.header.server_to_client &&
      frame.header.command == cmd::kZoneStatusChangeNotification && frame.payload.size() >= 2) {
    const auto status = static_cast<std::uint16_t>(frame.payload[0] | (frame.payload[1] << 8));
    return ZoneStatusToState(status, 0x0015);
  }
  if (cl == cluster::kOnOff && !frame.header.server_to_client) {
    // A switch bound to the coordinator sends on/off commands; zigbee2mqtt reports them as "action".
    switch (frame.header.command) {
      case cmd::kOff: return {{"action", "off"}};
      case cmd::kOn: return {{"action", "on"}};
      case cmd::kToggle: return {{"action", "toggle"}};
      default: break;
    }
  }
  return json::object();
}

StatusOr<std::vector<ZclRequest>> JsonToZcl(const json& command) {
  if (!command.is_object()) return InvalidArgumentError("zigbee command: expected a JSON object");
  std::vector<ZclRequest> out;
  std::uint16_t transition = 0;  // tenths of a second
  if (auto it = command.find("transition"); it != command.end()) {
    if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 6553.5) {
      return InvalidArgumentError("zigbee command: 'transition' must be a number of seconds in 0..6553.5");
    }
    transition = static_cast<std::uint16_t>(std::lround(it->get<double>() * 10));
  }
  std::optional<std::string> state;
  if (auto it = command.find("state"); it != command.end()) {
    if (!it->is_string()) return InvalidArgumentError("zigbee command: 'state' must be \"ON\", \"OFF\" or \"TOGGLE\"");
    std::string s = it->get<std::string>();
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (s != "ON" && s != "OFF" && s != "TOGGLE") {
      return InvalidArgumentError(fmt::format("zigbee command: 'state' is \"{}\"; expected ON, OFF or TOGGLE", s));
    }
    state = s;
  }
  std::optional<int> brightness;
  if (auto it = command.find("brightness"); it != command.end()) {
    if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 255) {
      return InvalidArgumentError("zigbee command: 'brightness' must be a number in 0..254");
    }
    brightness = std::min(254, static_cast<int>(std::lround(it->get<double>())));
  }
  for (const auto& [key, value] : command.items()) {
    if (key != "state" && key != "brightness" && key != "transition" && key != "color_temp" && key != "color") {
      return InvalidArgumentError(fmt::format(
          "zigbee command: unknown key '{}'; expected state, brightness, transition, color_temp or color", key));
    }
  }

  if (state == "OFF") {
    out.push_back({cluster::kOnOff, FrameKind::kCluster, cmd::kOff, {}});
  } else if (brightness) {
    // Like zigbee2mqtt: a brightness (with or without "ON") is one move-to-level-with-on/off.
    Bytes p{static_cast<std::uint8_t>(*brightness)};
    PutLE16(p, transition);
    out.push_back({cluster::kLevelControl, FrameKind::kCluster, cmd::kMoveToLevelWithOnOff, std::move(p)});
  } else if (state) {
    out.push_back({cluster::kOnOff, FrameKind::kCluster, *state == "ON" ? cmd::kOn : cmd::kToggle, {}});
  }

  if (auto it = command.find("color_temp"); it != command.end()) {
    if (!it->is_number() || it->get<double>() < 1 || it->get<double>() > 65279) {
      return InvalidArgumentError("zigbee command: 'color_temp' must be mireds in 1..65279 (e.g. 153..500)");
    }
    Bytes p;
    PutLE16(p, static_cast<std::uint16_t>(std::lround(it->get<double>())));
    PutLE16(p, transition);
    out.push_back({cluster::kColorControl, FrameKind::kCluster, cmd::kMoveToColorTemperature, std::move(p)});
  }
  if (auto it = command.find("color"); it != command.end()) {
    const auto bad = InvalidArgumentError("zigbee command: 'color' must be {\"x\": 0..1, \"y\": 0..1}");
    if (!it->is_object()) return bad;
    auto x = it->find("x");
    auto y = it->find("y");
    if (x == it->end() || y == it->end() || !x->is_number() || !y->is_number()) return bad;
    const double xv = x->get<double>(), yv = y->get<double>();
    if (xv < 0 || xv > 1 || yv < 0 || yv > 1) return bad;
    Bytes p;
    PutLE16(p, static_cast<std::uint16_t>(std::lround(xv * 65535)));
    PutLE16(p, static_cast<std::uint16_t>(std::lround(yv * 65535)));
    PutLE16(p, transition);
    out.push_back({cluster::kColorControl, FrameKind::kCluster, cmd::kMoveToColor, std::move(p)});
  }
  if (out.empty()) {
    return InvalidArgumentError("zigbee command: nothing to do; give state, brightness, color_temp or color");
  }
  return out;
}

StatusOr<std::vector<ZclRequest>> JsonToRead(const json& command) {
  if (!command.is_object()) return InvalidArgumentError("zigbee get: expected a JSON object");
  struct Source {
    std::uint16_t cluster;
    std::vector<std::uint16_t> attrs;
  };
  static const std::map<std::string, Source, std::less<>> kSources = {
      {"state", {cluster::kOnOff, {attr::kOnOff}}},
      {"brightness", {cluster::kLevelControl, {attr::kCurrentLevel}}},
      {"color_temp", {cluster::kColorControl, {attr::kColorTemperature}}},
      {"color", {cluster::kColorControl, {attr::kCurrentX, attr::kCurrentY}}},
      {"temperature", {cluster::kTemperature, {attr::kMeasuredValue}}},
      {"humidity", {cluster::kHumidity, {attr::kMeasuredValue}}},
      {"pressure", {cluster::kPressure, {attr::kMeasuredValue}}},
      {"illuminance", {cluster::kIlluminance, {attr::kMeasuredValue}}},
      {"occupancy", {cluster::kOccupancy, {attr::kOccupancy}}},
      {"contact", {cluster::kIasZone, {attr::kZoneStatus}}},
      {"battery", {cluster::kPowerConfiguration, {attr::kBatteryPercentageRemaining}}},
      {"power", {cluster::kElectricalMeasurement, {attr::kActivePower}}},
      {"energy", {cluster::kMetering, {attr::kCurrentSummationDelivered}}},
  };
  std::map<std::uint16_t, std::vector<std::uint16_t>> per_cluster;
  for (const auto& [key, value] : command.items()) {
    auto it = kSources.find(key);
    if (it == kSources.end()) return InvalidArgumentError(fmt::format("zigbee get: '{}' cannot be read", key));
    auto& attrs = per_cluster[it->second.cluster];
    for (auto a : it->second.attrs) {
      if (std::find(attrs.begin(), attrs.end(), a) == attrs.end()) attrs.push_back(a);
    }
  }
  if (per_cluster.empty()) return InvalidArgumentError("zigbee get: nothing to read");
  std::vector<ZclRequest> out;
  for (const auto& [cl, attrs] : per_cluster) {
    out.push_back({cl, FrameKind::kGlobal, global::kReadAttributes, EncodeReadAttributes(attrs)});
  }
  return out;
}

}  // namespace edged::zigbee::zcl
