#include "drivers/zigbee/zcl/clusters.h"

#include "drivers/zigbee/zcl/zcl.h"

namespace edged::zigbee::zcl {
namespace {

std::vector<ClusterDef> BuildTable() {
  using namespace type;
  return {
      {cluster::kBasic, "genBasic",
       {{attr::kZclVersion, "zclVersion", kUint8, false},
        {attr::kAppVersion, "appVersion", kUint8, false},
        {attr::kStackVersion, "stackVersion", kUint8, false},
        {attr::kHwVersion, "hwVersion", kUint8, false},
        {attr::kManufacturerName, "manufacturerName", kCharString, false},
        {attr::kModelId, "modelId", kCharString, false},
        {attr::kDateCode, "dateCode", kCharString, false},
        {attr::kPowerSource, "powerSource", kEnum8, false},
        {attr::kSwBuildId, "swBuildId", kCharString, false}}},
      {cluster::kPowerConfiguration, "genPowerCfg",
       {{attr::kBatteryVoltage, "batteryVoltage", kUint8, true},
        {attr::kBatteryPercentageRemaining, "batteryPercentageRemaining", kUint8, true}}},
      {cluster::kIdentify, "genIdentify", {{0x0000, "identifyTime", kUint16, false}}},
      {cluster::kOnOff, "genOnOff", {{attr::kOnOff, "onOff", kBool, true}}},
      {cluster::kLevelControl, "genLevelCtrl", {{attr::kCurrentLevel, "currentLevel", kUint8, true}}},
      {cluster::kColorControl, "lightingColorCtrl",
       {{0x0000, "currentHue", kUint8, true},
        {0x0001, "currentSaturation", kUint8, true},
        {attr::kCurrentX, "currentX", kUint16, true},
        {attr::kCurrentY, "currentY", kUint16, true},
        {attr::kColorTemperature, "colorTemperature", kUint16, true},
        {attr::kColorMode, "colorMode", kEnum8, false},
        {0x400A, "colorCapabilities", kMap16, false}}},
      {cluster::kIlluminance, "msIlluminanceMeasurement", {{attr::kMeasuredValue, "measuredValue", kUint16, true}}},
      {cluster::kTemperature, "msTemperatureMeasurement", {{attr::kMeasuredValue, "measuredValue", kInt16, true}}},
      {cluster::kPressure, "msPressureMeasurement",
       {{attr::kMeasuredValue, "measuredValue", kInt16, true}, {0x0010, "scaledValue", kInt16, true},
        {0x0014, "scale", kInt8, false}}},
      {cluster::kHumidity, "msRelativeHumidity", {{attr::kMeasuredValue, "measuredValue", kUint16, true}}},
      {cluster::kOccupancy, "msOccupancySensing",
       {{attr::kOccupancy, "occupancy", kMap8, true}, {0x0001, "occupancySensorType", kEnum8, false}}},
      {cluster::kIasZone, "ssIasZone",
       {{attr::kZoneState, "zoneState", kEnum8, false},
        {attr::kZoneType, "zoneType", kEnum16, false},
        {attr::kZoneStatus, "zoneStatus", kMap16, true},
        {attr::kIasCieAddress, "iasCieAddr", kIeee, false},
        {attr::kZoneId, "zoneId", kUint8, false}}},
      {cluster::kMetering, "seMetering",
       {{attr::kCurrentSummationDelivered, "currentSummDelivered", kUint48, true},
        {attr::kMeteringMultiplier, "multiplier", kUint24, false},
        {attr::kMeteringDivisor, "divisor", kUint24, false},
        {attr::kInstantaneousDemand, "instantaneousDemand", kInt24, true}}},
      {cluster::kElectricalMeasurement, "haElectricalMeasurement",
       {{attr::kRmsVoltage, "rmsVoltage", kUint16, true},
        {attr::kRmsCurrent, "rmsCurrent", kUint16, true},
        {attr::kActivePower, "activePower", kInt16, true},
        {attr::kAcVoltageMultiplier, "acVoltageMultiplier", kUint16, false},
        {attr::kAcVoltageDivisor, "acVoltageDivisor", kUint16, false},
        {attr::kAcCurrentMultiplier, "acCurrentMultiplier", kUint16, false},
        {attr::kAcCurrentDivisor, "acCurrentDivisor", kUint16, false},
        {attr::kAcPowerMultiplier, "acPowerMultiplier", kUint16, false},
        {attr::kAcPowerDivisor, "acPowerDivisor", kUint16, false}}},
  };
}

}  // namespace

const std::vector<ClusterDef>& ClusterTable() {
  static const std::vector<ClusterDef> kTable = BuildTable();  // immutable after first use
  return kTable;
}

const ClusterDef* FindCluster(std::uint16_t id) {
  for (const auto& c : ClusterTable()) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

const AttributeDef* FindAttribute(std::uint16_t cluster, std::uint16_t attribute) {
  const ClusterDef* c = FindCluster(cluster);
  if (c == nullptr) return nullptr;
  for (const auto& a : c->attributes) {
    if (a.id == attribute) return &a;
  }
  return nullptr;
}

}  // namespace edged::zigbee::zcl
