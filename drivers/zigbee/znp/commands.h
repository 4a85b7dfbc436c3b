// ZNP commands, declared once in a table (subsystem, id, type, request and response field lists) from
// which every command is encoded and decoded generically. The table is generated from
// zigbee-herdsman's definition (znp_table.inc) plus the ZDO commands herdsman encodes by hand, so
// edged, its simulator and herdsman agree on every field.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"
#include "drivers/zigbee/znp/unpi.h"

namespace edged::zigbee::znp {

enum class FieldType : std::uint8_t {
  kU8,
  kU16,
  kU32,
  kI8,
  kIeee,        // 8 bytes little-endian, held as a u64
  kBuffer,      // length = the value of the previous field (a count field), else the rest of the frame
  kBuffer8,     // fixed sizes
  kBuffer16,
  kBuffer18,
  kBuffer32,
  kBuffer42,
  kBuffer100,
  kListU8,      // count = previous field
  kListU16,     // count = previous field, u16 items
  kListNetwork, // count = previous field, 6-byte network records kept as raw bytes
};

enum class CommandType : std::uint8_t { kSreq = 1, kAreq = 2 };

struct FieldDef {
  std::string_view name;
  FieldType type;
};

struct CommandDef {
  Subsystem subsystem;
  std::uint8_t id;
  CommandType type;
  std::string_view name;
  std::vector<FieldDef> request;   // SREQ payload, or the AREQ payload
  std::vector<FieldDef> response;  // SRSP payload
  bool has_response;
};

// One field value: integers (u8..u32, ieee) as u64, buffers as bytes, u16 lists as a vector.
using Bytes = std::vector<std::uint8_t>;
using FieldValue = std::variant<std::uint64_t, Bytes, std::vector<std::uint16_t>>;

// Named field values of one message. Missing integers read as 0 and missing buffers as empty, so a
// peer's short payload never throws; Decode() already rejected payloads that are too short.
class Fields {
 public:
  Fields() = default;
  Fields(std::initializer_list<std::pair<const std::string, FieldValue>> init) : values_(init) {}

  Fields& Set(std::string name, FieldValue value) {
    values_[std::move(name)] = std::move(value);
    return *this;
  }
  bool Has(std::string_view name) const { return values_.find(name) != values_.end(); }
  std::uint64_t U(std::string_view name) const;
  const Bytes& Buf(std::string_view name) const;
  const std::vector<std::uint16_t>& List16(std::string_view name) const;
  const FieldValue* Find(std::string_view name) const;
  const std::map<std::string, FieldValue, std::less<>>& values() const { return values_; }

 private:
  std::map<std::string, FieldValue, std::less<>> values_;
};

// The whole table, and lookups into it (nullptr when unknown).
const std::vector<CommandDef>& CommandTable();
const CommandDef* FindCommand(Subsystem subsystem, std::uint8_t id);
const CommandDef* FindCommand(Subsystem subsystem, std::string_view name);

enum class Direction { kRequest, kResponse };

// Builds a frame for `name`: kRequest gives an SREQ/AREQ with the request fields, kResponse an SRSP
// with the response fields. Count fields before buffers and lists are filled from the value sizes.
StatusOr<Frame> Encode(Subsystem subsystem, std::string_view name, Direction direction, const Fields& fields);

struct Message {
  const CommandDef* def = nullptr;
  FrameType type = FrameType::kSreq;
  Fields fields;
};

// Decodes a frame through the table: SRSP → response fields, SREQ/AREQ → request fields.
// NotFound for an unknown command, Protocol for a payload shorter than its fields.
StatusOr<Message> Decode(const Frame& frame);

// Helpers for the plain-struct parts of payloads.
void PutU16(Bytes& out, std::uint16_t v);
void PutU32(Bytes& out, std::uint32_t v);
void PutU64(Bytes& out, std::uint64_t v);

}  // namespace edged::zigbee::znp
