// UNPI framing used by TI Z-Stack's monitor-and-test (MT) interface:
//   0xFE | LEN | CMD0 | CMD1 | DATA[LEN] | FCS      (FCS = XOR of LEN, CMD0, CMD1, DATA)
// CMD0 = (type << 5) | subsystem. The codec takes and returns bytes; it never touches a file
// descriptor, so it is tested with golden vectors and fuzzed without hardware.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"

namespace edged::zigbee::znp {

inline constexpr std::uint8_t kSof = 0xFE;
inline constexpr std::size_t kMaxPayload = 250;

enum class FrameType : std::uint8_t { kPoll = 0, kSreq = 1, kAreq = 2, kSrsp = 3 };

// Names follow zigbee-herdsman's constants so the generated command table reads the same.
enum class Subsystem : std::uint8_t {
  kRPC_ERROR = 0,
  kSYS = 1,
  kMAC = 2,
  kNWK = 3,
  kAF = 4,
  kZDO = 5,
  kSAPI = 6,
  kUTIL = 7,
  kDEBUG = 8,
  kAPP = 9,
  kAPP_CNF = 15,
  kGREENPOWER = 21,
};

std::string_view SubsystemName(Subsystem s);
std::string_view FrameTypeName(FrameType t);

struct Frame {
  FrameType type = FrameType::kSreq;
  Subsystem subsystem = Subsystem::kSYS;
  std::uint8_t command = 0;
  std::vector<std::uint8_t> payload;

  std::uint8_t cmd0() const {
    return static_cast<std::uint8_t>((static_cast<unsigned>(type) << 5) | (static_cast<unsigned>(subsystem) & 0x1F));
  }
  friend bool operator==(const Frame&, const Frame&) = default;
};

// The whole frame on the wire; InvalidArgument when the payload exceeds 250 bytes.
StatusOr<std::vector<std::byte>> EncodeFrame(const Frame& frame);

// "SREQ SYS 0x01 []" for logs.
std::string DescribeFrame(const Frame& frame);

// A streaming parser: feed it whatever a read() returned (any split, several frames at once, noise
// between frames) and it calls `on_frame` for each complete frame with a good FCS. Bytes before a
// start-of-frame are discarded; a frame with a bad FCS or an impossible length is counted and the
// parser resyncs on the next 0xFE, so a frame hidden behind garbage is still found.
// Not thread-safe; one parser per link.
class UnpiParser {
 public:
  using FrameHandler = std::function<void(Frame&&)>;

  void Feed(std::span<const std::byte> bytes, const FrameHandler& on_frame);
  // Drops any partial frame (after a reconnect, old half-frames must not merge with new bytes).
  void Reset();
  // Called when no byte arrived for a while but a partial frame is buffered: its start was noise whose
  // length byte claimed more than will ever come (a frame behind it would otherwise wait for the next
  // one). Drops that start-of-frame, counts it, and parses the rest again.
  void SkipStalled(const FrameHandler& on_frame);

  std::uint64_t frames() const { return frames_; }
  std::uint64_t bad_fcs() const { return bad_fcs_; }
  std::uint64_t bad_length() const { return bad_length_; }
  std::uint64_t discarded_bytes() const { return discarded_; }
  std::size_t buffered() const { return buffer_.size() - start_; }

 private:
  std::vector<std::uint8_t> buffer_;
  std::size_t start_ = 0;  // first unconsumed byte in buffer_
  std::uint64_t frames_ = 0;
  std::uint64_t bad_fcs_ = 0;
  std::uint64_t bad_length_ = 0;
  std::uint64_t discarded_ = 0;
};

}  // namespace edged::zigbee::znp
