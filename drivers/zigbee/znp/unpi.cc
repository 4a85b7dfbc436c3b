#include "drivers/zigbee/znp/unpi.h"

#include <algorithm>

#include <spdlog/fmt/fmt.h>

namespace edged::zigbee::znp {

std::string_view SubsystemName(Subsystem s) {
  switch (s) {
    case Subsystem::kRPC_ERROR: return "RPC_ERROR";
    case Subsystem::kSYS: return "SYS";
    case Subsystem::kMAC: return "MAC";
    case Subsystem::kNWK: return "NWK";
    case Subsystem::kAF: return "AF";
    case Subsystem::kZDO: return "ZDO";
    case Subsystem::kSAPI: return "SAPI";
    case Subsystem::kUTIL: return "UTIL";
    case Subsystem::kDEBUG: return "DEBUG";
    case Subsystem::kAPP: return "APP";
    case Subsystem::kAPP_CNF: return "APP_CNF";
    case Subsystem::kGREENPOWER: return "GREENPOWER";
  }
  return "UNKNOWN";
}

std::string_view FrameTypeName(FrameType t) {
  switch (t) {
    case FrameType::kPoll: return "POLL";
    case FrameType::kSreq: return "SREQ";
    case FrameType::kAreq: return "AREQ";
    case FrameType::kSrsp: return "SRSP";
  }
  return "?";
}

StatusOr<std::vector<std::byte>> EncodeFrame(const Frame& frame) {
  if (frame.payload.size() > kMaxPayload) {
    return InvalidArgumentError(fmt::format("UNPI frame {}: payload of {} bytes exceeds the {}-byte limit",
                                            DescribeFrame(frame), frame.payload.size(), kMaxPayload));
  }
  std::vector<std::byte> out;
  out.reserve(frame.payload.size() + 5);
  const auto len = static_cast<std::uint8_t>(frame.payload.size());
  std::uint8_t fcs = len ^ frame.cmd0() ^ frame.command;
  out.push_back(std::byte{kSof});
  out.push_back(std::byte{len});
  out.push_back(std::byte{frame.cmd0()});
  out.push_back(std::byte{frame.command});
  for (std::uint8_t b : frame.payload) {
    out.push_back(std::byte{b});
    fcs ^= b;
  }
  out.push_back(std::byte{fcs});
  return out;
}

std::string DescribeFrame(const Frame& frame) {
  std::string hex;
  for (std::uint8_t b : frame.payload) hex += fmt::format("{:02x}", b);
  return fmt::format("{} {} 0x{:02x} [{}]", FrameTypeName(frame.type), SubsystemName(frame.subsystem),
                     frame.command, hex);
}

void UnpiParser::Reset() {
  buffer_.clear();
  start_ = 0;
}

void UnpiParser::SkipStalled(const FrameHandler& on_frame) {
  if (start_ >= buffer_.size()) return;
  ++bad_length_;
  ++discarded_;
  ++start_;
  Feed({}, on_frame);
}

void UnpiParser::Feed(std::span<const std::byte> bytes, const FrameHandler& on_frame) {
  // Compact before appending so the buffer never grows beyond one partial frame plus this chunk.
  if (start_ > 0) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  const auto* raw = reinterpret_cast<const std::uint8_t*>(bytes.data());
  buffer_.insert(buffer_.end(), raw, raw + bytes.size());

  while (start_ < buffer_.size()) {
    auto sof = std::find(buffer_.begin() + static_cast<std::ptrdiff_t>(start_), buffer_.end(), kSof);
    const auto sof_index = static_cast<std::size_t>(sof - buffer_.begin());
    discarded_ += sof_index - start_;
    start_ = sof_index;
    if (start_ >= buffer_.size()) break;
    const std::size_t avail = buffer_.size() - start_;
    if (avail < 2) break;
    const std::uint8_t len = buffer_[start_ + 1];
    if (len > kMaxPayload) {
      // No real frame is this long: the 0xFE was noise. Skip it and look for the next one.
      ++bad_length_;
      ++discarded_;
      ++start_;
      continue;
    }
    const std::size_t total = std::size_t{len} + 5;
    if (avail < total) break;
    std::uint8_t fcs = 0;
    for (std::size_t i = 1; i < total - 1; ++i) fcs ^= buffer_[start_ + i];
    if (fcs != buffer_[start_ + total - 1]) {
      ++bad_fcs_;
      ++discarded_;
      ++start_;  // resync: a genuine frame may start inside the rejected bytes
      continue;
    }
    Frame frame;
    const std::uint8_t cmd0 = buffer_[start_ + 2];
    frame.type = static_cast<FrameType>((cmd0 >> 5) & 0x07);  // 4..7 are reserved; callers ignore them
    frame.subsystem = static_cast<Subsystem>(cmd0 & 0x1F);
    frame.command = buffer_[start_ + 3];
    frame.payload.assign(buffer_.begin() + static_cast<std::ptrdiff_t>(start_ + 4),
                         buffer_.begin() + static_cast<std::ptrdiff_t>(start_ + 4 + len));
    start_ += total;
    ++frames_;
    on_frame(std::move(frame));
  }
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
}

}  // namespace edged::zigbee::znp
