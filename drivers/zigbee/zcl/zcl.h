// ZCL (Zigbee Cluster Library) frames, data types and the global commands edged uses. Pure functions:
// bytes in, structs out and back, no I/O; malformed input is a Protocol status, never a crash.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "base/status.h"

namespace edged::zigbee::zcl {

using Bytes = std::vector<std::uint8_t>;

// Data type identifiers (ZCL spec table 2-10) that edged decodes.
namespace type {
inline constexpr std::uint8_t kNoData = 0x00;
inline constexpr std::uint8_t kData8 = 0x08;   // 0x08..0x0F: data8..data64
inline constexpr std::uint8_t kBool = 0x10;
inline constexpr std::uint8_t kMap8 = 0x18;    // 0x18..0x1F: bitmap8..bitmap64
inline constexpr std::uint8_t kMap16 = 0x19;
inline constexpr std::uint8_t kUint8 = 0x20;   // 0x20..0x27: uint8..uint64
inline constexpr std::uint8_t kUint16 = 0x21;
inline constexpr std::uint8_t kUint24 = 0x22;
inline constexpr std::uint8_t kUint32 = 0x23;
inline constexpr std::uint8_t kUint48 = 0x25;
inline constexpr std::uint8_t kInt8 = 0x28;    // 0x28..0x2F: int8..int64
inline constexpr std::uint8_t kInt16 = 0x29;
inline constexpr std::uint8_t kInt24 = 0x2A;
inline constexpr std::uint8_t kInt32 = 0x2B;
inline constexpr std::uint8_t kEnum8 = 0x30;
inline constexpr std::uint8_t kEnum16 = 0x31;
inline constexpr std::uint8_t kSemiFloat = 0x38;
inline constexpr std::uint8_t kSingle = 0x39;
inline constexpr std::uint8_t kDouble = 0x3A;
inline constexpr std::uint8_t kOctetString = 0x41;
inline constexpr std::uint8_t kCharString = 0x42;
inline constexpr std::uint8_t kLongOctetString = 0x43;
inline constexpr std::uint8_t kLongCharString = 0x44;
inline constexpr std::uint8_t kTimeOfDay = 0xE0;
inline constexpr std::uint8_t kDate = 0xE1;
inline constexpr std::uint8_t kUtc = 0xE2;
inline constexpr std::uint8_t kClusterId = 0xE8;
inline constexpr std::uint8_t kAttributeId = 0xE9;
inline constexpr std::uint8_t kIeee = 0xF0;
inline constexpr std::uint8_t kKey128 = 0xF1;
}  // namespace type

// Status codes used by edged.
namespace status {
inline constexpr std::uint8_t kSuccess = 0x00;
inline constexpr std::uint8_t kFailure = 0x01;
inline constexpr std::uint8_t kUnsupClusterCommand = 0x81;
inline constexpr std::uint8_t kUnsupGeneralCommand = 0x82;
inline constexpr std::uint8_t kInvalidValue = 0x87;
inline constexpr std::uint8_t kUnsupportedAttribute = 0x86;
inline constexpr std::uint8_t kReadOnly = 0x88;
inline constexpr std::uint8_t kUnreportableAttribute = 0x8C;
}  // namespace status

// Global command identifiers.
namespace global {
inline constexpr std::uint8_t kReadAttributes = 0x00;
inline constexpr std::uint8_t kReadAttributesResponse = 0x01;
inline constexpr std::uint8_t kWriteAttributes = 0x02;
inline constexpr std::uint8_t kWriteAttributesResponse = 0x04;
inline constexpr std::uint8_t kConfigureReporting = 0x06;
inline constexpr std::uint8_t kConfigureReportingResponse = 0x07;
inline constexpr std::uint8_t kReportAttributes = 0x0A;
inline constexpr std::uint8_t kDefaultResponse = 0x0B;
}  // namespace global

// A typed attribute value. Unsigned, bitmap, enum and data types are held as u64; signed as i64;
// floats as double; character strings as std::string; octet strings, keys and raw data as bytes.
struct Value {
  std::uint8_t type = type::kNoData;
  std::variant<std::monostate, bool, std::uint64_t, std::int64_t, double, std::string, Bytes> v;

  static Value Bool(bool b) { return {type::kBool, b}; }
  static Value Unsigned(std::uint8_t t, std::uint64_t u) { return {t, u}; }
  static Value Signed(std::uint8_t t, std::int64_t i) { return {t, i}; }
  static Value String(std::string s) { return {type::kCharString, std::move(s)}; }

  // The value as a number (bools 0/1); nullopt for strings and bytes.
  std::optional<double> AsNumber() const;
  friend bool operator==(const Value&, const Value&) = default;
};

// True for types whose reportable change is encoded in Configure Reporting (integers, floats, time).
bool IsAnalogType(std::uint8_t t);
// Size of a fixed-size type in bytes, 0 for strings and unknown types.
std::size_t FixedTypeSize(std::uint8_t t);

void EncodeValue(const Value& value, Bytes& out);  // the value only, without its type byte
// Reads a value of `t` at `pos`, advancing it. Protocol error on truncation or an unsupported type.
StatusOr<Value> DecodeValue(std::uint8_t t, std::span<const std::uint8_t> in, std::size_t& pos);

enum class FrameKind : std::uint8_t { kGlobal = 0, kCluster = 1 };

struct Header {
  FrameKind kind = FrameKind::kGlobal;
  bool manufacturer_specific = false;
  bool server_to_client = false;  // direction bit: set on responses and reports from a device
  bool disable_default_response = false;
  std::uint16_t manufacturer_code = 0;
  std::uint8_t seq = 0;
  std::uint8_t command = 0;
  friend bool operator==(const Header&, const Header&) = default;
};

struct Frame {
  Header header;
  Bytes payload;
  friend bool operator==(const Frame&, const Frame&) = default;
};

StatusOr<Frame> ParseFrame(std::span<const std::uint8_t> bytes);
Bytes EncodeFrame(const Frame& frame);

// ---- Global command payloads ----
struct ReadRecord {  // one record of Read Attributes Response
  std::uint16_t id = 0;
  std::uint8_t status = status::kSuccess;
  Value value;  // only when status is success
  friend bool operator==(const ReadRecord&, const ReadRecord&) = default;
};
struct AttributeRecord {  // Report Attributes and Write Attributes
  std::uint16_t id = 0;
  Value value;
  friend bool operator==(const AttributeRecord&, const AttributeRecord&) = default;
};
struct WriteStatus {  // Write Attributes Response (one record = all succeeded)
  std::uint8_t status = status::kSuccess;
  std::uint16_t id = 0;
  friend bool operator==(const WriteStatus&, const WriteStatus&) = default;
};
struct ReportingConfig {  // Configure Reporting record, direction 0 (the device reports)
  std::uint16_t id = 0;
  std::uint8_t type = 0;
  std::uint16_t min_interval = 0;  // seconds
  std::uint16_t max_interval = 0;  // seconds; 0xFFFF = stop reporting
  Value reportable_change;         // analog types only
  friend bool operator==(const ReportingConfig&, const ReportingConfig&) = default;
};
struct ReportingStatus {  // Configure Reporting Response record
  std::uint8_t status = status::kSuccess;
  std::uint8_t direction = 0;
  std::uint16_t id = 0;
  friend bool operator==(const ReportingStatus&, const ReportingStatus&) = default;
};
struct DefaultResponse {
  std::uint8_t command = 0;
  std::uint8_t status = status::kSuccess;
  friend bool operator==(const DefaultResponse&, const DefaultResponse&) = default;
};

Bytes EncodeReadAttributes(std::span<const std::uint16_t> ids);
StatusOr<std::vector<std::uint16_t>> DecodeReadAttributes(std::span<const std::uint8_t> payload);
Bytes EncodeReadAttributesResponse(std::span<const ReadRecord> records);
StatusOr<std::vector<ReadRecord>> DecodeReadAttributesResponse(std::span<const std::uint8_t> payload);
Bytes EncodeAttributeRecords(std::span<const AttributeRecord> records);  // report or write
StatusOr<std::vector<AttributeRecord>> DecodeAttributeRecords(std::span<const std::uint8_t> payload);
Bytes EncodeWriteAttributesResponse(std::span<const WriteStatus> statuses);
StatusOr<std::vector<WriteStatus>> DecodeWriteAttributesResponse(std::span<const std::uint8_t> payload);
Bytes EncodeConfigureReporting(std::span<const ReportingConfig> configs);
StatusOr<std::vector<ReportingConfig>> DecodeConfigureReporting(std::span<const std::uint8_t> payload);
Bytes EncodeConfigureReportingResponse(std::span<const ReportingStatus> statuses);
StatusOr<std::vector<ReportingStatus>> DecodeConfigureReportingResponse(std::span<const std::uint8_t> payload);
Bytes EncodeDefaultResponse(const DefaultResponse& response);
StatusOr<DefaultResponse> DecodeDefaultResponse(std::span<const std::uint8_t> payload);

}  // namespace edged::zigbee::zcl
