#include <gtest/gtest.h>

#include "drivers/zigbee/zcl/clusters.h"
#include "drivers/zigbee/zcl/convert.h"

namespace edged::zigbee::zcl {
namespace {

using json = nlohmann::json;

json Convert(std::uint16_t cl, std::uint16_t id, Value v) {
  std::vector<AttributeRecord> recs = {{id, std::move(v)}};
  return AttributesToState(cl, recs);
}

TEST(ZigbeeConvert, ReportsToZigbee2mqttKeys) {
  EXPECT_EQ(Convert(cluster::kTemperature, 0, Value::Signed(type::kInt16, 2150)), json({{"temperature", 21.5}}));
  EXPECT_EQ(Convert(cluster::kTemperature, 0, Value::Signed(type::kInt16, -550)), json({{"temperature", -5.5}}));
  EXPECT_EQ(Convert(cluster::kTemperature, 0, Value::Signed(type::kInt16, -32768)), json::object());
  EXPECT_EQ(Convert(cluster::kHumidity, 0, Value::Unsigned(type::kUint16, 4567)), json({{"humidity", 45.67}}));
  EXPECT_EQ(Convert(cluster::kPressure, 0, Value::Signed(type::kInt16, 1013)), json({{"pressure", 1013}}));
  // 10^((v-1)/10000): v = 30001 → 1000 lx; 0 → 0
  EXPECT_EQ(Convert(cluster::kIlluminance, 0, Value::Unsigned(type::kUint16, 30001)), json({{"illuminance", 1000}}));
  EXPECT_EQ(Convert(cluster::kIlluminance, 0, Value::Unsigned(type::kUint16, 0)), json({{"illuminance", 0}}));
  EXPECT_EQ(Convert(cluster::kPowerConfiguration, attr::kBatteryPercentageRemaining, Value::Unsigned(type::kUint8, 171)),
            json({{"battery", 86}}));
  EXPECT_EQ(Convert(cluster::kOccupancy, 0, Value::Unsigned(type::kMap8, 1)), json({{"occupancy", true}}));
  EXPECT_EQ(Convert(cluster::kOnOff, 0, Value::Bool(true)), json({{"state", "ON"}}));
  EXPECT_EQ(Convert(cluster::kOnOff, 0, Value::Bool(false)), json({{"state", "OFF"}}));
  EXPECT_EQ(Convert(cluster::kLevelControl, 0, Value::Unsigned(type::kUint8, 128)), json({{"brightness", 128}}));
  EXPECT_EQ(Convert(cluster::kColorControl, attr::kColorTemperature, Value::Unsigned(type::kUint16, 370)),
            json({{"color_temp", 370}}));
  std::vector<AttributeRecord> xy = {{attr::kCurrentX, Value::Unsigned(type::kUint16, 19661)},
                                     {attr::kCurrentY, Value::Unsigned(type::kUint16, 39321)}};
  EXPECT_EQ(AttributesToState(cluster::kColorControl, xy), json({{"color", {{"x", 0.3}, {"y", 0.6}}}}));
  EXPECT_EQ(Convert(cluster::kElectricalMeasurement, attr::kActivePower, Value::Signed(type::kInt16, 1000)),
            json({{"power", 1000}}));
  EXPECT_EQ(Convert(cluster::kMetering, 0, Value::Unsigned(type::kUint48, 12345)), json({{"energy", 12.35}}));
  // IAS zone: bit 0 (alarm1) set means open → contact false
  EXPECT_EQ(Convert(cluster::kIasZone, attr::kZoneStatus, Value::Unsigned(type::kMap16, 1))["contact"], false);
  EXPECT_EQ(Convert(cluster::kIasZone, attr::kZoneStatus, Value::Unsigned(type::kMap16, 0))["contact"], true);
  EXPECT_EQ(Convert(0x1234, 0, Value::Unsigned(type::kUint8, 1)), json::object());
}

TEST(ZigbeeConvert, ScaledPowerAndZoneNotification) {
  MeasurementScale scale;
  scale.power_divisor = 10;
  std::vector<AttributeRecord> recs = {{attr::kActivePower, Value::Signed(type::kInt16, 1234)}};
  EXPECT_EQ(AttributesToState(cluster::kElectricalMeasurement, recs, scale), json({{"power", 123.4}}));
  Frame notif{{FrameKind::kCluster, false, true, false, 0, 1, cmd::kZoneStatusChangeNotification},
              {0x01, 0x00, 0x00, 0x00, 0x00, 0x00}};
  EXPECT_EQ(ClusterCommandToState(cluster::kIasZone, notif)["contact"], false);
  EXPECT_EQ(ZoneStatusToState(0x0001, 0x000D)["occupancy"], true);
}

TEST(ZigbeeConvert, JsonCommandsToZcl) {
  auto on = JsonToZcl({{"state", "ON"}});
  ASSERT_TRUE(on.ok());
  ASSERT_EQ(on->size(), 1u);
  EXPECT_EQ((*on)[0], (ZclRequest{cluster::kOnOff, FrameKind::kCluster, cmd::kOn, {}}));
  EXPECT_EQ((*JsonToZcl({{"state", "OFF"}}))[0].command, cmd::kOff);
  EXPECT_EQ((*JsonToZcl({{"state", "toggle"}}))[0].command, cmd::kToggle);
  // Same payload bytes as herdsman's moveToLevelWithOnOff {level: 128, transtime: 20}
  auto dim = JsonToZcl({{"brightness", 128}, {"transition", 2}});
  ASSERT_TRUE(dim.ok());
  EXPECT_EQ((*dim)[0], (ZclRequest{cluster::kLevelControl, FrameKind::kCluster, cmd::kMoveToLevelWithOnOff,
                                   {0x80, 0x14, 0x00}}));
  auto ct = JsonToZcl({{"color_temp", 300}});
  ASSERT_TRUE(ct.ok());
  EXPECT_EQ((*ct)[0].payload, (Bytes{0x2c, 0x01, 0x00, 0x00}));
  auto color = JsonToZcl({{"color", {{"x", 0.3}, {"y", 0.6}}}});
  ASSERT_TRUE(color.ok());
  EXPECT_EQ((*color)[0].payload, (Bytes{0xcd, 0x4c, 0x99, 0x99, 0x00, 0x00}));
  auto on_dim = JsonToZcl({{"state", "ON"}, {"brightness", 300 - 45}});
  ASSERT_TRUE(on_dim.ok());
  EXPECT_EQ(on_dim->size(), 1u);
  EXPECT_EQ((*on_dim)[0].payload[0], 254);  // clamped like zigbee2mqtt
}

TEST(ZigbeeConvert, BadCommandsAreErrorsNotCrashes) {
  for (const json& bad : {json("ON"), json({{"state", 1}}), json({{"state", "MAYBE"}}), json({{"brightness", -1}}),
                          json({{"brightness", "x"}}), json({{"color", {{"x", 2}, {"y", 0}}}}),
                          json({{"color", {{"x", 0.1}}}}), json({{"color_temp", 0}}), json({{"colour", 1}}),
                          json::object(), json({{"transition", -3}, {"state", "ON"}})}) {
    auto r = JsonToZcl(bad);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad.dump();
    EXPECT_FALSE(r.status().message().empty());
  }
}

TEST(ZigbeeConvert, GetToReadRequests) {
  auto reads = JsonToRead({{"state", ""}, {"color", ""}, {"color_temp", ""}});
  ASSERT_TRUE(reads.ok());
  ASSERT_EQ(reads->size(), 2u);
  EXPECT_EQ((*reads)[0].cluster, cluster::kOnOff);
  EXPECT_EQ((*reads)[1].cluster, cluster::kColorControl);
  EXPECT_EQ((*reads)[1].payload, (Bytes{0x03, 0x00, 0x04, 0x00, 0x07, 0x00}));  // keys come sorted
  EXPECT_FALSE(JsonToRead({{"nope", ""}}).ok());
}

}  // namespace
}  // namespace edged::zigbee::zcl
