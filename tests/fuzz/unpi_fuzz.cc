// libFuzzer target: arbitrary bytes through the streaming UNPI parser (split at a fuzzer-chosen point)
// and every parsed frame through the command table decoder and back through the encoder.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "drivers/zigbee/znp/commands.h"
#include "drivers/zigbee/znp/unpi.h"

using namespace edged::zigbee::znp;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t split = data[0] % (size + 1);
  const auto* bytes = reinterpret_cast<const std::byte*>(data);
  UnpiParser parser;
  std::size_t frames = 0;
  const auto on_frame = [&](Frame&& f) {
    ++frames;
    if (f.payload.size() > kMaxPayload) std::abort();
    auto encoded = EncodeFrame(f);
    if (!encoded.ok()) std::abort();
    auto msg = Decode(f);
    if (msg.ok() && msg->def != nullptr) {
      // Re-encoding decoded fields must succeed for every table entry.
      const Direction d = f.type == FrameType::kSrsp ? Direction::kResponse : Direction::kRequest;
      (void)Encode(f.subsystem, msg->def->name, d, msg->fields);
    }
  };
  parser.Feed(std::span<const std::byte>(bytes, split), on_frame);
  parser.Feed(std::span<const std::byte>(bytes + split, size - split), on_frame);
  if (parser.buffered() > size) std::abort();
  return 0;
}
