// The clusters edged understands, declared once as a table: cluster id and name, attributes with id,
// name and type, and the cluster-specific command ids edged sends or receives.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace edged::zigbee::zcl {

namespace cluster {
inline constexpr std::uint16_t kBasic = 0x0000;
inline constexpr std::uint16_t kPowerConfiguration = 0x0001;
inline constexpr std::uint16_t kIdentify = 0x0003;
inline constexpr std::uint16_t kOnOff = 0x0006;
inline constexpr std::uint16_t kLevelControl = 0x0008;
inline constexpr std::uint16_t kOta = 0x0019;
inline constexpr std::uint16_t kColorControl = 0x0300;
inline constexpr std::uint16_t kIlluminance = 0x0400;
inline constexpr std::uint16_t kTemperature = 0x0402;
inline constexpr std::uint16_t kPressure = 0x0403;
inline constexpr std::uint16_t kHumidity = 0x0405;
inline constexpr std::uint16_t kOccupancy = 0x0406;
inline constexpr std::uint16_t kIasZone = 0x0500;
inline constexpr std::uint16_t kMetering = 0x0702;
inline constexpr std::uint16_t kElectricalMeasurement = 0x0B04;
}  // namespace cluster

// Attribute ids used by converters, the simulator and the interview.
namespace attr {
// Basic
inline constexpr std::uint16_t kZclVersion = 0x0000;
inline constexpr std::uint16_t kAppVersion = 0x0001;
inline constexpr std::uint16_t kStackVersion = 0x0002;
inline constexpr std::uint16_t kHwVersion = 0x0003;
inline constexpr std::uint16_t kManufacturerName = 0x0004;
inline constexpr std::uint16_t kModelId = 0x0005;
inline constexpr std::uint16_t kDateCode = 0x0006;
inline constexpr std::uint16_t kPowerSource = 0x0007;
inline constexpr std::uint16_t kSwBuildId = 0x4000;
// Power configuration
inline constexpr std::uint16_t kBatteryVoltage = 0x0020;
inline constexpr std::uint16_t kBatteryPercentageRemaining = 0x0021;
// On/off, level, measurement clusters
inline constexpr std::uint16_t kOnOff = 0x0000;
inline constexpr std::uint16_t kCurrentLevel = 0x0000;
inline constexpr std::uint16_t kMeasuredValue = 0x0000;
inline constexpr std::uint16_t kOccupancy = 0x0000;
// Color control
inline constexpr std::uint16_t kCurrentX = 0x0003;
inline constexpr std::uint16_t kCurrentY = 0x0004;
inline constexpr std::uint16_t kColorTemperature = 0x0007;
inline constexpr std::uint16_t kColorMode = 0x0008;
// IAS zone
inline constexpr std::uint16_t kZoneState = 0x0000;
inline constexpr std::uint16_t kZoneType = 0x0001;
inline constexpr std::uint16_t kZoneStatus = 0x0002;
inline constexpr std::uint16_t kIasCieAddress = 0x0010;
inline constexpr std::uint16_t kZoneId = 0x0011;
// Metering
inline constexpr std::uint16_t kCurrentSummationDelivered = 0x0000;
inline constexpr std::uint16_t kMeteringMultiplier = 0x0301;
inline constexpr std::uint16_t kMeteringDivisor = 0x0302;
inline constexpr std::uint16_t kInstantaneousDemand = 0x0400;
// Electrical measurement
inline constexpr std::uint16_t kRmsVoltage = 0x0505;
inline constexpr std::uint16_t kRmsCurrent = 0x0508;
inline constexpr std::uint16_t kActivePower = 0x050B;
inline constexpr std::uint16_t kAcVoltageMultiplier = 0x0600;
inline constexpr std::uint16_t kAcVoltageDivisor = 0x0601;
inline constexpr std::uint16_t kAcCurrentMultiplier = 0x0602;
inline constexpr std::uint16_t kAcCurrentDivisor = 0x0603;
inline constexpr std::uint16_t kAcPowerMultiplier = 0x0604;
inline constexpr std::uint16_t kAcPowerDivisor = 0x0605;
}  // namespace attr

// Cluster-specific command ids.
namespace cmd {
inline constexpr std::uint8_t kOff = 0x00;
inline constexpr std::uint8_t kOn = 0x01;
inline constexpr std::uint8_t kToggle = 0x02;
inline constexpr std::uint8_t kMoveToLevel = 0x00;
inline constexpr std::uint8_t kMoveToLevelWithOnOff = 0x04;
inline constexpr std::uint8_t kMoveToColor = 0x07;
inline constexpr std::uint8_t kMoveToColorTemperature = 0x0A;
inline constexpr std::uint8_t kZoneStatusChangeNotification = 0x00;  // server → client
inline constexpr std::uint8_t kZoneEnrollRequest = 0x01;             // server → client
inline constexpr std::uint8_t kZoneEnrollResponse = 0x00;            // client → server
}  // namespace cmd

struct AttributeDef {
  std::uint16_t id;
  std::string_view name;  // zigbee-herdsman's attribute name
  std::uint8_t type;
  bool reportable;
};

struct ClusterDef {
  std::uint16_t id;
  std::string_view name;  // zigbee-herdsman's cluster name ("genOnOff", "msTemperatureMeasurement", ...)
  std::vector<AttributeDef> attributes;
};

const std::vector<ClusterDef>& ClusterTable();
const ClusterDef* FindCluster(std::uint16_t id);
const AttributeDef* FindAttribute(std::uint16_t cluster, std::uint16_t attribute);

}  // namespace edged::zigbee::zcl
