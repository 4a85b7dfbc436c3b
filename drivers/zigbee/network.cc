#include "drivers/zigbee/network.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <spdlog/fmt/fmt.h>

#include "base/atomic_file.h"
#include "base/logging.h"
#include "drivers/serial/link.h"
#include "drivers/zigbee/device_db.h"
#include "drivers/zigbee/device_queues.h"
#include "drivers/zigbee/sim/simulator.h"
#include "drivers/zigbee/zcl/clusters.h"
#include "drivers/zigbee/zcl/convert.h"
#include "drivers/zigbee/zcl/zcl.h"
#include "drivers/zigbee/znp/coordinator.h"

namespace edged::zigbee {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
using znp::Bytes;
using znp::Fields;
using znp::Subsystem;
using detail::IeeeToString;
using detail::ParseIeee;
namespace zc = zcl::cluster;
namespace za = zcl::attr;

// NV items (Z-Stack ZComDef.h), as zigbee-herdsman reads and writes them.
// Device jobs block on the device's answers; this many may wait at once before others queue.
constexpr std::size_t kMaxQueueThreads = 16;
// Unknown senders: at most this many are tracked, each asked for its IEEE address at most this often.
constexpr std::size_t kMaxUnknownSenders = 64;
constexpr auto kUnknownSenderRetry = std::chrono::seconds(60);
constexpr std::size_t kMaxHeldFrames = 16;
// The coordinator's own start-up sequence runs on a queue of its own (not an IEEE address).
constexpr char kCoordinatorQueue[] = "coordinator";

constexpr std::uint16_t kNvStartupOption = 0x0003;
constexpr std::uint16_t kNvNib = 0x0021;
constexpr std::uint16_t kNvExtendedPanId = 0x002D;
constexpr std::uint16_t kNvActiveKeyInfo = 0x003A;
constexpr std::uint16_t kNvApsUseExtPanId = 0x0047;
constexpr std::uint16_t kNvHasConfigured = 0x0060;
constexpr std::uint16_t kNvPreCfgKey = 0x0062;
constexpr std::uint16_t kNvPreCfgKeysEnable = 0x0063;
constexpr std::uint16_t kNvPanId = 0x0083;
constexpr std::uint16_t kNvChanList = 0x0084;
constexpr std::uint16_t kNvLogicalType = 0x0087;
constexpr std::uint16_t kNvZdoDirectCb = 0x008F;
constexpr std::uint8_t kDevStateCoordinator = 9;

// A serial job queue on its own thread: one per device, so a sleepy or dead device only delays itself.
StatusOr<Bytes> ParseHex(std::string_view text, std::size_t bytes, std::string_view what) {
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) text.remove_prefix(2);
  std::string clean;
  for (char c : text) {
    if (c != ':' && c != ' ') clean.push_back(c);
  }
  if (clean.size() != bytes * 2) {
    return InvalidArgumentError(fmt::format("zigbee.network.{}: expected {} hex digits, got '{}'", what, bytes * 2, text));
  }
  Bytes out;
  for (std::size_t i = 0; i < clean.size(); i += 2) {
    auto v = ParseIeee(clean.substr(i, 2));
    if (!v.ok()) return InvalidArgumentError(fmt::format("zigbee.network.{}: '{}' is not hex", what, text));
    out.push_back(static_cast<std::uint8_t>(*v));
  }
  return out;
}

std::string Hex(const Bytes& b) {
  std::string s;
  for (auto x : b) s += fmt::format("{:02x}", x);
  return s;
}

std::string PowerSourceName(std::uint64_t v) {
  switch (v & 0x7F) {
    case 1: return "Mains (single phase)";
    case 2: return "Mains (3 phase)";
    case 3: return "Battery";
    case 4: return "DC Source";
    case 5: return "Emergency mains constantly powered";
    case 6: return "Emergency mains and transfer switch";
    default: return "Unknown";
  }
}

void FillClusterNames(EndpointInfo& ep) {
  const auto name = [](std::uint16_t id) {
    const auto* c = zcl::FindCluster(id);
    return c != nullptr ? std::string(c->name) : std::to_string(id);
  };
  ep.input_clusters.clear();
  ep.output_clusters.clear();
  for (auto id : ep.input_cluster_ids) ep.input_clusters.push_back(name(id));
  for (auto id : ep.output_cluster_ids) ep.output_clusters.push_back(name(id));
}

// Reporting configured for the clusters edged converts: min, max seconds and the change that triggers
// a report early (zigbee2mqtt's defaults for these attributes).
struct ReportingRule {
  std::uint16_t cluster;
  std::uint16_t attr;
  std::uint8_t type;
  std::uint16_t min, max;
  std::int64_t change;
};
const std::vector<ReportingRule>& ReportingRules() {
  namespace t = zcl::type;
  static const std::vector<ReportingRule> kRules = {
      {zc::kOnOff, za::kOnOff, t::kBool, 0, 3600, 0},
      {zc::kLevelControl, za::kCurrentLevel, t::kUint8, 0, 3600, 1},
      {zc::kColorControl, za::kColorTemperature, t::kUint16, 0, 3600, 1},
      {zc::kColorControl, za::kCurrentX, t::kUint16, 0, 3600, 1},
      {zc::kColorControl, za::kCurrentY, t::kUint16, 0, 3600, 1},
      {zc::kTemperature, za::kMeasuredValue, t::kInt16, 10, 3600, 10},
      {zc::kHumidity, za::kMeasuredValue, t::kUint16, 10, 3600, 100},
      {zc::kPressure, za::kMeasuredValue, t::kInt16, 10, 3600, 1},
      {zc::kIlluminance, za::kMeasuredValue, t::kUint16, 10, 3600, 500},
      {zc::kOccupancy, za::kOccupancy, t::kMap8, 0, 3600, 0},
      {zc::kPowerConfiguration, za::kBatteryPercentageRemaining, t::kUint8, 3600, 62000, 0},
      {zc::kElectricalMeasurement, za::kActivePower, t::kInt16, 10, 3600, 5},
      {zc::kMetering, za::kCurrentSummationDelivered, t::kUint48, 10, 3600, 0},
  };
  return kRules;
}

}  // namespace

struct ZigbeeNetwork::Impl {
  NetworkOptions options;
  std::shared_ptr<spdlog::logger> log = Logger("zigbee");
  std::filesystem::path db_path;
  std::unique_ptr<sim::ZnpSimulator> simulator;
  std::unique_ptr<znp::ZnpCoordinator> coord;
  std::string port;
  Bytes network_key, ext_pan_id;  // ext_pan_id in configuration (big-endian) order
  std::uint32_t channel_mask = 0;

  mutable std::mutex mu;
  NetworkEvents events;
  std::vector<DeviceInfo> devices;
  std::map<std::string, json> state;
  std::map<std::string, zcl::MeasurementScale> scales;
  std::set<std::string> interviewing;
  // Senders whose network address is not in the database: a device that took a new address without
  // an announce edged saw (it moved while edged was down). Its IEEE address is asked for, and its
  // frames meanwhile are held (the newest kMaxHeldFrames) and delivered once the address is known.
  // Bounded by kMaxUnknownSenders.
  struct HeldFrame {
    std::uint16_t cluster = 0;
    int lqi = 0;
    Bytes data;
  };
  struct UnknownSender {
    std::chrono::steady_clock::time_point asked;
    bool asking = false;  // a lookup is queued or waiting; frames are held meanwhile
    std::deque<HeldFrame> frames;
    bool reported = false;  // told the user once that an unknown device is talking
  };
  std::map<std::uint16_t, UnknownSender> unknown_senders;
  // Per-device job queues; null when stopped (jobs posted then are dropped).
  std::unique_ptr<DeviceQueues> queues;
  CoordinatorInfo coordinator;
  bool up = false;
  std::string down_reason = "not started";
  std::optional<std::chrono::system_clock::time_point> permit_end;
  std::atomic<std::uint8_t> zcl_seq{1};
  std::atomic<std::uint8_t> transid{1};
  std::atomic<bool> started{false};

  // metrics (null without a registry)
  prometheus::Gauge* m_up = nullptr;
  prometheus::Family<prometheus::Gauge>* m_info = nullptr;
  prometheus::Family<prometheus::Gauge>* m_devices = nullptr;
  prometheus::Counter* m_frames_in = nullptr;
  prometheus::Counter* m_frames_out = nullptr;
  prometheus::Counter* m_bad_frames = nullptr;
  prometheus::Histogram* m_sreq = nullptr;
  prometheus::Family<prometheus::Gauge>* m_lqi = nullptr;
  prometheus::Family<prometheus::Gauge>* m_last_seen = nullptr;
  znp::CoordinatorStats exported_stats;
  std::unique_ptr<std::thread> housekeeping;
  std::mutex hk_mu;
  std::condition_variable hk_cv;
  bool hk_stop = false;

  // ---------- helpers (call with mu held where noted) ----------
  DeviceInfo* FindLocked(std::string_view key) {
    for (auto& d : devices) {
      if (d.ieee_address == key || d.friendly_name == key) return &d;
    }
    if (auto v = ParseIeee(key); v.ok()) {
      const std::string norm = IeeeToString(*v);
      for (auto& d : devices) {
        if (d.ieee_address == norm) return &d;
      }
    }
    return nullptr;
  }
  DeviceInfo* FindByNwkLocked(std::uint16_t nwk) {
    for (auto& d : devices) {
      if (d.network_address == nwk) return &d;
    }
    return nullptr;
  }
  void SaveLocked() {
    if (auto st = detail::SaveDevices(db_path, devices); !st.ok()) {
      log->error("saving the device database failed: {}", st.message());
    }
    UpdateDeviceMetricsLocked();
  }
  // Runs `job` on the device's queue; false once stopped.
  bool PostLocked(const std::string& ieee, std::function<void()> job) {
    if (!queues) return false;
    queues->Post(ieee, std::move(job));
    return true;
  }

  void UpdateDeviceMetricsLocked() {
    if (m_devices == nullptr) return;
    std::map<std::pair<std::string, std::string>, int> counts;
    for (const auto& t : {"Router", "EndDevice", "Unknown"}) {
      for (auto s : {InterviewState::kPending, InterviewState::kInProgress, InterviewState::kSuccessful,
                     InterviewState::kFailed}) {
        counts[{t, std::string(InterviewStateName(s))}] = 0;
      }
    }
    for (const auto& d : devices) counts[{d.type.empty() ? "Unknown" : d.type, std::string(InterviewStateName(d.interview_state))}]++;
    for (const auto& [k, n] : counts) {
      m_devices->Add({{"type", k.first}, {"interview_state", k.second}}).Set(n);
    }
  }

  void SetUp(bool value, std::string reason) {
    std::function<void(bool)> cb;
    {
      std::lock_guard lock(mu);
      if (up == value && (value || reason == down_reason)) return;
      up = value;
      down_reason = std::move(reason);
      cb = events.coordinator_state;
    }
    if (m_up != nullptr) m_up->Set(value ? 1 : 0);
    if (cb) cb(value);
  }

  // ---------- ZNP helpers (any thread but the link thread) ----------
  StatusOr<std::optional<Bytes>> ReadNv(std::uint16_t id) {
    ASSIGN_OR_RETURN(auto len, coord->Request(Subsystem::kSYS, "osalNvLength", {{"id", id}}));
    const std::size_t length = len.U("length");
    if (length == 0) return std::optional<Bytes>();
    Bytes out;
    while (out.size() < length) {
      ASSIGN_OR_RETURN(auto r, coord->Request(Subsystem::kSYS, "osalNvReadExt", {{"id", id}, {"offset", out.size()}}));
      const Bytes& v = r.Buf("value");
      if (v.empty()) return ProtocolError(fmt::format("NV item 0x{:04x}: empty read at offset {}", id, out.size()));
      out.insert(out.end(), v.begin(), v.end());
    }
    out.resize(length);
    return std::optional<Bytes>(std::move(out));
  }

  Status WriteNv(std::uint16_t id, const Bytes& value) {
    ASSIGN_OR_RETURN(auto len, coord->Request(Subsystem::kSYS, "osalNvLength", {{"id", id}}));
    if (len.U("length") == 0) {
      const Bytes init(value.begin(), value.begin() + static_cast<std::ptrdiff_t>(std::min<std::size_t>(value.size(), 240)));
      RETURN_IF_ERROR(coord->Request(Subsystem::kSYS, "osalNvItemInit",
                                     {{"id", id}, {"len", value.size()}, {"initvalue", init}}, std::nullopt, {0x00, 0x09})
                          .status());
    }
    return coord->Request(Subsystem::kSYS, "osalNvWriteExt", {{"id", id}, {"offset", 0u}, {"value", value}}).status();
  }

  Status ResetAdapter() {
    auto w = coord->Expect(Subsystem::kSYS, "resetInd", nullptr);
    if (auto st = coord->Post(Subsystem::kSYS, "resetReq", {{"type", 1u}}); !st.ok()) {
      coord->Cancel(w);
      return st;
    }
    return coord->Wait(w, options.areq_timeout * 3).status();
  }

  Status WaitForState9(const std::function<Status()>& trigger, std::chrono::milliseconds timeout) {
    auto w = coord->Expect(Subsystem::kZDO, "stateChangeInd", [](const Fields& f) { return f.U("state") == kDevStateCoordinator; });
    if (auto st = trigger(); !st.ok()) {
      coord->Cancel(w);
      return st;
    }
    return coord->Wait(w, timeout).status();
  }

  Status Commission() {
    log->info("commissioning a new network: channel mask 0x{:08x}, PAN ID 0x{:04x}, extended PAN ID {}", channel_mask,
              options.config.network.pan_id, Hex(ext_pan_id));
    RETURN_IF_ERROR(WriteNv(kNvStartupOption, {0x03}));
    RETURN_IF_ERROR(ResetAdapter());
    RETURN_IF_ERROR(WriteNv(kNvStartupOption, {0x00}));
    RETURN_IF_ERROR(WriteNv(kNvLogicalType, {0x00}));
    RETURN_IF_ERROR(WriteNv(kNvZdoDirectCb, {0x01}));
    Bytes mask(4);
    for (int i = 0; i < 4; ++i) mask[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(channel_mask >> (8 * i));
    RETURN_IF_ERROR(WriteNv(kNvChanList, mask));
    const auto pan = options.config.network.pan_id;
    RETURN_IF_ERROR(WriteNv(kNvPanId, {static_cast<std::uint8_t>(pan), static_cast<std::uint8_t>(pan >> 8)}));
    const Bytes reversed(ext_pan_id.rbegin(), ext_pan_id.rend());
    RETURN_IF_ERROR(WriteNv(kNvExtendedPanId, reversed));
    RETURN_IF_ERROR(WriteNv(kNvApsUseExtPanId, reversed));
    RETURN_IF_ERROR(WriteNv(kNvPreCfgKeysEnable, {0x00}));
    RETURN_IF_ERROR(WriteNv(kNvPreCfgKey, network_key));
    RETURN_IF_ERROR(coord->Request(Subsystem::kAPP_CNF, "bdbSetChannel", {{"isPrimary", 1u}, {"channel", channel_mask}}).status());
    RETURN_IF_ERROR(coord->Request(Subsystem::kAPP_CNF, "bdbSetChannel", {{"isPrimary", 0u}, {"channel", 0u}}).status());
    RETURN_IF_ERROR(WaitForState9(
        [&] { return coord->Request(Subsystem::kAPP_CNF, "bdbStartCommissioning", {{"mode", 0x04u}}).status(); },
        options.areq_timeout * 6));
    return WriteNv(kNvHasConfigured, {0x55});
  }

  Status RunStartup() {
    // Skip the serial bootloader: one 0xEF byte, then a ping (what zigbee-herdsman does).
    const std::byte skip{0xEF};
    RETURN_IF_ERROR(coord->WriteRaw(std::span<const std::byte>(&skip, 1)));
    Status ping = UnavailableError("no ping");
    for (int i = 0; i < 3 && !ping.ok(); ++i) {
      ping = coord->Request(Subsystem::kSYS, "ping", {}, std::chrono::milliseconds(1000)).status();
    }
    RETURN_IF_ERROR(ping.WithContext("the coordinator does not answer SYS_PING (wrong port, or not Z-Stack firmware?)"));
    ASSIGN_OR_RETURN(auto version, coord->Request(Subsystem::kSYS, "version", {}));
    const std::string revision = std::to_string(version.U("revision"));
    const std::uint64_t product = version.U("product");
    if (product == 0) return FailedPreconditionError("Z-Stack 1.2 firmware is not supported; flash Z-Stack 3.x");

    // Resume when the stick holds the configured network, commission otherwise.
    ASSIGN_OR_RETURN(auto configured, ReadNv(kNvHasConfigured));
    ASSIGN_OR_RETURN(auto nib, ReadNv(kNvNib));
    ASSIGN_OR_RETURN(auto key_info, ReadNv(kNvActiveKeyInfo));
    const Bytes reversed(ext_pan_id.rbegin(), ext_pan_id.rend());
    bool matches = configured && !configured->empty() && (*configured)[0] == 0x55 && nib && nib->size() >= 61 && key_info &&
                   key_info->size() >= 17;
    if (matches) {
      const auto pan = static_cast<std::uint16_t>((*nib)[33] | ((*nib)[34] << 8));
      matches = pan == options.config.network.pan_id && Bytes(nib->begin() + 53, nib->begin() + 61) == reversed &&
                Bytes(key_info->begin() + 1, key_info->begin() + 17) == network_key;
    }
    if (!matches) {
      RETURN_IF_ERROR(Commission().WithContext("forming the network"));
    } else {
      log->info("resuming the network stored on the coordinator");
    }
    ASSIGN_OR_RETURN(auto info, coord->Request(Subsystem::kUTIL, "getDeviceInfo", {}));
    if (info.U("devicestate") != kDevStateCoordinator) {
      RETURN_IF_ERROR(WaitForState9(
          [&] {
            return coord->Request(Subsystem::kZDO, "startupFromApp", {{"startdelay", 100u}}, options.areq_timeout * 4, {0, 1})
                .status();
          },
          options.areq_timeout * 4));
    }
    // Register endpoint 1 (Home Automation) unless the stick still has it.
    auto w = coord->Expect(Subsystem::kZDO, "activeEpRsp", [](const Fields& f) { return f.U("srcaddr") == 0; });
    RETURN_IF_ERROR(coord->Request(Subsystem::kZDO, "activeEpReq", {{"dstaddr", 0u}, {"nwkaddrofinterest", 0u}}).status());
    ASSIGN_OR_RETURN(auto eps, coord->Wait(w, options.areq_timeout));
    const Bytes& list = eps.Buf("activeeplist");
    if (std::find(list.begin(), list.end(), 1) == list.end()) {
      const std::vector<std::uint16_t> in = {zc::kBasic, zc::kIdentify, zc::kOnOff, zc::kIasZone};
      const std::vector<std::uint16_t> out = {zc::kBasic, zc::kIdentify, zc::kOnOff, zc::kLevelControl, zc::kColorControl,
                                              zc::kIasZone, zc::kMetering, zc::kElectricalMeasurement};
      RETURN_IF_ERROR(coord->Request(Subsystem::kAF, "register",
                                     {{"endpoint", 1u}, {"appprofid", 0x0104u}, {"appdeviceid", 0x0005u},
                                      {"appdevver", 0u}, {"latencyreq", 0u}, {"appinclusterlist", in},
                                      {"appoutclusterlist", out}})
                          .status());
    }
    ASSIGN_OR_RETURN(auto nwk, coord->Request(Subsystem::kZDO, "extNwkInfo", {}));
    {
      std::lock_guard lock(mu);
      coordinator.ieee_address = IeeeToString(info.U("ieeeaddr"));
      coordinator.revision = revision;
      coordinator.type = product == 1 ? "zStack30x" : "zStack3x0";
      coordinator.channel = static_cast<int>(nwk.U("channel"));
      coordinator.pan_id = static_cast<int>(nwk.U("panid"));
      coordinator.extended_pan_id = "0x" + Hex(ext_pan_id);
    }
    if (m_info != nullptr) m_info->Add({{"type", product == 1 ? "zStack30x" : "zStack3x0"}, {"revision", revision}}).Set(1);
    return OkStatus();
  }

  void OnLinkUp() {
    const Status st = RunStartup();
    if (!st.ok()) {
      log->error("coordinator start-up on {} failed: {}; retrying", coord->Describe(), st.message());
      SetUp(false, std::string(st.message()));
      std::this_thread::sleep_for(std::min(options.reconnect_max, std::chrono::milliseconds(2000)));
      coord->Reconnect();
      return;
    }
    CoordinatorInfo ci;
    std::vector<std::string> reinterview;
    {
      std::lock_guard lock(mu);
      ci = coordinator;
      for (auto& d : devices) {
        if (d.interview_state != InterviewState::kSuccessful && !interviewing.count(d.ieee_address)) {
          reinterview.push_back(d.ieee_address);
        }
      }
    }
    log->info("coordinator up: {} firmware {} on channel {}, PAN ID 0x{:04x}", ci.ieee_address, ci.revision, ci.channel,
              ci.pan_id);
    SetUp(true, "");
    for (const auto& ieee : reinterview) StartInterview(ieee);
    if (options.config.permit_join) {
      if (auto p = DoPermitJoin(std::chrono::duration_cast<std::chrono::seconds>(options.config.permit_join_timeout)); !p.ok()) {
        log->warn("permit join at start-up failed: {}", p.message());
      }
    }
  }

  Status DoPermitJoin(std::chrono::seconds duration) {
    const auto secs = std::clamp<std::int64_t>(duration.count(), 0, 254);
    RETURN_IF_ERROR(coord->Request(Subsystem::kZDO, "mgmtPermitJoinReq",
                                   {{"addrmode", 0x0Fu}, {"dstaddr", 0xFFFCu}, {"duration", static_cast<std::uint64_t>(secs)},
                                    {"tcsignificance", 0u}})
                        .status());
    std::lock_guard lock(mu);
    permit_end = secs == 0 ? std::nullopt
                           : std::optional(std::chrono::system_clock::now() + std::chrono::seconds(secs));
    return OkStatus();
  }

  // ZDO request to a device; the answer is the AREQ `rsp` from `src`.
  StatusOr<Fields> Zdo(std::string_view req, const Fields& f, std::string_view rsp, std::uint16_t src) {
    auto w = coord->Expect(Subsystem::kZDO, rsp, [src](const Fields& x) { return x.U("srcaddr") == src; });
    if (auto r = coord->Request(Subsystem::kZDO, req, f); !r.ok()) {
      coord->Cancel(w);
      return r.status();
    }
    ASSIGN_OR_RETURN(auto out, coord->Wait(w, options.areq_timeout));
    if (out.U("status") != 0) {
      return ProtocolError(fmt::format("ZDO {} to 0x{:04x} failed with status 0x{:02x}", req, src, out.U("status")));
    }
    return out;
  }

  // One ZCL request through AF_DATA_REQUEST, retried when the device did not acknowledge. With
  // `want_response`, waits for the device's ZCL answer with the same sequence number.
  StatusOr<zcl::Frame> Zcl(std::uint16_t nwk, std::uint8_t ep, std::uint16_t cluster, zcl::FrameKind kind,
                           std::uint8_t command, const Bytes& payload, bool want_response) {
    const std::uint8_t seq = zcl_seq++;
    zcl::Frame frame{{kind, false, false, kind == zcl::FrameKind::kGlobal, 0, seq, command}, payload};
    const Bytes data = zcl::EncodeFrame(frame);
    Status last;
    for (int attempt = 0; attempt < 3; ++attempt) {
      const std::uint8_t tid = transid++;
      auto confirm = coord->Expect(Subsystem::kAF, "dataConfirm", [tid](const Fields& f) { return f.U("transid") == tid; });
      std::shared_ptr<znp::ZnpCoordinator::Waiter> answer;
      if (want_response) {
        answer = coord->Expect(Subsystem::kAF, "incomingMsg", [nwk, cluster, seq](const Fields& f) {
          if (f.U("srcaddr") != nwk || f.U("clusterid") != cluster) return false;
          const Bytes& d = f.Buf("data");
          if (d.size() < 3) return false;
          const std::size_t at = (d[0] & 0x04) ? 3 : 1;
          return d.size() > at && d[at] == seq;
        });
      }
      auto sent = coord->Request(Subsystem::kAF, "dataRequest",
                                 {{"dstaddr", nwk}, {"destendpoint", ep}, {"srcendpoint", 1u}, {"clusterid", cluster},
                                  {"transid", tid}, {"options", 0u}, {"radius", 30u}, {"data", data}});
      if (!sent.ok()) {
        coord->Cancel(confirm);
        if (answer) coord->Cancel(answer);
        return sent.status();
      }
      auto conf = coord->Wait(confirm, options.areq_timeout);
      if (!conf.ok() || conf->U("status") != 0) {
        if (answer) coord->Cancel(answer);
        last = conf.ok() ? UnavailableError(fmt::format("device 0x{:04x} did not acknowledge (AF status 0x{:02x})", nwk,
                                                        conf->U("status")))
                         : conf.status();
        if (conf.ok() || conf.status().code() == StatusCode::kDeadlineExceeded) {
          std::this_thread::sleep_for(100ms * (attempt + 1));
          continue;
        }
        return last;
      }
      if (!answer) return frame;
      ASSIGN_OR_RETURN(auto msg, coord->Wait(answer, options.areq_timeout));
      return zcl::ParseFrame(msg.Buf("data"));
    }
    return last;
  }

  // ---------- device life cycle ----------
  void StartInterview(const std::string& ieee) {
    std::lock_guard lock(mu);
    if (interviewing.count(ieee)) return;
    interviewing.insert(ieee);
    PostLocked(ieee, [this, ieee] { Interview(ieee); });
  }

  void Interview(const std::string& ieee) {
    DeviceInfo snapshot;
    std::function<void(const DeviceInfo&, std::string_view)> cb;
    {
      std::lock_guard lock(mu);
      DeviceInfo* d = FindLocked(ieee);
      if (d == nullptr) {
        interviewing.erase(ieee);
        return;
      }
      d->interview_state = InterviewState::kInProgress;
      UpdateDeviceMetricsLocked();
      snapshot = *d;
      cb = events.device_interview;
    }
    if (cb) cb(snapshot, "started");
    Status st = DoInterview(snapshot);
    {
      std::lock_guard lock(mu);
      interviewing.erase(ieee);
      DeviceInfo* d = FindLocked(ieee);
      if (d == nullptr) return;
      if (st.ok()) {
        const auto keep_name = d->friendly_name;
        const auto keep_options = d->options;
        *d = snapshot;
        d->friendly_name = keep_name;
        d->options = keep_options;
        d->interview_state = InterviewState::kSuccessful;
      } else {
        d->interview_state = InterviewState::kFailed;
      }
      SaveLocked();
      snapshot = *d;
      cb = events.device_interview;
    }
    if (st.ok()) {
      log->info("interview of {} ({} {}) succeeded", ieee, snapshot.manufacturer, snapshot.model_id);
    } else {
      log->warn("interview of {} failed: {}", ieee, st.message());
    }
    if (cb) cb(snapshot, st.ok() ? "successful" : "failed");
    if (st.ok()) Configure(snapshot);
  }

  Status DoInterview(DeviceInfo& d) {
    const std::uint16_t nwk = d.network_address;
    StatusOr<Fields> node = UnavailableError("not asked");
    for (int i = 0; i < 3 && !node.ok(); ++i) {
      node = Zdo("nodeDescReq", {{"dstaddr", nwk}, {"nwkaddrofinterest", nwk}}, "nodeDescRsp", nwk);
    }
    RETURN_IF_ERROR(node.status().WithContext("node descriptor"));
    const auto logical = node->U("logicaltype_cmplxdescavai_userdescavai") & 0x07;
    d.type = logical == 1 ? "Router" : logical == 2 ? "EndDevice" : logical == 0 ? "Coordinator" : "Unknown";
    ASSIGN_OR_RETURN(auto eps, Zdo("activeEpReq", {{"dstaddr", nwk}, {"nwkaddrofinterest", nwk}}, "activeEpRsp", nwk));
    d.endpoints.clear();
    for (std::uint8_t id : eps.Buf("activeeplist")) {
      ASSIGN_OR_RETURN(auto sd, Zdo("simpleDescReq", {{"dstaddr", nwk}, {"nwkaddrofinterest", nwk}, {"endpoint", id}},
                                    "simpleDescRsp", nwk));
      EndpointInfo ep;
      ep.id = static_cast<std::uint8_t>(sd.U("endpoint"));
      ep.profile_id = static_cast<std::uint16_t>(sd.U("profileid"));
      ep.device_id = static_cast<std::uint16_t>(sd.U("deviceid"));
      ep.input_cluster_ids = sd.List16("inclusterlist");
      ep.output_cluster_ids = sd.List16("outclusterlist");
      FillClusterNames(ep);
      d.endpoints.push_back(std::move(ep));
    }
    if (d.endpoints.empty()) return ProtocolError("the device reported no endpoints");
    // Basic cluster: model, manufacturer, power source and versions.
    const std::uint8_t basic_ep = d.endpoints.front().id;
    const std::vector<std::uint16_t> ids = {za::kModelId, za::kManufacturerName, za::kPowerSource, za::kSwBuildId,
                                            za::kDateCode, za::kHwVersion};
    ASSIGN_OR_RETURN(auto rsp, Zcl(nwk, basic_ep, zc::kBasic, zcl::FrameKind::kGlobal, zcl::global::kReadAttributes,
                                   zcl::EncodeReadAttributes(ids), true));
    ASSIGN_OR_RETURN(auto recs, zcl::DecodeReadAttributesResponse(rsp.payload));
    for (const auto& r : recs) {
      if (r.status != zcl::status::kSuccess) continue;
      const auto* s = std::get_if<std::string>(&r.value.v);
      if (r.id == za::kModelId && s) d.model_id = *s;
      if (r.id == za::kManufacturerName && s) d.manufacturer = *s;
      if (r.id == za::kSwBuildId && s) d.software_build_id = *s;
      if (r.id == za::kDateCode && s) d.date_code = *s;
      if (r.id == za::kPowerSource) d.power_source = PowerSourceName(static_cast<std::uint64_t>(r.value.AsNumber().value_or(0)));
      if (r.id == za::kHwVersion) d.hardware_version = static_cast<int>(r.value.AsNumber().value_or(0));
    }
    if (d.power_source.empty()) d.power_source = "Unknown";
    // IAS zones enrol with the coordinator as their CIE.
    for (const auto& ep : d.endpoints) {
      if (std::find(ep.input_cluster_ids.begin(), ep.input_cluster_ids.end(), zc::kIasZone) == ep.input_cluster_ids.end()) continue;
      std::uint64_t coord_ieee = 0;
      {
        std::lock_guard lock(mu);
        coord_ieee = ParseIeee(coordinator.ieee_address).value_or(0);
      }
      std::vector<zcl::AttributeRecord> w = {{za::kIasCieAddress, zcl::Value::Unsigned(zcl::type::kIeee, coord_ieee)}};
      RETURN_IF_ERROR(Zcl(nwk, ep.id, zc::kIasZone, zcl::FrameKind::kGlobal, zcl::global::kWriteAttributes,
                          zcl::EncodeAttributeRecords(w), true)
                          .status()
                          .WithContext("writing the IAS CIE address"));
    }
    return OkStatus();
  }

  // Bind and configure reporting for the clusters edged converts, then read their current values.
  // Failures are logged, not fatal: many devices report without being asked.
  void Configure(const DeviceInfo& d) {
    std::uint64_t coord_ieee = 0;
    {
      std::lock_guard lock(mu);
      coord_ieee = ParseIeee(coordinator.ieee_address).value_or(0);
    }
    const std::uint64_t dev_ieee = ParseIeee(d.ieee_address).value_or(0);
    for (const auto& ep : d.endpoints) {
      std::map<std::uint16_t, std::vector<zcl::ReportingConfig>> per_cluster;
      for (const auto& rule : ReportingRules()) {
        if (std::find(ep.input_cluster_ids.begin(), ep.input_cluster_ids.end(), rule.cluster) == ep.input_cluster_ids.end()) continue;
        per_cluster[rule.cluster].push_back(
            {rule.attr, rule.type, rule.min, rule.max, zcl::Value::Signed(rule.type, rule.change)});
      }
      for (const auto& [cluster, configs] : per_cluster) {
        auto bound = Zdo("bindReq",
                         {{"dstaddr", d.network_address}, {"srcaddr", dev_ieee}, {"srcendpoint", ep.id},
                          {"clusterid", cluster}, {"dstaddrmode", 3u}, {"dstaddress", coord_ieee}, {"dstendpoint", 1u}},
                         "bindRsp", d.network_address);
        if (!bound.ok()) log->warn("bind {} cluster 0x{:04x}: {}", d.ieee_address, cluster, bound.status().message());
        auto cfg = Zcl(d.network_address, ep.id, cluster, zcl::FrameKind::kGlobal, zcl::global::kConfigureReporting,
                       zcl::EncodeConfigureReporting(configs), true);
        if (!cfg.ok()) log->warn("configure reporting {} cluster 0x{:04x}: {}", d.ieee_address, cluster, cfg.status().message());
        std::vector<std::uint16_t> ids;
        for (const auto& c : configs) ids.push_back(c.id);
        if (cluster == zc::kElectricalMeasurement) ids.insert(ids.end(), {za::kAcPowerMultiplier, za::kAcPowerDivisor});
        if (cluster == zc::kMetering) ids.insert(ids.end(), {za::kMeteringMultiplier, za::kMeteringDivisor});
        auto read = Zcl(d.network_address, ep.id, cluster, zcl::FrameKind::kGlobal, zcl::global::kReadAttributes,
                        zcl::EncodeReadAttributes(ids), true);
        if (!read.ok()) log->warn("read {} cluster 0x{:04x}: {}", d.ieee_address, cluster, read.status().message());
      }
    }
  }

  // ---------- AREQs (link thread; never blocks) ----------
  void OnAreq(const znp::Message& m) {
    const std::string_view name = m.def->name;
    const auto& f = m.fields;
    if (m.def->subsystem == Subsystem::kZDO && (name == "tcDeviceInd" || name == "endDeviceAnnceInd")) {
      OnJoin(name == "tcDeviceInd" ? f.U("extaddr") : f.U("ieeeaddr"), static_cast<std::uint16_t>(f.U("nwkaddr")));
    } else if (m.def->subsystem == Subsystem::kZDO && name == "leaveInd") {
      OnLeave(IeeeToString(f.U("extaddr")), f.U("rejoin") != 0);
    } else if (m.def->subsystem == Subsystem::kAF && name == "incomingMsg") {
      OnIncoming(static_cast<std::uint16_t>(f.U("srcaddr")), static_cast<std::uint16_t>(f.U("clusterid")),
                 static_cast<int>(f.U("linkquality")), f.Buf("data"));
    }
  }

  void OnJoin(std::uint64_t ieee_value, std::uint16_t nwk) {
    const std::string ieee = IeeeToString(ieee_value);
    DeviceInfo joined;
    bool is_new = false, interview = false;
    std::function<void(const DeviceInfo&)> cb;
    {
      std::lock_guard lock(mu);
      DeviceInfo* d = FindLocked(ieee);
      if (d == nullptr) {
        DeviceInfo nd;
        nd.ieee_address = ieee;
        nd.network_address = nwk;
        nd.friendly_name = ieee;
        if (auto it = options.config.devices.find(ieee); it != options.config.devices.end() && !it->second.friendly_name.empty()) {
          nd.friendly_name = it->second.friendly_name;
        }
        nd.type = "Unknown";
        nd.power_source = "Unknown";
        devices.push_back(nd);
        d = &devices.back();
        is_new = true;
      } else if (d->network_address != nwk) {
        d->network_address = nwk;  // rejoined with a new address
      }
      unknown_senders.erase(nwk);  // announced: no lookup needed
      d->last_seen = std::chrono::system_clock::now();
      interview = d->interview_state != InterviewState::kSuccessful && !interviewing.count(ieee);
      if (is_new || interview) SaveLocked();
      joined = *d;
      cb = events.device_joined;
    }
    if (is_new) {
      log->info("device {} joined (nwk 0x{:04x})", ieee, nwk);
      if (cb) cb(joined);
    }
    if (interview) StartInterview(ieee);
  }

  void OnLeave(const std::string& ieee, bool rejoin) {
    std::string name;
    std::function<void(const std::string&, const std::string&)> cb;
    {
      std::lock_guard lock(mu);
      auto it = std::find_if(devices.begin(), devices.end(), [&](const DeviceInfo& d) { return d.ieee_address == ieee; });
      if (it == devices.end()) return;
      name = it->friendly_name;
      if (!rejoin) {
        devices.erase(it);
        state.erase(ieee);
        if (m_lqi) m_lqi->Remove(&m_lqi->Add({{"ieee_address", ieee}}));
        if (m_last_seen) m_last_seen->Remove(&m_last_seen->Add({{"ieee_address", ieee}}));
        SaveLocked();
      }
      cb = events.device_leave;
    }
    log->info("device {} ({}) left the network{}", ieee, name, rejoin ? " to rejoin" : "");
    if (cb) cb(ieee, name);
  }

  void HoldFromUnknownSenderLocked(std::uint16_t nwk, std::uint16_t cluster, int lqi, const Bytes& data) {
    const auto now = std::chrono::steady_clock::now();
    auto it = unknown_senders.find(nwk);
    if (it == unknown_senders.end()) {
      if (unknown_senders.size() >= kMaxUnknownSenders) return;  // a neighbour's network, most likely
      it = unknown_senders.emplace(nwk, UnknownSender{}).first;
    } else if (!it->second.asking && now - it->second.asked < kUnknownSenderRetry) {
      return;  // asked recently and it is not one of ours
    }
    UnknownSender& sender = it->second;
    sender.frames.push_back(HeldFrame{cluster, lqi, data});
    if (sender.frames.size() > kMaxHeldFrames) sender.frames.pop_front();
    if (std::exchange(sender.asking, true)) return;
    sender.asked = now;
    PostLocked(fmt::format("nwk 0x{:04x}", nwk), [this, nwk] { ResolveAddress(nwk); });
  }

  // The lookup for `nwk` ended without finding one of ours: drop its frames, ask again in a while.
  void StopHolding(std::uint16_t nwk) {
    std::lock_guard lock(mu);
    StopHoldingLocked(nwk);
  }
  void StopHoldingLocked(std::uint16_t nwk) {
    if (auto sender = unknown_senders.find(nwk); sender != unknown_senders.end()) {
      sender->second.asking = false;
      sender->second.frames.clear();
    }
  }

  // ZDO_IEEE_ADDR_REQ to `nwk`: if the answer names a device in the database, it gets the new address
  // (saved) and the frames held meanwhile are delivered in order.
  void ResolveAddress(std::uint16_t nwk) {
    auto w = coord->Expect(Subsystem::kZDO, "ieeeAddrRsp", [nwk](const Fields& x) { return x.U("nwkaddr") == nwk; });
    if (auto r = coord->Request(Subsystem::kZDO, "ieeeAddrReq", {{"shortaddr", nwk}, {"reqtype", 0u}, {"startindex", 0u}});
        !r.ok()) {
      coord->Cancel(w);
      log->debug("asking 0x{:04x} for its IEEE address failed: {}", nwk, r.status().message());
      StopHolding(nwk);
      return;
    }
    auto rsp = coord->Wait(w, options.areq_timeout);
    if (!rsp.ok() || rsp->U("status") != 0) {
      log->debug("0x{:04x} did not tell its IEEE address; asking again when it next sends", nwk);
      StopHolding(nwk);
      return;
    }
    const std::uint64_t ieee_value = rsp->U("ieeeaddr");
    const std::string ieee = IeeeToString(ieee_value);
    std::deque<HeldFrame> held;
    {
      std::unique_lock lock(mu);
      auto sender = unknown_senders.find(nwk);
      DeviceInfo* d = FindLocked(ieee);
      if (d == nullptr) {
        StopHoldingLocked(nwk);
        // Joining is permitted: a device whose announce was lost (the link was down) joins now, as if
        // it had announced; its held frames mean nothing before its interview.
        if (permit_end && *permit_end > std::chrono::system_clock::now()) {
          unknown_senders.erase(nwk);
          lock.unlock();
          log->info("device {} (0x{:04x}) is sending without an announce edged saw; joining it", ieee, nwk);
          OnJoin(ieee_value, nwk);
          return;
        }
        if (sender != unknown_senders.end() && !std::exchange(sender->second.reported, true)) {
          log->info("device {} (0x{:04x}) is sending but is not in the device database; permit joining "
                    "(bridge/request/permit_join) to add it", ieee, nwk);
        }
        return;
      }
      log->info("device {} ({}) now has network address 0x{:04x} (was 0x{:04x}) without having announced it; "
                "updated", ieee, d->friendly_name, nwk, d->network_address);
      d->network_address = nwk;
      SaveLocked();
      if (sender != unknown_senders.end()) {
        held = std::move(sender->second.frames);
        unknown_senders.erase(sender);
      }
    }
    for (const auto& f : held) OnIncoming(nwk, f.cluster, f.lqi, f.data);
  }

  void OnIncoming(std::uint16_t nwk, std::uint16_t cluster, int lqi, const Bytes& data) {
    auto frame = zcl::ParseFrame(data);
    std::string ieee;
    json partial = json::object();
    std::function<void(const std::string&, const json&, std::optional<int>)> cb;
    {
      std::lock_guard lock(mu);
      DeviceInfo* d = FindByNwkLocked(nwk);
      if (d == nullptr) {
        HoldFromUnknownSenderLocked(nwk, cluster, lqi, data);
        return;
      }
      ieee = d->ieee_address;
      const auto now = std::chrono::system_clock::now();
      d->last_seen = now;
      d->linkquality = lqi;
      if (m_lqi) m_lqi->Add({{"ieee_address", ieee}}).Set(lqi);
      if (m_last_seen) {
        m_last_seen->Add({{"ieee_address", ieee}})
            .Set(std::chrono::duration<double>(now.time_since_epoch()).count());
      }
      if (frame.ok()) {
        const auto& h = frame->header;
        auto& scale = scales[ieee];
        if (h.kind == zcl::FrameKind::kGlobal &&
            (h.command == zcl::global::kReportAttributes || h.command == zcl::global::kReadAttributesResponse)) {
          std::vector<zcl::AttributeRecord> recs;
          if (h.command == zcl::global::kReportAttributes) {
            recs = zcl::DecodeAttributeRecords(frame->payload).value_or(std::vector<zcl::AttributeRecord>{});
          } else {
            for (auto& r : zcl::DecodeReadAttributesResponse(frame->payload).value_or(std::vector<zcl::ReadRecord>{})) {
              if (r.status == zcl::status::kSuccess) recs.push_back({r.id, r.value});
            }
          }
          for (const auto& r : recs) {  // remember the device's scales for later values
            const double v = r.value.AsNumber().value_or(0);
            if (v <= 0) continue;
            if (cluster == zc::kElectricalMeasurement && r.id == za::kAcPowerMultiplier) scale.power_multiplier = v;
            if (cluster == zc::kElectricalMeasurement && r.id == za::kAcPowerDivisor) scale.power_divisor = v;
            if (cluster == zc::kMetering && r.id == za::kMeteringMultiplier) scale.energy_multiplier = v;
            if (cluster == zc::kMetering && r.id == za::kMeteringDivisor) scale.energy_divisor = v;
          }
          if (cluster != zc::kBasic) partial = zcl::AttributesToState(cluster, recs, scale);
        } else if (h.kind == zcl::FrameKind::kCluster) {
          partial = zcl::ClusterCommandToState(cluster, *frame);
          if (cluster == zc::kIasZone && h.server_to_client && h.command == zcl::cmd::kZoneEnrollRequest) {
            const std::uint16_t dev_nwk = nwk;
            PostLocked(ieee, [this, dev_nwk] {
              // Zone enroll response: success, zone id 23.
              auto r = Zcl(dev_nwk, 1, zc::kIasZone, zcl::FrameKind::kCluster, zcl::cmd::kZoneEnrollResponse, {0x00, 23}, false);
              if (!r.ok()) log->warn("IAS enroll response to 0x{:04x}: {}", dev_nwk, r.status().message());
            });
          }
        }
      }
      state[ieee].update(partial);
      cb = events.device_message;
    }
    if (cb) cb(ieee, partial, lqi);
  }

  // Runs `job` on the device's queue and waits for it (bounded), so the caller sees the result while
  // other devices keep their own queues.
  Status RunOnDevice(const std::string& ieee, std::function<Status()> job) {
    auto promise = std::make_shared<std::promise<Status>>();
    auto future = promise->get_future();
    {
      std::lock_guard lock(mu);
      if (!PostLocked(ieee, [promise, job = std::move(job)] { promise->set_value(job()); })) {
        return UnavailableError("the Zigbee network is stopped");
      }
    }
    if (future.wait_for(options.areq_timeout * 4) != std::future_status::ready) {
      return DeadlineExceededError(fmt::format("device {}: the command is still queued behind earlier ones", ieee));
    }
    return future.get();
  }

  Status SendZclRequests(const std::string& key, const std::vector<zcl::ZclRequest>& reqs, bool want_response) {
    auto promise = std::make_shared<std::promise<Status>>();
    auto future = promise->get_future();
    SendZclRequestsAsync(key, reqs, want_response, [promise](Status s) { promise->set_value(std::move(s)); });
    if (future.wait_for(options.areq_timeout * 4) != std::future_status::ready) {
      return DeadlineExceededError(fmt::format("device {}: the command is still queued behind earlier ones", key));
    }
    return future.get();
  }

  void SendZclRequestsAsync(const std::string& key, const std::vector<zcl::ZclRequest>& reqs, bool want_response,
                            ZigbeeNetwork::Done done) {
    auto job = ZclJob(key, reqs, want_response);
    if (!job.ok()) return done(job.status());
    bool posted;
    {
      std::lock_guard lock(mu);
      posted = PostLocked(job->first, [job = std::move(job->second), done] { done(job()); });
    }
    // Outside mu: `done` may call back into the network.
    if (!posted) done(UnavailableError("the Zigbee network is stopped"));
  }

  // The device's IEEE address and the job that sends `reqs` to it, or why they cannot be sent.
  StatusOr<std::pair<std::string, std::function<Status()>>> ZclJob(const std::string& key,
                                                                    const std::vector<zcl::ZclRequest>& reqs,
                                                                    bool want_response) {
    DeviceInfo d;
    {
      std::lock_guard lock(mu);
      DeviceInfo* found = FindLocked(key);
      if (found == nullptr) return NotFoundError(fmt::format("zigbee: no device '{}'", key));
      d = *found;
      if (!up) return UnavailableError(fmt::format("zigbee: the coordinator is down ({})", down_reason));
    }
    std::vector<std::pair<std::uint8_t, zcl::ZclRequest>> routed;
    for (const auto& r : reqs) {
      std::optional<std::uint8_t> ep;
      for (const auto& e : d.endpoints) {
        if (std::find(e.input_cluster_ids.begin(), e.input_cluster_ids.end(), r.cluster) != e.input_cluster_ids.end()) {
          ep = e.id;
          break;
        }
      }
      if (!ep) {
        const auto* c = zcl::FindCluster(r.cluster);
        return InvalidArgumentError(fmt::format("zigbee: device '{}' ({}) has no {} cluster for this command", d.friendly_name,
                                                d.model_id, c ? c->name : std::to_string(r.cluster)));
      }
      routed.push_back({*ep, r});
    }
    std::function<Status()> job = [this, nwk = d.network_address, routed, want_response]() -> Status {
      for (const auto& [ep, r] : routed) {
        RETURN_IF_ERROR(Zcl(nwk, ep, r.cluster, r.kind, r.command, r.payload, want_response).status());
      }
      return OkStatus();
    };
    return std::make_pair(d.ieee_address, std::move(job));
  }

  void Housekeeping() {
    std::unique_lock lock(hk_mu);
    while (!hk_stop) {
      hk_cv.wait_for(lock, 1s);
      const auto s = coord->stats();
      if (m_frames_in) m_frames_in->Increment(static_cast<double>(s.frames_in - exported_stats.frames_in));
      if (m_frames_out) m_frames_out->Increment(static_cast<double>(s.frames_out - exported_stats.frames_out));
      if (m_bad_frames) m_bad_frames->Increment(static_cast<double>(s.bad_frames - exported_stats.bad_frames));
      exported_stats = s;
    }
  }
};

ZigbeeNetwork::ZigbeeNetwork(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ZigbeeNetwork::~ZigbeeNetwork() { Stop(); }

StatusOr<std::unique_ptr<ZigbeeNetwork>> ZigbeeNetwork::Create(NetworkOptions options) {
  auto impl = std::make_unique<Impl>();
  const auto& net = options.config.network;
  if (net.channel < 11 || net.channel > 26) {
    return InvalidArgumentError(fmt::format("zigbee.network.channel {} is outside 11..26", net.channel));
  }
  if (net.pan_id == 0 || net.pan_id == 0xFFFF) {
    return InvalidArgumentError("zigbee.network.pan_id must be in 0x0001..0xFFFE");
  }
  impl->channel_mask = 1u << net.channel;
  ASSIGN_OR_RETURN(impl->ext_pan_id, ParseHex(net.extended_pan_id, 8, "extended_pan_id"));
  if (options.state_dir.empty()) return InvalidArgumentError("zigbee: state_dir is empty");
  std::error_code ec;
  std::filesystem::create_directories(options.state_dir, ec);
  if (net.network_key == "generate") {
    // Generated once, kept beside the device database: a new key would orphan every paired device.
    const auto key_path = options.state_dir / "zigbee-network-key";
    auto stored = ReadFileToString(key_path);
    if (stored.ok()) {
      std::string text = *stored;
      while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
      ASSIGN_OR_RETURN(impl->network_key, ParseHex(text, 16, "network_key (" + key_path.string() + ")"));
    } else if (stored.status().code() == StatusCode::kNotFound) {
      std::random_device rd;
      for (int i = 0; i < 16; ++i) impl->network_key.push_back(static_cast<std::uint8_t>(rd()));
      RETURN_IF_ERROR(WriteFileAtomically(key_path, Hex(impl->network_key) + "\n", 0600));
    } else {
      return stored.status();
    }
  } else {
    ASSIGN_OR_RETURN(impl->network_key, ParseHex(net.network_key, 16, "network_key"));
  }
  impl->db_path = detail::DeviceDatabasePath(options.state_dir);
  ASSIGN_OR_RETURN(impl->devices, detail::LoadDevices(impl->db_path));
  for (auto& d : impl->devices) {
    for (auto& ep : d.endpoints) FillClusterNames(ep);
  }

  impl->port = options.config.serial.port;
  if (impl->port == "simulator") {
    sim::SimulatorOptions so;
    so.devices = options.config.simulator.devices;
    so.report_interval = options.simulator_report_interval.count() > 0
                             ? options.simulator_report_interval
                             : std::chrono::duration_cast<std::chrono::milliseconds>(options.config.simulator.report_interval);
    so.response_delay = options.simulator_response_delay;
    ASSIGN_OR_RETURN(impl->simulator, sim::ZnpSimulator::Create(so));
    // Absolute: the link opens device paths only, and a relative state_dir (the demo's) is relative
    // to the working directory.
    std::error_code ec;
    const auto tty = std::filesystem::absolute(options.state_dir / "zsim.tty", ec);
    if (ec) return InvalidArgumentError(fmt::format("zigbee simulator: state_dir {}: {}", options.state_dir.string(), ec.message()));
    impl->port = tty.string();
    RETURN_IF_ERROR(impl->simulator->ServePty(impl->port));
  } else if (impl->port != "auto") {
    RETURN_IF_ERROR(serial::MakeCoordinatorLink({impl->port, options.config.serial.baudrate, options.config.serial.rtscts}).status());
  } else if (!options.resolve_auto_port) {
    return InvalidArgumentError("zigbee.serial.port 'auto' needs USB discovery, which is not available here; set the port");
  }

  if (options.registry != nullptr) {
    auto& reg = *options.registry;
    impl->m_up = &prometheus::BuildGauge().Name("edged_zigbee_coordinator_up")
                      .Help("1 when the Zigbee coordinator is connected and started").Register(reg).Add({});
    impl->m_info = &prometheus::BuildGauge().Name("edged_zigbee_coordinator_info")
                        .Help("Coordinator firmware (labels), always 1").Register(reg);
    impl->m_devices = &prometheus::BuildGauge().Name("edged_zigbee_devices")
                           .Help("Devices in the database by type and interview state").Register(reg);
    auto& frames = prometheus::BuildCounter().Name("edged_zigbee_frames_total")
                       .Help("UNPI frames exchanged with the coordinator").Register(reg);
    impl->m_frames_in = &frames.Add({{"direction", "in"}});
    impl->m_frames_out = &frames.Add({{"direction", "out"}});
    impl->m_bad_frames = &prometheus::BuildCounter().Name("edged_zigbee_bad_frames_total")
                              .Help("Frames from the coordinator dropped for a bad checksum, length or payload")
                              .Register(reg).Add({});
    impl->m_sreq = &prometheus::BuildHistogram().Name("edged_zigbee_sreq_duration_seconds")
                        .Help("Time from an SREQ to its SRSP").Register(reg)
                        .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 6});
    impl->m_lqi = &prometheus::BuildGauge().Name("edged_zigbee_device_linkquality")
                       .Help("Link quality (0..255) of the last frame from the device").Register(reg);
    impl->m_last_seen = &prometheus::BuildGauge().Name("edged_zigbee_device_last_seen_timestamp_seconds")
                             .Help("When the device was last heard from").Register(reg);
    impl->m_up->Set(0);
    std::lock_guard lock(impl->mu);
    impl->UpdateDeviceMetricsLocked();
  }
  impl->options = std::move(options);
  return std::unique_ptr<ZigbeeNetwork>(new ZigbeeNetwork(std::move(impl)));
}

Status ZigbeeNetwork::Start() {
  Impl& m = *impl_;
  if (m.started.exchange(true)) return OkStatus();
  if (m.port == "auto") {
    auto port = m.options.resolve_auto_port();
    if (!port.ok()) {
      m.started = false;
      return port.status().WithContext("zigbee.serial.port auto");
    }
    m.port = *port;
  }
  ASSIGN_OR_RETURN(auto link, serial::MakeCoordinatorLink({m.port, m.options.config.serial.baudrate, m.options.config.serial.rtscts}));
  m.coord = std::make_unique<znp::ZnpCoordinator>(std::move(link), m.options.sreq_timeout, m.options.reconnect_min,
                                                  m.options.reconnect_max);
  {
    std::lock_guard lock(m.mu);
    m.queues = std::make_unique<DeviceQueues>(kMaxQueueThreads);
  }
  m.coord->SetHandlers(
      [&m](const znp::Message& msg) { m.OnAreq(msg); },
      [&m](bool up, const Status& why) {
        if (up) {
          std::lock_guard lock(m.mu);
          m.PostLocked(kCoordinatorQueue, [&m] { m.OnLinkUp(); });
        } else {
          m.SetUp(false, std::string(why.message()));
        }
      },
      [&m](std::chrono::duration<double> d) {
        if (m.m_sreq) m.m_sreq->Observe(d.count());
      });
  m.coord->Start();
  m.housekeeping = std::make_unique<std::thread>([&m] { m.Housekeeping(); });
  return OkStatus();
}

void ZigbeeNetwork::Stop() {
  Impl& m = *impl_;
  if (!m.started.exchange(false)) {
    if (m.simulator) m.simulator->Stop();
    return;
  }
  if (m.coord) m.coord->Stop();  // fails every wait at once, so queued jobs finish quickly
  {
    std::unique_ptr<DeviceQueues> queues;  // joined outside the lock: running jobs take it
    {
      std::lock_guard lock(m.mu);
      queues.swap(m.queues);
    }
  }
  {
    std::lock_guard lock(m.hk_mu);
    m.hk_stop = true;
  }
  m.hk_cv.notify_all();
  if (m.housekeeping) m.housekeeping->join();
  m.housekeeping.reset();
  {
    std::lock_guard lock(m.mu);
    m.SaveLocked();  // last_seen and link quality of this run
  }
  m.SetUp(false, "stopped");
  m.coord.reset();
  if (m.simulator) m.simulator->Stop();
}

Health ZigbeeNetwork::health() const {
  std::lock_guard lock(impl_->mu);
  if (impl_->up) return Health::Ok();
  return Health::Failed(fmt::format("zigbee coordinator on {} is down: {}", impl_->port, impl_->down_reason));
}

void ZigbeeNetwork::SetEvents(NetworkEvents events) {
  std::lock_guard lock(impl_->mu);
  impl_->events = std::move(events);
}

bool ZigbeeNetwork::coordinator_up() const {
  std::lock_guard lock(impl_->mu);
  return impl_->up;
}

CoordinatorInfo ZigbeeNetwork::Coordinator() const {
  std::lock_guard lock(impl_->mu);
  return impl_->coordinator;
}

std::vector<DeviceInfo> ZigbeeNetwork::Devices() const {
  std::lock_guard lock(impl_->mu);
  return impl_->devices;
}

StatusOr<DeviceInfo> ZigbeeNetwork::FindDevice(std::string_view key) const {
  std::lock_guard lock(impl_->mu);
  DeviceInfo* d = impl_->FindLocked(key);
  if (d == nullptr) return NotFoundError(fmt::format("zigbee: no device '{}'", key));
  return *d;
}

json ZigbeeNetwork::DeviceState(std::string_view key) const {
  std::lock_guard lock(impl_->mu);
  DeviceInfo* d = impl_->FindLocked(key);
  if (d == nullptr) return json::object();
  auto it = impl_->state.find(d->ieee_address);
  return it == impl_->state.end() ? json::object() : it->second;
}

Status ZigbeeNetwork::PermitJoin(std::chrono::seconds duration) {
  if (!coordinator_up()) return UnavailableError(
        "zigbee: cannot permit joining while the coordinator is down (starting, or reconnecting to "
        "zigbee.serial.port); retry when edged_zigbee_coordinator_up is 1, usually within seconds");
  return impl_->DoPermitJoin(duration);
}

std::optional<std::chrono::system_clock::time_point> ZigbeeNetwork::PermitJoinEnd() const {
  std::lock_guard lock(impl_->mu);
  if (impl_->permit_end && *impl_->permit_end <= std::chrono::system_clock::now()) return std::nullopt;
  return impl_->permit_end;
}

Status ZigbeeNetwork::Rename(const std::string& key, const std::string& new_name) {
  if (new_name.empty() || new_name.find_first_of("+#") != std::string::npos) {
    return InvalidArgumentError(fmt::format("zigbee: '{}' is not a valid friendly name (empty, or has + or #)", new_name));
  }
  std::lock_guard lock(impl_->mu);
  DeviceInfo* d = impl_->FindLocked(key);
  if (d == nullptr) return NotFoundError(fmt::format("zigbee: no device '{}'", key));
  for (const auto& other : impl_->devices) {
    if (&other != d && (other.friendly_name == new_name || other.ieee_address == new_name)) {
      return AlreadyExistsError(fmt::format("zigbee: the name '{}' is already used by {}", new_name, other.ieee_address));
    }
  }
  d->friendly_name = new_name;
  return detail::SaveDevices(impl_->db_path, impl_->devices);
}

Status ZigbeeNetwork::Remove(const std::string& key, bool force) {
  DeviceInfo d;
  {
    std::lock_guard lock(impl_->mu);
    DeviceInfo* found = impl_->FindLocked(key);
    if (found == nullptr) return NotFoundError(fmt::format("zigbee: no device '{}'", key));
    d = *found;
  }
  if (!force) {
    Status st = coordinator_up() ? impl_->RunOnDevice(d.ieee_address, [&]() -> Status {
      return impl_->Zdo("mgmtLeaveReq",
                        {{"dstaddr", d.network_address}, {"deviceaddress", ParseIeee(d.ieee_address).value_or(0)},
                         {"removechildren_rejoin", 0u}},
                        "mgmtLeaveRsp", d.network_address)
          .status();
    })
                                 : UnavailableError("the coordinator is down");
    if (!st.ok()) {
      return st.WithContext(fmt::format("zigbee: device '{}' did not confirm leaving; use force to remove it anyway",
                                        d.friendly_name));
    }
  }
  std::lock_guard lock(impl_->mu);
  auto& devs = impl_->devices;
  devs.erase(std::remove_if(devs.begin(), devs.end(), [&](const DeviceInfo& x) { return x.ieee_address == d.ieee_address; }),
             devs.end());
  impl_->state.erase(d.ieee_address);
  if (impl_->m_lqi) impl_->m_lqi->Remove(&impl_->m_lqi->Add({{"ieee_address", d.ieee_address}}));
  if (impl_->m_last_seen) impl_->m_last_seen->Remove(&impl_->m_last_seen->Add({{"ieee_address", d.ieee_address}}));
  impl_->SaveLocked();
  return OkStatus();
}

Status ZigbeeNetwork::SetOptions(const std::string& key, const json& options) {
  if (!options.is_object()) return InvalidArgumentError("zigbee: device options must be a JSON object");
  std::lock_guard lock(impl_->mu);
  DeviceInfo* d = impl_->FindLocked(key);
  if (d == nullptr) return NotFoundError(fmt::format("zigbee: no device '{}'", key));
  d->options = options;
  return detail::SaveDevices(impl_->db_path, impl_->devices);
}

Status ZigbeeNetwork::SendCommand(const std::string& key, const json& command) {
  ASSIGN_OR_RETURN(auto reqs, zcl::JsonToZcl(command));
  return impl_->SendZclRequests(key, reqs, false);
}

Status ZigbeeNetwork::Read(const std::string& key, const json& command) {
  ASSIGN_OR_RETURN(auto reqs, zcl::JsonToRead(command));
  return impl_->SendZclRequests(key, reqs, true);
}

void ZigbeeNetwork::SendCommandAsync(const std::string& key, const json& command, Done done) {
  auto reqs = zcl::JsonToZcl(command);
  if (!reqs.ok()) return done(reqs.status());
  impl_->SendZclRequestsAsync(key, *reqs, false, std::move(done));
}

void ZigbeeNetwork::ReadAsync(const std::string& key, const json& command, Done done) {
  auto reqs = zcl::JsonToRead(command);
  if (!reqs.ok()) return done(reqs.status());
  impl_->SendZclRequestsAsync(key, *reqs, true, std::move(done));
}

sim::ZnpSimulator* ZigbeeNetwork::simulator() const { return impl_->simulator.get(); }

}  // namespace edged::zigbee
