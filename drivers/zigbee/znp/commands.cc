#include "drivers/zigbee/znp/commands.h"

#include <spdlog/fmt/fmt.h>

namespace edged::zigbee::znp {
namespace {

using FT = FieldType;

// ZDO requests and responses that zigbee-herdsman builds with its own ZDO encoder: on the wire they are
// the classic MT layouts below (request = destination u16 + the ZDO request; response AREQ = source
// u16 + the ZDO response), which is what Z-Stack sends and what edged's coordinator and simulator use.
std::vector<CommandDef> ZdoCommands() {
  const std::vector<FieldDef> kStatus = {{"status", FT::kU8}};
  const auto sreq = [&](std::uint8_t id, std::string_view name, std::vector<FieldDef> req) {
    return CommandDef{Subsystem::kZDO, id, CommandType::kSreq, name, std::move(req), kStatus, true};
  };
  const auto areq = [](std::uint8_t id, std::string_view name, std::vector<FieldDef> fields) {
    return CommandDef{Subsystem::kZDO, id, CommandType::kAreq, name, std::move(fields), {}, false};
  };
  return {
      sreq(0x00, "nwkAddrReq", {{"ieeeaddr", FT::kIeee}, {"reqtype", FT::kU8}, {"startindex", FT::kU8}}),
      sreq(0x01, "ieeeAddrReq", {{"shortaddr", FT::kU16}, {"reqtype", FT::kU8}, {"startindex", FT::kU8}}),
      sreq(0x02, "nodeDescReq", {{"dstaddr", FT::kU16}, {"nwkaddrofinterest", FT::kU16}}),
      sreq(0x03, "powerDescReq", {{"dstaddr", FT::kU16}, {"nwkaddrofinterest", FT::kU16}}),
      sreq(0x04, "simpleDescReq", {{"dstaddr", FT::kU16}, {"nwkaddrofinterest", FT::kU16}, {"endpoint", FT::kU8}}),
      sreq(0x05, "activeEpReq", {{"dstaddr", FT::kU16}, {"nwkaddrofinterest", FT::kU16}}),
      sreq(0x06, "matchDescReq", {{"dstaddr", FT::kU16}, {"nwkaddrofinterest", FT::kU16}, {"profileid", FT::kU16},
                                  {"numinclusters", FT::kU8}, {"inclusterlist", FT::kListU16},
                                  {"numoutclusters", FT::kU8}, {"outclusterlist", FT::kListU16}}),
      sreq(0x21, "bindReq", {{"dstaddr", FT::kU16}, {"srcaddr", FT::kIeee}, {"srcendpoint", FT::kU8},
                             {"clusterid", FT::kU16}, {"dstaddrmode", FT::kU8}, {"dstaddress", FT::kIeee},
                             {"dstendpoint", FT::kU8}}),
      sreq(0x22, "unbindReq", {{"dstaddr", FT::kU16}, {"srcaddr", FT::kIeee}, {"srcendpoint", FT::kU8},
                               {"clusterid", FT::kU16}, {"dstaddrmode", FT::kU8}, {"dstaddress", FT::kIeee},
                               {"dstendpoint", FT::kU8}}),
      sreq(0x31, "mgmtLqiReq", {{"dstaddr", FT::kU16}, {"startindex", FT::kU8}}),
      sreq(0x32, "mgmtRtgReq", {{"dstaddr", FT::kU16}, {"startindex", FT::kU8}}),
      sreq(0x34, "mgmtLeaveReq", {{"dstaddr", FT::kU16}, {"deviceaddress", FT::kIeee}, {"removechildren_rejoin", FT::kU8}}),
      sreq(0x36, "mgmtPermitJoinReq", {{"addrmode", FT::kU8}, {"dstaddr", FT::kU16}, {"duration", FT::kU8},
                                       {"tcsignificance", FT::kU8}}),
      areq(0x80, "nwkAddrRsp", {{"status", FT::kU8}, {"ieeeaddr", FT::kIeee}, {"nwkaddr", FT::kU16},
                                {"startindex", FT::kU8}, {"numassocdev", FT::kU8}, {"assocdevlist", FT::kListU16}}),
      areq(0x81, "ieeeAddrRsp", {{"status", FT::kU8}, {"ieeeaddr", FT::kIeee}, {"nwkaddr", FT::kU16},
                                 {"startindex", FT::kU8}, {"numassocdev", FT::kU8}, {"assocdevlist", FT::kListU16}}),
      areq(0x82, "nodeDescRsp", {{"srcaddr", FT::kU16}, {"status", FT::kU8}, {"nwkaddr", FT::kU16},
                                 {"logicaltype_cmplxdescavai_userdescavai", FT::kU8}, {"apsflags_freqband", FT::kU8},
                                 {"maccapflags", FT::kU8}, {"manufacturercode", FT::kU16}, {"maxbuffersize", FT::kU8},
                                 {"maxintransfersize", FT::kU16}, {"servermask", FT::kU16},
                                 {"maxouttransfersize", FT::kU16}, {"descriptorcap", FT::kU8}}),
      areq(0x83, "powerDescRsp", {{"srcaddr", FT::kU16}, {"status", FT::kU8}, {"nwkaddr", FT::kU16},
                                  {"currentpowermode_avaipowersrc", FT::kU8},
                                  {"currentpowersrc_currentpowersrclevel", FT::kU8}}),
      areq(0x84, "simpleDescRsp", {{"srcaddr", FT::kU16}, {"status", FT::kU8}, {"nwkaddr", FT::kU16}, {"len", FT::kU8},
                                   {"endpoint", FT::kU8}, {"profileid", FT::kU16}, {"deviceid", FT::kU16},
                                   {"deviceversion", FT::kU8}, {"numinclusters", FT::kU8},
                                   {"inclusterlist", FT::kListU16}, {"numoutclusters", FT::kU8},
                                   {"outclusterlist", FT::kListU16}}),
      areq(0x85, "activeEpRsp", {{"srcaddr", FT::kU16}, {"status", FT::kU8}, {"nwkaddr", FT::kU16},
                                 {"activeepcount", FT::kU8}, {"activeeplist", FT::kListU8}}),
      areq(0xA1, "bindRsp", {{"srcaddr", FT::kU16}, {"status", FT::kU8}}),
      areq(0xA2, "unbindRsp", {{"srcaddr", FT::kU16}, {"status", FT::kU8}}),
      areq(0xB4, "mgmtLeaveRsp", {{"srcaddr", FT::kU16}, {"status", FT::kU8}}),
      areq(0xB6, "mgmtPermitJoinRsp", {{"srcaddr", FT::kU16}, {"status", FT::kU8}}),
      areq(0xC1, "endDeviceAnnceInd", {{"srcaddr", FT::kU16}, {"nwkaddr", FT::kU16}, {"ieeeaddr", FT::kIeee},
                                       {"capabilities", FT::kU8}}),
  };
}

std::vector<CommandDef> BuildTable() {
  std::vector<CommandDef> table = {
#include "drivers/zigbee/znp/znp_table.inc"
  };
  for (auto& def : ZdoCommands()) table.push_back(std::move(def));
  return table;
}

bool IsCounted(FieldType t) {
  return t == FT::kBuffer || t == FT::kListU8 || t == FT::kListU16 || t == FT::kListNetwork;
}

std::size_t FixedSize(FieldType t) {
  switch (t) {
    case FT::kBuffer8: return 8;
    case FT::kBuffer16: return 16;
    case FT::kBuffer18: return 18;
    case FT::kBuffer32: return 32;
    case FT::kBuffer42: return 42;
    case FT::kBuffer100: return 100;
    default: return 0;
  }
}

void PutLE(Bytes& out, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

}  // namespace

void PutU16(Bytes& out, std::uint16_t v) { PutLE(out, v, 2); }
void PutU32(Bytes& out, std::uint32_t v) { PutLE(out, v, 4); }
void PutU64(Bytes& out, std::uint64_t v) { PutLE(out, v, 8); }

std::uint64_t Fields::U(std::string_view name) const {
  const FieldValue* v = Find(name);
  if (v == nullptr) return 0;
  if (const auto* u = std::get_if<std::uint64_t>(v)) return *u;
  return 0;
}

const Bytes& Fields::Buf(std::string_view name) const {
  static const Bytes kEmpty;  // immutable, so not shared mutable state
  const FieldValue* v = Find(name);
  if (v == nullptr) return kEmpty;
  if (const auto* b = std::get_if<Bytes>(v)) return *b;
  return kEmpty;
}

const std::vector<std::uint16_t>& Fields::List16(std::string_view name) const {
  static const std::vector<std::uint16_t> kEmpty;
  const FieldValue* v = Find(name);
  if (v == nullptr) return kEmpty;
  if (const auto* b = std::get_if<std::vector<std::uint16_t>>(v)) return *b;
  return kEmpty;
}

const FieldValue* Fields::Find(std::string_view name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}

const std::vector<CommandDef>& CommandTable() {
  static const std::vector<CommandDef> kTable = BuildTable();  // immutable after first use
  return kTable;
}

const CommandDef* FindCommand(Subsystem subsystem, std::uint8_t id) {
  for (const auto& def : CommandTable()) {
    if (def.subsystem == subsystem && def.id == id) return &def;
  }
  return nullptr;
}

const CommandDef* FindCommand(Subsystem subsystem, std::string_view name) {
  for (const auto& def : CommandTable()) {
    if (def.subsystem == subsystem && def.name == name) return &def;
  }
  return nullptr;
}

StatusOr<Frame> Encode(Subsystem subsystem, std::string_view name, Direction direction, const Fields& fields) {
  const CommandDef* def = FindCommand(subsystem, name);
  if (def == nullptr) {
    return NotFoundError(fmt::format("ZNP command {}.{} is not in the command table", SubsystemName(subsystem), name));
  }
  if (direction == Direction::kResponse && !def->has_response) {
    return InvalidArgumentError(fmt::format("ZNP command {}.{} has no SRSP", SubsystemName(subsystem), name));
  }
  const auto& defs = direction == Direction::kRequest ? def->request : def->response;
  Frame frame;
  frame.type = direction == Direction::kResponse ? FrameType::kSrsp
               : def->type == CommandType::kSreq ? FrameType::kSreq
                                                 : FrameType::kAreq;
  frame.subsystem = subsystem;
  frame.command = def->id;
  Bytes& out = frame.payload;
  for (std::size_t i = 0; i < defs.size(); ++i) {
    const FieldDef& f = defs[i];
    // A count field takes its value from the buffer or list that follows it.
    std::uint64_t u = fields.U(f.name);
    if (i + 1 < defs.size() && IsCounted(defs[i + 1].type)) {
      const FieldValue* next = fields.Find(defs[i + 1].name);
      if (next != nullptr) {
        if (const auto* b = std::get_if<Bytes>(next)) {
          u = defs[i + 1].type == FT::kListNetwork ? b->size() / 6 : b->size();
        } else if (const auto* l = std::get_if<std::vector<std::uint16_t>>(next)) {
          u = l->size();
        }
      }
    }
    switch (f.type) {
      case FT::kU8:
      case FT::kI8: PutLE(out, u, 1); break;
      case FT::kU16: PutLE(out, u, 2); break;
      case FT::kU32: PutLE(out, u, 4); break;
      case FT::kIeee: PutLE(out, u, 8); break;
      case FT::kBuffer:
      case FT::kListU8:
      case FT::kListNetwork: {
        const Bytes& b = fields.Buf(f.name);
        out.insert(out.end(), b.begin(), b.end());
        break;
      }
      case FT::kListU16:
        for (std::uint16_t v : fields.List16(f.name)) PutLE(out, v, 2);
        break;
      default: {
        Bytes b = fields.Buf(f.name);
        b.resize(FixedSize(f.type), 0);  // fixed-size buffers are padded or cut to their size
        out.insert(out.end(), b.begin(), b.end());
        break;
      }
    }
  }
  if (out.size() > kMaxPayload) {
    return InvalidArgumentError(fmt::format("ZNP {}.{}: {} bytes of fields exceed the UNPI limit of {}",
                                            SubsystemName(subsystem), name, out.size(), kMaxPayload));
  }
  return frame;
}

StatusOr<Message> Decode(const Frame& frame) {
  const CommandDef* def = FindCommand(frame.subsystem, frame.command);
  if (def == nullptr) {
    return NotFoundError(fmt::format("unknown ZNP command in frame {}", DescribeFrame(frame)));
  }
  Message msg;
  msg.def = def;
  msg.type = frame.type;
  const bool response = frame.type == FrameType::kSrsp;
  if (response && !def->has_response) {
    return ProtocolError(fmt::format("SRSP for {}.{}, which has none", SubsystemName(frame.subsystem), def->name));
  }
  const auto& defs = response ? def->response : def->request;
  const Bytes& in = frame.payload;
  std::size_t pos = 0;
  const auto need = [&](std::size_t n, std::string_view field) -> Status {
    if (pos + n > in.size()) {
      return ProtocolError(fmt::format("{}.{}: payload of {} bytes ends inside field '{}'",
                                       SubsystemName(frame.subsystem), def->name, in.size(), field));
    }
    return OkStatus();
  };
  const auto get_le = [&](int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= std::uint64_t{in[pos + static_cast<std::size_t>(i)]} << (8 * i);
    pos += static_cast<std::size_t>(n);
    return v;
  };
  std::uint64_t previous = 0;
  bool previous_numeric = false;
  for (const FieldDef& f : defs) {
    switch (f.type) {
      case FT::kU8:
      case FT::kI8: RETURN_IF_ERROR(need(1, f.name)); previous = get_le(1); break;
      case FT::kU16: RETURN_IF_ERROR(need(2, f.name)); previous = get_le(2); break;
      case FT::kU32: RETURN_IF_ERROR(need(4, f.name)); previous = get_le(4); break;
      case FT::kIeee: RETURN_IF_ERROR(need(8, f.name)); previous = get_le(8); break;
      default: break;
    }
    switch (f.type) {
      case FT::kU8:
      case FT::kI8:
      case FT::kU16:
      case FT::kU32:
      case FT::kIeee:
        msg.fields.Set(std::string(f.name), previous);
        previous_numeric = true;
        continue;
      case FT::kListU16: {
        const std::size_t count = previous_numeric ? previous : (in.size() - pos) / 2;
        RETURN_IF_ERROR(need(count * 2, f.name));
        std::vector<std::uint16_t> list;
        for (std::size_t i = 0; i < count; ++i) list.push_back(static_cast<std::uint16_t>(get_le(2)));
        msg.fields.Set(std::string(f.name), std::move(list));
        break;
      }
      default: {
        std::size_t n = FixedSize(f.type);
        if (n == 0) {
          const std::size_t unit = f.type == FT::kListNetwork ? 6 : 1;
          n = previous_numeric ? previous * unit : in.size() - pos;
        }
        RETURN_IF_ERROR(need(n, f.name));
        msg.fields.Set(std::string(f.name), Bytes(in.begin() + static_cast<std::ptrdiff_t>(pos),
                                                  in.begin() + static_cast<std::ptrdiff_t>(pos + n)));
        pos += n;
        break;
      }
    }
    previous_numeric = false;
  }
  return msg;  // trailing bytes are tolerated: newer firmware appends fields
}

}  // namespace edged::zigbee::znp
