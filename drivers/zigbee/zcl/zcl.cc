#include "drivers/zigbee/zcl/zcl.h"

#include <bit>
#include <cmath>
#include <cstring>

#include <spdlog/fmt/fmt.h>

namespace edged::zigbee::zcl {
namespace {

void PutLE(Bytes& out, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

Status Truncated(std::string_view what, std::size_t pos, std::size_t size) {
  return ProtocolError(fmt::format("ZCL {}: payload of {} bytes ends at offset {}", what, size, pos));
}

// Little-endian reader over a span; every read checks bounds first.
class Reader {
 public:
  Reader(std::span<const std::uint8_t> in, std::string_view what) : in_(in), what_(what) {}
  bool done() const { return pos_ >= in_.size(); }
  std::size_t& pos() { return pos_; }
  StatusOr<std::uint64_t> LE(std::size_t n) {
    if (pos_ + n > in_.size()) return Truncated(what_, pos_, in_.size());
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{in_[pos_ + i]} << (8 * i);
    pos_ += n;
    return v;
  }
  StatusOr<std::uint8_t> U8() {
    ASSIGN_OR_RETURN(auto v, LE(1));
    return static_cast<std::uint8_t>(v);
  }
  StatusOr<std::uint16_t> U16() {
    ASSIGN_OR_RETURN(auto v, LE(2));
    return static_cast<std::uint16_t>(v);
  }
  StatusOr<Value> Val(std::uint8_t t) { return DecodeValue(t, in_, pos_); }
  std::span<const std::uint8_t> in() const { return in_; }

 private:
  std::span<const std::uint8_t> in_;
  std::string_view what_;
  std::size_t pos_ = 0;
};

bool IsUnsignedLike(std::uint8_t t) {
  return (t >= 0x08 && t <= 0x0F) || (t >= 0x18 && t <= 0x27) || t == type::kEnum8 || t == type::kEnum16 ||
         t == type::kTimeOfDay || t == type::kDate || t == type::kUtc || t == type::kClusterId ||
         t == type::kAttributeId || t == 0xEA /* BACnet OID */ || t == type::kIeee;
}
bool IsSigned(std::uint8_t t) { return t >= 0x28 && t <= 0x2F; }

double HalfToDouble(std::uint16_t h) {
  const int sign = (h >> 15) & 1;
  const int exp = (h >> 10) & 0x1F;
  const int mant = h & 0x3FF;
  double v;
  if (exp == 0) {
    v = std::ldexp(mant, -24);
  } else if (exp == 31) {
    v = mant == 0 ? INFINITY : NAN;
  } else {
    v = std::ldexp(mant + 1024, exp - 25);
  }
  return sign ? -v : v;
}

std::uint16_t DoubleToHalf(double d) {
  // Round-to-nearest conversion good enough for sensor values; NaN and overflow become NaN/inf.
  const std::uint16_t sign = std::signbit(d) ? 0x8000 : 0;
  d = std::fabs(d);
  if (std::isnan(d)) return 0x7E00;
  if (d >= 65520.0) return sign | 0x7C00;
  if (d < std::ldexp(1.0, -24)) return sign;
  int exp = 0;
  const double frac = std::frexp(d, &exp);  // d = frac * 2^exp, frac in [0.5, 1)
  int e = exp + 14;                         // biased exponent for 1.m form
  if (e <= 0) return sign | static_cast<std::uint16_t>(std::lround(std::ldexp(d, 24)));  // subnormal
  long mant = std::lround((frac * 2 - 1) * 1024);
  if (mant == 1024) {
    mant = 0;
    ++e;
  }
  if (e >= 31) return sign | 0x7C00;
  return sign | static_cast<std::uint16_t>(e << 10) | static_cast<std::uint16_t>(mant);
}

}  // namespace

std::optional<double> Value::AsNumber() const {
  if (const auto* b = std::get_if<bool>(&v)) return *b ? 1.0 : 0.0;
  if (const auto* u = std::get_if<std::uint64_t>(&v)) return static_cast<double>(*u);
  if (const auto* i = std::get_if<std::int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(&v)) return *d;
  return std::nullopt;
}

bool IsAnalogType(std::uint8_t t) {
  return (t >= 0x20 && t <= 0x2F) || (t >= 0x38 && t <= 0x3A) || (t >= 0xE0 && t <= 0xE2);
}

std::size_t FixedTypeSize(std::uint8_t t) {
  if (t >= 0x08 && t <= 0x0F) return t - 0x07u;
  if (t == type::kBool) return 1;
  if (t >= 0x18 && t <= 0x1F) return t - 0x17u;
  if (t >= 0x20 && t <= 0x27) return t - 0x1Fu;
  if (t >= 0x28 && t <= 0x2F) return t - 0x27u;
  if (t == type::kEnum8) return 1;
  if (t == type::kEnum16) return 2;
  if (t == type::kSemiFloat) return 2;
  if (t == type::kSingle) return 4;
  if (t == type::kDouble) return 8;
  if (t >= 0xE0 && t <= 0xE2) return 4;
  if (t == type::kClusterId || t == type::kAttributeId) return 2;
  if (t == 0xEA) return 4;
  if (t == type::kIeee) return 8;
  if (t == type::kKey128) return 16;
  return 0;
}

void EncodeValue(const Value& value, Bytes& out) {
  const std::uint8_t t = value.type;
  if (t == type::kCharString || t == type::kOctetString || t == type::kLongCharString ||
      t == type::kLongOctetString) {
    Bytes data;
    if (const auto* s = std::get_if<std::string>(&value.v)) data.assign(s->begin(), s->end());
    if (const auto* b = std::get_if<Bytes>(&value.v)) data = *b;
    const bool long_form = t == type::kLongCharString || t == type::kLongOctetString;
    const std::size_t max = long_form ? 0xFFFE : 0xFE;
    if (data.size() > max) data.resize(max);
    PutLE(out, data.size(), long_form ? 2 : 1);
    out.insert(out.end(), data.begin(), data.end());
    return;
  }
  const std::size_t n = FixedTypeSize(t);
  if (n == 0) return;
  if (t == type::kSemiFloat) {
    PutLE(out, DoubleToHalf(value.AsNumber().value_or(0)), 2);
    return;
  }
  if (t == type::kSingle) {
    float f = 0;
    if (auto num = value.AsNumber()) f = static_cast<float>(*num);
    PutLE(out, std::bit_cast<std::uint32_t>(f), 4);
    return;
  }
  if (t == type::kDouble) {
    double d = value.AsNumber().value_or(0);
    PutLE(out, std::bit_cast<std::uint64_t>(d), 8);
    return;
  }
  if (const auto* b = std::get_if<Bytes>(&value.v)) {  // keys and raw data
    Bytes copy = *b;
    copy.resize(n, 0);
    out.insert(out.end(), copy.begin(), copy.end());
    return;
  }
  std::uint64_t raw = 0;
  if (const auto* u = std::get_if<std::uint64_t>(&value.v)) raw = *u;
  else if (const auto* i = std::get_if<std::int64_t>(&value.v)) raw = static_cast<std::uint64_t>(*i);
  else if (const auto* bo = std::get_if<bool>(&value.v)) raw = *bo ? 1 : 0;
  else if (const auto* d = std::get_if<double>(&value.v)) raw = static_cast<std::uint64_t>(static_cast<std::int64_t>(*d));
  PutLE(out, raw, n);
}

StatusOr<Value> DecodeValue(std::uint8_t t, std::span<const std::uint8_t> in, std::size_t& pos) {
  const auto need = [&](std::size_t n) -> Status {
    if (pos + n > in.size()) return Truncated(fmt::format("value of type 0x{:02x}", t), pos, in.size());
    return OkStatus();
  };
  const auto le = [&](std::size_t n) {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t{in[pos + i]} << (8 * i);
    pos += n;
    return v;
  };
  Value value;
  value.type = t;
  if (t == type::kCharString || t == type::kOctetString || t == type::kLongCharString ||
      t == type::kLongOctetString) {
    const bool long_form = t == type::kLongCharString || t == type::kLongOctetString;
    RETURN_IF_ERROR(need(long_form ? 2 : 1));
    std::size_t len = le(long_form ? 2 : 1);
    if (len == (long_form ? 0xFFFFu : 0xFFu)) len = 0;  // "invalid" string = empty
    RETURN_IF_ERROR(need(len));
    Bytes data(in.begin() + static_cast<std::ptrdiff_t>(pos), in.begin() + static_cast<std::ptrdiff_t>(pos + len));
    pos += len;
    if (t == type::kCharString || t == type::kLongCharString) {
      // Devices pad strings with NULs; cut there so JSON never carries them.
      std::string s(data.begin(), data.end());
      if (auto nul = s.find('\0'); nul != std::string::npos) s.resize(nul);
      value.v = std::move(s);
    } else {
      value.v = std::move(data);
    }
    return value;
  }
  if (t == type::kNoData) return value;
  const std::size_t n = FixedTypeSize(t);
  if (n == 0) return ProtocolError(fmt::format("ZCL data type 0x{:02x} is not supported", t));
  RETURN_IF_ERROR(need(n));
  if (t == type::kBool) {
    value.v = le(1) != 0;
  } else if (t == type::kSemiFloat) {
    value.v = HalfToDouble(static_cast<std::uint16_t>(le(2)));
  } else if (t == type::kSingle) {
    value.v = static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(le(4))));
  } else if (t == type::kDouble) {
    value.v = std::bit_cast<double>(le(8));
  } else if (IsSigned(t)) {
    std::uint64_t raw = le(n);
    const unsigned bits = static_cast<unsigned>(n * 8);
    if (bits < 64 && (raw & (std::uint64_t{1} << (bits - 1)))) raw |= ~std::uint64_t{0} << bits;  // sign-extend
    value.v = static_cast<std::int64_t>(raw);
  } else if (IsUnsignedLike(t)) {
    value.v = le(n);
  } else {  // 128-bit key
    value.v = Bytes(in.begin() + static_cast<std::ptrdiff_t>(pos), in.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
  }
  return value;
}

StatusOr<Frame> ParseFrame(std::span<const std::uint8_t> bytes) {
  Reader r(bytes, "frame header");
  Frame frame;
  ASSIGN_OR_RETURN(std::uint8_t fc, r.U8());
  const std::uint8_t kind = fc & 0x03;
  if (kind > 1) return ProtocolError(fmt::format("ZCL frame type {} is reserved", kind));
  frame.header.kind = static_cast<FrameKind>(kind);
  frame.header.manufacturer_specific = (fc & 0x04) != 0;
  frame.header.server_to_client = (fc & 0x08) != 0;
  frame.header.disable_default_response = (fc & 0x10) != 0;
  if (frame.header.manufacturer_specific) {
    ASSIGN_OR_RETURN(frame.header.manufacturer_code, r.U16());
  }
  ASSIGN_OR_RETURN(frame.header.seq, r.U8());
  ASSIGN_OR_RETURN(frame.header.command, r.U8());
  frame.payload.assign(bytes.begin() + static_cast<std::ptrdiff_t>(r.pos()), bytes.end());
  return frame;
}

Bytes EncodeFrame(const Frame& frame) {
  Bytes out;
  const Header& h = frame.header;
  std::uint8_t fc = static_cast<std::uint8_t>(h.kind);
  if (h.manufacturer_specific) fc |= 0x04;
  if (h.server_to_client) fc |= 0x08;
  if (h.disable_default_response) fc |= 0x10;
  out.push_back(fc);
  if (h.manufacturer_specific) PutLE(out, h.manufacturer_code, 2);
  out.push_back(h.seq);
  out.push_back(h.command);
  out.insert(out.end(), frame.payload.begin(), frame.payload.end());
  return out;
}

Bytes EncodeReadAttributes(std::span<const std::uint16_t> ids) {
  Bytes out;
  for (auto id : ids) PutLE(out, id, 2);
  return out;
}

StatusOr<std::vector<std::uint16_t>> DecodeReadAttributes(std::span<const std::uint8_t> payload) {
  Reader r(payload, "read attributes");
  std::vector<std::uint16_t> ids;
  while (!r.done()) {
    ASSIGN_OR_RETURN(auto id, r.U16());
    ids.push_back(id);
  }
  return ids;
}

Bytes EncodeReadAttributesResponse(std::span<const ReadRecord> records) {
  Bytes out;
  for (const auto& rec : records) {
    PutLE(out, rec.id, 2);
    out.push_back(rec.status);
    if (rec.status == status::kSuccess) {
      out.push_back(rec.value.type);
      EncodeValue(rec.value, out);
    }
  }
  return out;
}

StatusOr<std::vector<ReadRecord>> DecodeReadAttributesResponse(std::span<const std::uint8_t> payload) {
  Reader r(payload, "read attributes response");
  std::vector<ReadRecord> records;
  while (!r.done()) {
    ReadRecord rec;
    ASSIGN_OR_RETURN(rec.id, r.U16());
    ASSIGN_OR_RETURN(rec.status, r.U8());
    if (rec.status == status::kSuccess) {
      ASSIGN_OR_RETURN(std::uint8_t t, r.U8());
      ASSIGN_OR_RETURN(rec.value, r.Val(t));
    }
    records.push_back(std::move(rec));
  }
  return records;
}

Bytes EncodeAttributeRecords(std::span<const AttributeRecord> records) {
  Bytes out;
  for (const auto& rec : records) {
    PutLE(out, rec.id, 2);
    out.push_back(rec.value.type);
    EncodeValue(rec.value, out);
  }
  return out;
}

StatusOr<std::vector<AttributeRecord>> DecodeAttributeRecords(std::span<const std::uint8_t> payload) {
  Reader r(payload, "attribute records");
  std::vector<AttributeRecord> records;
  while (!r.done()) {
    AttributeRecord rec;
    ASSIGN_OR_RETURN(rec.id, r.U16());
    ASSIGN_OR_RETURN(std::uint8_t t, r.U8());
    ASSIGN_OR_RETURN(rec.value, r.Val(t));
    records.push_back(std::move(rec));
  }
  return records;
}

Bytes EncodeWriteAttributesResponse(std::span<const WriteStatus> statuses) {
  Bytes out;
  bool all_ok = true;
  for (const auto& s : statuses) all_ok = all_ok && s.status == status::kSuccess;
  if (all_ok) {
    out.push_back(status::kSuccess);  // spec: a single success record when every write succeeded
    return out;
  }
  for (const auto& s : statuses) {
    if (s.status == status::kSuccess) continue;
    out.push_back(s.status);
    PutLE(out, s.id, 2);
  }
  return out;
}

StatusOr<std::vector<WriteStatus>> DecodeWriteAttributesResponse(std::span<const std::uint8_t> payload) {
  Reader r(payload, "write attributes response");
  std::vector<WriteStatus> out;
  if (payload.size() == 1) {
    ASSIGN_OR_RETURN(std::uint8_t st, r.U8());
    out.push_back({st, 0});
    return out;
  }
  while (!r.done()) {
    WriteStatus s;
    ASSIGN_OR_RETURN(s.status, r.U8());
    ASSIGN_OR_RETURN(s.id, r.U16());
    out.push_back(s);
  }
  return out;
}

Bytes EncodeConfigureReporting(std::span<const ReportingConfig> configs) {
  Bytes out;
  for (const auto& c : configs) {
    out.push_back(0);  // direction: the attribute's owner reports
    PutLE(out, c.id, 2);
    out.push_back(c.type);
    PutLE(out, c.min_interval, 2);
    PutLE(out, c.max_interval, 2);
    if (IsAnalogType(c.type)) {
      Value change = c.reportable_change;
      change.type = c.type;
      EncodeValue(change, out);
    }
  }
  return out;
}

StatusOr<std::vector<ReportingConfig>> DecodeConfigureReporting(std::span<const std::uint8_t> payload) {
  Reader r(payload, "configure reporting");
  std::vector<ReportingConfig> out;
  while (!r.done()) {
    ASSIGN_OR_RETURN(std::uint8_t direction, r.U8());
    ReportingConfig c;
    ASSIGN_OR_RETURN(c.id, r.U16());
    if (direction != 0) {  // direction 1: the receiver expects reports; only a timeout follows
      ASSIGN_OR_RETURN(std::uint16_t timeout, r.U16());
      (void)timeout;
      continue;
    }
    ASSIGN_OR_RETURN(c.type, r.U8());
    ASSIGN_OR_RETURN(c.min_interval, r.U16());
    ASSIGN_OR_RETURN(c.max_interval, r.U16());
    if (IsAnalogType(c.type)) {
      ASSIGN_OR_RETURN(c.reportable_change, r.Val(c.type));
    }
    out.push_back(std::move(c));
  }
  return out;
}

Bytes EncodeConfigureReportingResponse(std::span<const ReportingStatus> statuses) {
  Bytes out;
  bool all_ok = true;
  for (const auto& s : statuses) all_ok = all_ok && s.status == status::kSuccess;
  if (all_ok) {
    out.push_back(status::kSuccess);
    return out;
  }
  for (const auto& s : statuses) {
    out.push_back(s.status);
    out.push_back(s.direction);
    PutLE(out, s.id, 2);
  }
  return out;
}

StatusOr<std::vector<ReportingStatus>> DecodeConfigureReportingResponse(std::span<const std::uint8_t> payload) {
  Reader r(payload, "configure reporting response");
  std::vector<ReportingStatus> out;
  if (payload.size() == 1) {
    ASSIGN_OR_RETURN(std::uint8_t st, r.U8());
    out.push_back({st, 0, 0});
    return out;
  }
  while (!r.done()) {
    ReportingStatus s;
    ASSIGN_OR_RETURN(s.status, r.U8());
    ASSIGN_OR_RETURN(s.direction, r.U8());
    ASSIGN_OR_RETURN(s.id, r.U16());
    out.push_back(s);
  }
  return out;
}

Bytes EncodeDefaultResponse(const DefaultResponse& response) { return {response.command, response.status}; }

StatusOr<DefaultResponse> DecodeDefaultResponse(std::span<const std::uint8_t> payload) {
  Reader r(payload, "default response");
  DefaultResponse d;
  ASSIGN_OR_RETURN(d.command, r.U8());
  ASSIGN_OR_RETURN(d.status, r.U8());
  return d;
}

}  // namespace edged::zigbee::zcl
