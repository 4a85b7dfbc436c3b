// Golden vectors produced by zigbee-herdsman 10.9.2's ZCL encoder (Zcl.Frame.create(...).toBuffer()).
#include <gtest/gtest.h>

#include "drivers/zigbee/zcl/clusters.h"
#include "drivers/zigbee/zcl/zcl.h"

namespace edged::zigbee::zcl {
namespace {

Frame Parse(const Bytes& b) {
  auto f = ParseFrame(b);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  return f.ok() ? *f : Frame{};
}

TEST(ZigbeeZcl, HeaderGolden) {
  Frame f = Parse({0x04, 0x5f, 0x11, 0x13, 0x00, 0x01, 0xff});  // manufacturer-specific read
  EXPECT_EQ(f.header.kind, FrameKind::kGlobal);
  EXPECT_TRUE(f.header.manufacturer_specific);
  EXPECT_EQ(f.header.manufacturer_code, 0x115f);
  EXPECT_EQ(f.header.seq, 0x13);
  EXPECT_EQ(f.header.command, global::kReadAttributes);
  EXPECT_EQ(EncodeFrame(f), (Bytes{0x04, 0x5f, 0x11, 0x13, 0x00, 0x01, 0xff}));
  Frame zone = Parse({0x09, 0x15, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00});
  EXPECT_EQ(zone.header.kind, FrameKind::kCluster);
  EXPECT_TRUE(zone.header.server_to_client);
  EXPECT_FALSE(zone.header.disable_default_response);
  EXPECT_EQ(ParseFrame(Bytes{0x18, 0x01}).status().code(), StatusCode::kProtocol);
  EXPECT_EQ(ParseFrame(Bytes{0x03, 0x01, 0x02}).status().code(), StatusCode::kProtocol);
}

TEST(ZigbeeZcl, ReadAndReadResponseGolden) {
  Frame read{{FrameKind::kGlobal, false, false, false, 0, 14, global::kReadAttributes},
             EncodeReadAttributes(std::vector<std::uint16_t>{5, 4})};
  EXPECT_EQ(EncodeFrame(read), (Bytes{0x00, 0x0e, 0x00, 0x05, 0x00, 0x04, 0x00}));

  const Bytes rsp = {0x18, 0x0e, 0x01, 0x05, 0x00, 0x00, 0x42, 0x0d, 0x65, 0x64, 0x67, 0x65,
                     0x64, 0x2e, 0x63, 0x6c, 0x69, 0x6d, 0x61, 0x74, 0x65, 0x04, 0x00, 0x86};
  Frame f = Parse(rsp);
  auto records = DecodeReadAttributesResponse(f.payload);
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].value, Value::String("edged.climate"));
  EXPECT_EQ((*records)[1].status, status::kUnsupportedAttribute);
  EXPECT_EQ(EncodeFrame({f.header, EncodeReadAttributesResponse(*records)}), rsp);
}

TEST(ZigbeeZcl, ConfigureReportingGolden) {
  std::vector<ReportingConfig> temp = {{0x0000, type::kInt16, 10, 3600, Value::Signed(type::kInt16, 10)}};
  EXPECT_EQ(EncodeFrame({{FrameKind::kGlobal, false, false, false, 0, 15, global::kConfigureReporting},
                         EncodeConfigureReporting(temp)}),
            (Bytes{0x00, 0x0f, 0x06, 0x00, 0x00, 0x00, 0x29, 0x0a, 0x00, 0x10, 0x0e, 0x0a, 0x00}));
  std::vector<ReportingConfig> onoff = {{0x0000, type::kBool, 0, 3600, {}}};  // discrete: no change field
  const Bytes onoff_bytes = {0x00, 0x10, 0x06, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x10, 0x0e};
  EXPECT_EQ(EncodeFrame({{FrameKind::kGlobal, false, false, false, 0, 16, global::kConfigureReporting},
                         EncodeConfigureReporting(onoff)}),
            onoff_bytes);
  auto decoded = DecodeConfigureReporting(Parse(onoff_bytes).payload);
  ASSERT_TRUE(decoded.ok());
  ASSERT_EQ(decoded->size(), 1u);
  EXPECT_EQ((*decoded)[0].max_interval, 3600);
  auto rsp = DecodeConfigureReportingResponse(Bytes{0x00});
  ASSERT_TRUE(rsp.ok());
  EXPECT_EQ((*rsp)[0].status, status::kSuccess);
}

TEST(ZigbeeZcl, ReportWriteDefaultResponseGolden) {
  Frame report = Parse({0x18, 0x11, 0x0a, 0x00, 0x00, 0x29, 0xda, 0xfd});
  auto recs = DecodeAttributeRecords(report.payload);
  ASSERT_TRUE(recs.ok());
  ASSERT_EQ(recs->size(), 1u);
  EXPECT_EQ((*recs)[0].value, Value::Signed(type::kInt16, -550));

  // Electrical measurement report herdsman decodes as activePower 1000, rmsVoltage 230.
  Frame em = Parse({0x18, 0x22, 0x0a, 0x0b, 0x05, 0x29, 0xe8, 0x03, 0x05, 0x05, 0x21, 0xe6, 0x00});
  auto em_recs = DecodeAttributeRecords(em.payload);
  ASSERT_TRUE(em_recs.ok());
  EXPECT_EQ((*em_recs)[0].id, attr::kActivePower);
  EXPECT_EQ((*em_recs)[0].value.AsNumber(), 1000);
  EXPECT_EQ((*em_recs)[1].value.AsNumber(), 230);

  std::vector<AttributeRecord> write = {{attr::kIasCieAddress, Value::Unsigned(type::kIeee, 0x00124b0001020304)}};
  EXPECT_EQ(EncodeFrame({{FrameKind::kGlobal, false, false, false, 0, 20, global::kWriteAttributes},
                         EncodeAttributeRecords(write)}),
            (Bytes{0x00, 0x14, 0x02, 0x10, 0x00, 0xf0, 0x04, 0x03, 0x02, 0x01, 0x00, 0x4b, 0x12, 0x00}));
  EXPECT_EQ(EncodeFrame({{FrameKind::kGlobal, false, true, true, 0, 18, global::kDefaultResponse},
                         EncodeDefaultResponse({0x01, 0x00})}),
            (Bytes{0x18, 0x12, 0x0b, 0x01, 0x00}));
  auto wr = DecodeWriteAttributesResponse(Bytes{0x86, 0x10, 0x00});
  ASSERT_TRUE(wr.ok());
  EXPECT_EQ((*wr)[0].status, status::kUnsupportedAttribute);
  EXPECT_EQ((*wr)[0].id, 0x0010);
}

TEST(ZigbeeZcl, DataTypes) {
  struct Case {
    std::uint8_t type;
    Bytes bytes;
    double number;
  };
  const std::vector<Case> cases = {
      {type::kBool, {0x01}, 1},          {type::kUint24, {0x01, 0x02, 0x03}, 0x030201},
      {type::kInt24, {0xFF, 0xFF, 0xFF}, -1}, {type::kUint48, {1, 0, 0, 0, 0, 1}, 1099511627777.0},
      {type::kSemiFloat, {0x00, 0x3C}, 1.0}, {type::kSingle, {0x00, 0x00, 0xC0, 0x3F}, 1.5},
      {type::kEnum16, {0x15, 0x00}, 0x15},   {type::kInt8, {0x80}, -128},
  };
  for (const auto& c : cases) {
    std::size_t pos = 0;
    auto v = DecodeValue(c.type, c.bytes, pos);
    ASSERT_TRUE(v.ok()) << int(c.type);
    EXPECT_EQ(pos, c.bytes.size());
    EXPECT_DOUBLE_EQ(*v->AsNumber(), c.number) << int(c.type);
    Bytes back;
    EncodeValue(*v, back);
    EXPECT_EQ(back, c.bytes) << int(c.type);
  }
  std::size_t pos = 0;
  EXPECT_FALSE(DecodeValue(type::kCharString, Bytes{0x05, 'a'}, pos).ok());
  pos = 0;
  EXPECT_FALSE(DecodeValue(0x48 /* array */, Bytes{0x20, 0x01, 0x00}, pos).ok());
  pos = 0;
  auto padded = DecodeValue(type::kCharString, Bytes{0x04, 'a', 'b', 0, 0}, pos);
  ASSERT_TRUE(padded.ok());
  EXPECT_EQ(*padded, Value::String("ab"));
}

TEST(ZigbeeZcl, ClusterTableHasTheIssueClusters) {
  for (std::uint16_t id : {cluster::kBasic, cluster::kPowerConfiguration, cluster::kOnOff, cluster::kLevelControl,
                           cluster::kColorControl, cluster::kTemperature, cluster::kHumidity, cluster::kPressure,
                           cluster::kIlluminance, cluster::kOccupancy, cluster::kIasZone,
                           cluster::kElectricalMeasurement, cluster::kMetering}) {
    EXPECT_NE(FindCluster(id), nullptr) << id;
  }
  ASSERT_NE(FindAttribute(cluster::kBasic, attr::kModelId), nullptr);
  EXPECT_EQ(FindAttribute(cluster::kBasic, attr::kModelId)->name, "modelId");
  EXPECT_EQ(FindAttribute(0x1234, 0), nullptr);
}

}  // namespace
}  // namespace edged::zigbee::zcl
