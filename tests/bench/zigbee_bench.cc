// UNPI parser throughput: AF_INCOMING_MSG report frames (as a busy network sends them) fed in
// 4 KiB chunks, as read() returns them from a tty or socket.
#include <benchmark/benchmark.h>

#include <vector>

#include "drivers/zigbee/znp/commands.h"
#include "drivers/zigbee/znp/unpi.h"

namespace {

using namespace edged::zigbee::znp;

std::vector<std::byte> Stream(int frames) {
  auto frame = Encode(Subsystem::kAF, "incomingMsg", Direction::kRequest,
                      {{"clusterid", 0x0402u}, {"srcaddr", 0x1234u}, {"srcendpoint", 1u}, {"dstendpoint", 1u},
                       {"linkquality", 140u}, {"data", Bytes{0x18, 0x05, 0x0a, 0x00, 0x00, 0x29, 0x66, 0x08}}});
  auto bytes = EncodeFrame(*frame);
  std::vector<std::byte> out;
  for (int i = 0; i < frames; ++i) out.insert(out.end(), bytes->begin(), bytes->end());
  return out;
}

void BM_UnpiParse(benchmark::State& state) {
  const auto stream = Stream(10000);
  std::size_t frames = 0;
  for (auto _ : state) {
    UnpiParser parser;
    for (std::size_t off = 0; off < stream.size(); off += 4096) {
      const std::size_t n = std::min<std::size_t>(4096, stream.size() - off);
      parser.Feed(std::span<const std::byte>(stream.data() + off, n), [&](Frame&& f) {
        benchmark::DoNotOptimize(f.payload.data());
        ++frames;
      });
    }
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(frames));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * stream.size()));
}
BENCHMARK(BM_UnpiParse);

void BM_UnpiParseAndDecode(benchmark::State& state) {
  const auto stream = Stream(10000);
  std::size_t frames = 0;
  for (auto _ : state) {
    UnpiParser parser;
    parser.Feed(stream, [&](Frame&& f) {
      auto msg = Decode(f);
      benchmark::DoNotOptimize(msg);
      ++frames;
    });
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(frames));
}
BENCHMARK(BM_UnpiParseAndDecode);

}  // namespace

BENCHMARK_MAIN();
