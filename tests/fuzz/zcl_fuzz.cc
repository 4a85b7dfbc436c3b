// libFuzzer target: arbitrary bytes as a ZCL frame, through every global-command decoder and the
// converters to zigbee2mqtt JSON; the first two bytes pick the cluster id.
#include <cstddef>
#include <cstdint>
#include <span>

#include "drivers/zigbee/zcl/convert.h"
#include "drivers/zigbee/zcl/zcl.h"

using namespace edged::zigbee::zcl;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const auto cluster = static_cast<std::uint16_t>(data[0] | (data[1] << 8));
  std::span<const std::uint8_t> in(data + 2, size - 2);
  auto frame = ParseFrame(in);
  if (!frame.ok()) return 0;
  (void)EncodeFrame(*frame);
  const auto& p = frame->payload;
  if (auto r = DecodeReadAttributesResponse(p); r.ok()) (void)EncodeReadAttributesResponse(*r);
  if (auto r = DecodeAttributeRecords(p); r.ok()) {
    (void)EncodeAttributeRecords(*r);
    (void)AttributesToState(cluster, *r).dump();
  }
  if (auto r = DecodeReadAttributes(p); r.ok()) (void)EncodeReadAttributes(*r);
  if (auto r = DecodeWriteAttributesResponse(p); r.ok()) (void)EncodeWriteAttributesResponse(*r);
  if (auto r = DecodeConfigureReporting(p); r.ok()) (void)EncodeConfigureReporting(*r);
  if (auto r = DecodeConfigureReportingResponse(p); r.ok()) (void)EncodeConfigureReportingResponse(*r);
  (void)DecodeDefaultResponse(p);
  (void)ClusterCommandToState(cluster, *frame).dump();
  return 0;
}
