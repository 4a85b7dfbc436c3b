#include "drivers/zigbee/sim/simulator.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pty.h>
#include <termios.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <mutex>
#include <queue>
#include <random>
#include <thread>

#include <spdlog/fmt/fmt.h>

#include "base/logging.h"
#include "drivers/zigbee/zcl/clusters.h"
#include "drivers/zigbee/zcl/convert.h"
#include "drivers/zigbee/zcl/zcl.h"
#include "drivers/zigbee/znp/commands.h"
#include "drivers/zigbee/znp/unpi.h"

namespace edged::zigbee::sim {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using znp::Bytes;
using znp::Direction;
using znp::Fields;
using znp::Frame;
using znp::Subsystem;
namespace zc = zcl::cluster;
namespace za = zcl::attr;
namespace zt = zcl::type;

// NV item ids (Z-Stack ZComDef.h) the coordinator start-up reads and writes.
constexpr std::uint16_t kNvStartupOption = 0x0003;
constexpr std::uint16_t kNvNib = 0x0021;
constexpr std::uint16_t kNvExtendedPanId = 0x002D;
constexpr std::uint16_t kNvActiveKeyInfo = 0x003A;
constexpr std::uint16_t kNvAlternKeyInfo = 0x003B;
constexpr std::uint16_t kNvHasConfigured = 0x0060;
constexpr std::uint16_t kNvPreCfgKey = 0x0062;
constexpr std::uint16_t kNvNwkKey = 0x0082;
constexpr std::uint16_t kNvPanId = 0x0083;
constexpr std::uint16_t kNvChanList = 0x0084;
constexpr std::size_t kNibSize = 110;  // packed Z-Stack 3.x NIB, as zigbee-herdsman's nib struct lays it out

constexpr std::uint8_t kStatusSuccess = 0x00;
constexpr std::uint8_t kStatusFailure = 0x01;
constexpr std::uint8_t kNvItemInitialized = 0x09;
constexpr std::uint8_t kMacNoAck = 0xE9;

struct Endpoint {
  std::uint8_t id;
  std::uint16_t profile;
  std::uint16_t device_id;
  std::vector<std::uint16_t> in, out;
};

struct Device {
  SimDeviceInfo info;
  std::string model, manufacturer;
  std::uint8_t capabilities = 0x80;  // MAC capability flags: 0x8E mains router, 0x80 sleepy end device
  Endpoint ep;
  std::map<std::pair<std::uint16_t, std::uint16_t>, zcl::Value> attrs;
  std::uint8_t seq = 0;
  std::uint8_t lqi = 0;
  Clock::time_point next_report{};
};

Device MakeDevice(const std::string& type, int index) {
  Device d;
  d.info.type = type;
  d.info.ieee = 0x00124b0020000000ull + static_cast<std::uint64_t>(index + 1) * 0x1111;
  d.info.nwk = static_cast<std::uint16_t>(0x1000 + index * 0x0111 + 1);
  d.lqi = static_cast<std::uint8_t>(120 + index * 20);
  d.manufacturer = "edged";
  const auto set = [&](std::uint16_t c, std::uint16_t a, zcl::Value v) { d.attrs[{c, a}] = std::move(v); };
  const auto battery = [&] {
    d.info.mains_powered = false;
    d.capabilities = 0x80;
    set(zc::kBasic, za::kPowerSource, zcl::Value::Unsigned(zt::kEnum8, 3));
    set(zc::kPowerConfiguration, za::kBatteryPercentageRemaining, zcl::Value::Unsigned(zt::kUint8, 190));
    set(zc::kPowerConfiguration, za::kBatteryVoltage, zcl::Value::Unsigned(zt::kUint8, 30));
  };
  const auto mains = [&] {
    d.info.mains_powered = true;
    d.capabilities = 0x8E;
    set(zc::kBasic, za::kPowerSource, zcl::Value::Unsigned(zt::kEnum8, 1));
  };
  d.ep.id = 1;
  d.ep.profile = 0x0104;
  if (type == "climate_sensor") {
    d.model = "edged.climate";
    d.ep.device_id = 0x0302;
    d.ep.in = {zc::kBasic, zc::kPowerConfiguration, zc::kIdentify, zc::kTemperature, zc::kHumidity, zc::kPressure};
    battery();
    set(zc::kTemperature, za::kMeasuredValue, zcl::Value::Signed(zt::kInt16, 2150));
    set(zc::kHumidity, za::kMeasuredValue, zcl::Value::Unsigned(zt::kUint16, 4500));
    set(zc::kPressure, za::kMeasuredValue, zcl::Value::Signed(zt::kInt16, 1013));
  } else if (type == "smart_plug") {
    d.model = "edged.plug";
    d.ep.device_id = 0x0051;
    d.ep.in = {zc::kBasic, zc::kIdentify, zc::kOnOff, zc::kMetering, zc::kElectricalMeasurement};
    mains();
    set(zc::kOnOff, za::kOnOff, zcl::Value::Bool(false));
    set(zc::kElectricalMeasurement, za::kActivePower, zcl::Value::Signed(zt::kInt16, 0));
    set(zc::kElectricalMeasurement, za::kRmsVoltage, zcl::Value::Unsigned(zt::kUint16, 230));
    set(zc::kElectricalMeasurement, za::kRmsCurrent, zcl::Value::Unsigned(zt::kUint16, 0));
    set(zc::kElectricalMeasurement, za::kAcPowerMultiplier, zcl::Value::Unsigned(zt::kUint16, 1));
    set(zc::kElectricalMeasurement, za::kAcPowerDivisor, zcl::Value::Unsigned(zt::kUint16, 1));
    set(zc::kMetering, za::kCurrentSummationDelivered, zcl::Value::Unsigned(zt::kUint48, 12000));
    set(zc::kMetering, za::kMeteringMultiplier, zcl::Value::Unsigned(zt::kUint24, 1));
    set(zc::kMetering, za::kMeteringDivisor, zcl::Value::Unsigned(zt::kUint24, 1000));
  } else if (type == "color_bulb") {
    d.model = "edged.bulb";
    d.ep.device_id = 0x010D;
    d.ep.in = {zc::kBasic, zc::kIdentify, zc::kOnOff, zc::kLevelControl, zc::kColorControl};
    mains();
    set(zc::kOnOff, za::kOnOff, zcl::Value::Bool(true));
    set(zc::kLevelControl, za::kCurrentLevel, zcl::Value::Unsigned(zt::kUint8, 254));
    set(zc::kColorControl, za::kCurrentX, zcl::Value::Unsigned(zt::kUint16, 20000));
    set(zc::kColorControl, za::kCurrentY, zcl::Value::Unsigned(zt::kUint16, 20000));
    set(zc::kColorControl, za::kColorTemperature, zcl::Value::Unsigned(zt::kUint16, 370));
    set(zc::kColorControl, za::kColorMode, zcl::Value::Unsigned(zt::kEnum8, 2));
  } else if (type == "motion_sensor") {
    d.model = "edged.motion";
    d.ep.device_id = 0x0107;
    d.ep.in = {zc::kBasic, zc::kPowerConfiguration, zc::kIdentify, zc::kOccupancy, zc::kIlluminance};
    battery();
    set(zc::kOccupancy, za::kOccupancy, zcl::Value::Unsigned(zt::kMap8, 0));
    set(zc::kIlluminance, za::kMeasuredValue, zcl::Value::Unsigned(zt::kUint16, 30001));
  } else {  // door_contact
    d.model = "edged.door";
    d.ep.device_id = 0x0402;
    d.ep.in = {zc::kBasic, zc::kPowerConfiguration, zc::kIdentify, zc::kIasZone};
    battery();
    set(zc::kIasZone, za::kZoneState, zcl::Value::Unsigned(zt::kEnum8, 0));
    set(zc::kIasZone, za::kZoneType, zcl::Value::Unsigned(zt::kEnum16, 0x0015));
    set(zc::kIasZone, za::kZoneStatus, zcl::Value::Unsigned(zt::kMap16, 0));
    set(zc::kIasZone, za::kIasCieAddress, zcl::Value::Unsigned(zt::kIeee, 0));
  }
  d.ep.out = {zcl::cluster::kOta};
  set(zc::kBasic, za::kZclVersion, zcl::Value::Unsigned(zt::kUint8, 8));
  set(zc::kBasic, za::kAppVersion, zcl::Value::Unsigned(zt::kUint8, 1));
  set(zc::kBasic, za::kHwVersion, zcl::Value::Unsigned(zt::kUint8, 1));
  set(zc::kBasic, za::kManufacturerName, zcl::Value::String(d.manufacturer));
  set(zc::kBasic, za::kModelId, zcl::Value::String(d.model));
  set(zc::kBasic, za::kDateCode, zcl::Value::String("20240101"));
  set(zc::kBasic, za::kSwBuildId, zcl::Value::String("edged-zsim-1"));
  return d;
}

void PutLE(Bytes& b, std::size_t at, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
}

std::uint64_t GetLE(const Bytes& b, std::size_t at, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n && at + static_cast<std::size_t>(i) < b.size(); ++i) {
    v |= std::uint64_t{b[at + static_cast<std::size_t>(i)]} << (8 * i);
  }
  return v;
}

}  // namespace

struct ZnpSimulator::Impl {
  SimulatorOptions options;
  mutable std::mutex mu;
  std::thread worker;
  bool stopping = false;
  int wake_fd = -1;

  // transports
  std::filesystem::path pty_link;
  int pty_master = -1;
  int listen_fd = -1;
  int tcp_port = 0;
  int client_fd = -1;
  bool vanished = false;
  znp::UnpiParser pty_parser, tcp_parser;

  // coordinator state
  std::map<std::uint16_t, Bytes> nv;
  std::uint8_t device_state = 0;  // 0 = hold, 9 = started as coordinator
  std::uint64_t ieee = 0x00124b00e0d51234ull;
  std::map<std::uint8_t, Endpoint> endpoints;
  std::vector<std::pair<std::uint8_t, std::uint16_t>> groups;
  Clock::time_point permit_until{};
  std::vector<Device> devices;
  FaultInjection faults;
  std::mt19937 rng;
  std::uint64_t frames_in = 0, frames_out = 0;

  // timers
  struct Timer {
    Clock::time_point at;
    std::uint64_t order;
    std::function<void()> fn;
    bool operator>(const Timer& o) const { return at != o.at ? at > o.at : order > o.order; }
  };
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers;
  std::uint64_t timer_order = 0;

  void After(std::chrono::milliseconds d, std::function<void()> fn) {
    timers.push({Clock::now() + d, timer_order++, std::move(fn)});
  }

  void Wake() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  }

  // ---- output ----
  void WriteAll(int fd, const std::vector<std::byte>& bytes) {
    std::size_t done = 0;
    for (int tries = 0; done < bytes.size() && tries < 200; ++tries) {
      const ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == ENOTSOCK) {  // the pty master
        const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (w > 0) {
          done += static_cast<std::size_t>(w);
          continue;
        }
      }
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTSOCK) return;
      std::this_thread::sleep_for(1ms);
    }
  }

  void Send(const Frame& frame) {
    auto bytes = znp::EncodeFrame(frame);
    if (!bytes.ok()) return;
    std::vector<std::byte> out;
    if (faults.garbage > 0 && std::uniform_real_distribution<>(0, 1)(rng) < faults.garbage) {
      for (std::uint8_t b : {0x00, 0xFE, 0x13, 0xFE, 0x05, 0x61, 0x37}) out.push_back(std::byte{b});
    }
    out.insert(out.end(), bytes->begin(), bytes->end());
    ++frames_out;
    if (pty_master >= 0) WriteAll(pty_master, out);
    if (client_fd >= 0) WriteAll(client_fd, out);
  }

  void SendMsg(Subsystem s, std::string_view name, Direction d, const Fields& f) {
    auto frame = znp::Encode(s, name, d, f);
    if (frame.ok()) Send(*frame);
  }

  void Srsp(Subsystem s, std::string_view name, const Fields& f) {
    if (faults.drop_srsp > 0 && std::uniform_real_distribution<>(0, 1)(rng) < faults.drop_srsp) return;
    auto frame = znp::Encode(s, name, Direction::kResponse, f);
    if (!frame.ok()) return;
    if (faults.srsp_delay.count() > 0) {
      After(faults.srsp_delay, [this, fr = *frame] { Send(fr); });
    } else {
      Send(*frame);
    }
  }

  void Areq(std::chrono::milliseconds delay, Subsystem s, std::string_view name, Fields f,
            std::function<void()> sent = {}) {
    After(delay, [this, s, name = std::string(name), f = std::move(f), sent = std::move(sent)] {
      SendMsg(s, name, Direction::kRequest, f);
      if (sent) sent();
    });
  }

  // ---- network state ----
  std::uint16_t PanId() const {
    auto it = nv.find(kNvPanId);
    return it == nv.end() ? 0x1A62 : static_cast<std::uint16_t>(GetLE(it->second, 0, 2));
  }
  std::uint8_t Channel() const {
    auto it = nv.find(kNvChanList);
    const std::uint32_t mask = it == nv.end() ? 0x800 : static_cast<std::uint32_t>(GetLE(it->second, 0, 4));
    for (int c = 11; c <= 26; ++c) {
      if (mask & (1u << c)) return static_cast<std::uint8_t>(c);
    }
    return 11;
  }
  Bytes ExtPanIdRaw() const {  // stored byte-reversed, as herdsman writes it
    auto it = nv.find(kNvExtendedPanId);
    if (it != nv.end() && it->second.size() == 8) return it->second;
    Bytes b(8);
    PutLE(b, 0, ieee, 8);
    return b;
  }

  void FormNetwork() {
    Bytes nib(kNibSize, 0);
    nib[0] = 1;                                          // SequenceNum
    nib[1] = 5;                                          // PassiveAckTimeout
    nib[2] = 2;                                          // MaxBroadcastRetries
    nib[3] = 20;                                         // MaxChildren
    nib[4] = 15;                                         // MaxDepth
    PutLE(nib, 20, 0x0000, 2);                           // nwkDevAddress
    nib[22] = Channel();                                 // nwkLogicalChannel
    PutLE(nib, 23, 0x0000, 2);                           // nwkCoordAddress
    PutLE(nib, 33, PanId(), 2);                          // nwkPanId
    nib[35] = 1;                                         // nwkState
    PutLE(nib, 36, 1u << Channel(), 4);                  // channelList
    const Bytes ext = ExtPanIdRaw();
    std::copy(ext.begin(), ext.end(), nib.begin() + 53);  // extendedPANID
    nv[kNvNib] = nib;
    Bytes key(17, 0);
    if (auto it = nv.find(kNvPreCfgKey); it != nv.end()) {
      std::copy_n(it->second.begin(), std::min<std::size_t>(16, it->second.size()), key.begin() + 1);
    }
    nv[kNvActiveKeyInfo] = key;
    nv[kNvAlternKeyInfo] = key;
  }

  void StartCoordinator() {
    if (!nv.count(kNvNib)) FormNetwork();
    device_state = 9;
    Areq(20ms, Subsystem::kZDO, "stateChangeInd", {{"state", 8u}});
    Areq(40ms, Subsystem::kZDO, "stateChangeInd", {{"state", 9u}});
  }

  // ---- devices ----
  Device* FindByNwk(std::uint16_t nwk) {
    for (auto& d : devices) {
      if (d.info.nwk == nwk && d.info.joined) return &d;
    }
    return nullptr;
  }
  Device* FindByIeee(std::uint64_t ieee_addr) {
    for (auto& d : devices) {
      if (d.info.ieee == ieee_addr) return &d;
    }
    return nullptr;
  }

  // `sent` (optional) runs right after the frame's bytes were written.
  void IncomingZcl(Device& d, std::uint16_t cluster, const zcl::Frame& frame, std::function<void()> sent = {}) {
    if (d.info.silent || !d.info.joined) return;
    const Bytes data = zcl::EncodeFrame(frame);
    Areq(options.response_delay, Subsystem::kAF, "incomingMsg",
         {{"groupid", 0u}, {"clusterid", cluster}, {"srcaddr", d.info.nwk}, {"srcendpoint", d.ep.id},
          {"dstendpoint", 1u}, {"wasbroadcast", 0u}, {"linkquality", d.lqi}, {"securityuse", 0u},
          {"timestamp", 0u}, {"transseqnumber", 0u}, {"data", data}},
         std::move(sent));
  }

  void Report(Device& d, std::uint16_t cluster, std::vector<std::uint16_t> ids) {
    std::vector<zcl::AttributeRecord> recs;
    for (auto id : ids) {
      auto it = d.attrs.find({cluster, id});
      if (it != d.attrs.end()) recs.push_back({id, it->second});
    }
    if (recs.empty()) return;
    zcl::Frame f{{zcl::FrameKind::kGlobal, false, true, true, 0, ++d.seq, zcl::global::kReportAttributes},
                 zcl::EncodeAttributeRecords(recs)};
    std::function<void()> sent;
    if (cluster == zc::kTemperature && options.temperature_report_sent) {
      const auto centi = static_cast<std::int64_t>(*d.attrs[{zc::kTemperature, za::kMeasuredValue}].AsNumber());
      sent = [this, ieee = d.info.ieee, centi] { options.temperature_report_sent(ieee, centi); };
    }
    IncomingZcl(d, cluster, f, std::move(sent));
  }

  void ReportAll(Device& d) {
    for (auto cluster : d.ep.in) {
      if (cluster == zc::kBasic || cluster == zc::kIdentify) continue;
      if (cluster == zc::kIasZone) {
        const auto status = static_cast<std::uint16_t>(*d.attrs[{zc::kIasZone, za::kZoneStatus}].AsNumber());
        zcl::Frame f{{zcl::FrameKind::kCluster, false, true, false, 0, ++d.seq, zcl::cmd::kZoneStatusChangeNotification},
                     {static_cast<std::uint8_t>(status), static_cast<std::uint8_t>(status >> 8), 0, 0, 0, 0}};
        IncomingZcl(d, cluster, f);
        continue;
      }
      std::vector<std::uint16_t> ids;
      if (const auto* def = zcl::FindCluster(cluster)) {
        for (const auto& a : def->attributes) {
          if (a.reportable) ids.push_back(a.id);
        }
      }
      Report(d, cluster, ids);
    }
  }

  // Values drift between reports so a consumer sees changes.
  void Drift(Device& d) {
    std::uniform_int_distribution<int> step(-20, 20);
    const auto bump = [&](std::uint16_t c, std::uint16_t a, int delta, double lo, double hi) {
      auto it = d.attrs.find({c, a});
      if (it == d.attrs.end()) return;
      const double v = std::clamp(*it->second.AsNumber() + delta, lo, hi);
      if (std::holds_alternative<std::int64_t>(it->second.v)) {
        it->second.v = static_cast<std::int64_t>(v);
      } else {
        it->second.v = static_cast<std::uint64_t>(v);
      }
    };
    if (options.temperature_report_sent) {
      if (auto t = d.attrs.find({zc::kTemperature, za::kMeasuredValue}); t != d.attrs.end() && t->second.AsNumber()) {
        const double now = *t->second.AsNumber();
        t->second.v = static_cast<std::int64_t>(now >= 3000 ? 1500 : now + 1);
      }
    } else {
      bump(zc::kTemperature, za::kMeasuredValue, step(rng), 1500, 3000);
    }
    bump(zc::kHumidity, za::kMeasuredValue, step(rng) * 5, 2000, 8000);
    bump(zc::kIlluminance, za::kMeasuredValue, step(rng) * 10, 1, 50000);
    bump(zc::kMetering, za::kCurrentSummationDelivered,
         static_cast<int>(*d.attrs[{zc::kElectricalMeasurement, za::kActivePower}].AsNumber() / 10), 0, 1e12);
    if (d.info.type == "motion_sensor") {
      d.attrs[{zc::kOccupancy, za::kOccupancy}].v = static_cast<std::uint64_t>(rng() % 2);
    }
    if (d.info.type == "door_contact") {
      d.attrs[{zc::kIasZone, za::kZoneStatus}].v = static_cast<std::uint64_t>(rng() % 2);
    }
  }

  void HandleZclToDevice(Device& d, std::uint16_t cluster, const Bytes& data) {
    auto parsed = zcl::ParseFrame(data);
    if (!parsed.ok()) return;
    const zcl::Frame& req = *parsed;
    zcl::Header rh{zcl::FrameKind::kGlobal, false, true, true, 0, req.header.seq, 0};
    const auto respond = [&](std::uint8_t command, Bytes payload) {
      rh.command = command;
      IncomingZcl(d, cluster, {rh, std::move(payload)});
    };
    const auto default_response = [&](std::uint8_t status) {
      if (!req.header.disable_default_response || status != zcl::status::kSuccess) {
        respond(zcl::global::kDefaultResponse, zcl::EncodeDefaultResponse({req.header.command, status}));
      }
    };
    if (std::find(d.ep.in.begin(), d.ep.in.end(), cluster) == d.ep.in.end()) {
      default_response(0xC3);  // UNSUPPORTED_CLUSTER
      return;
    }
    if (req.header.kind == zcl::FrameKind::kGlobal) {
      switch (req.header.command) {
        case zcl::global::kReadAttributes: {
          auto ids = zcl::DecodeReadAttributes(req.payload);
          if (!ids.ok()) return;
          std::vector<zcl::ReadRecord> recs;
          for (auto id : *ids) {
            auto it = d.attrs.find({cluster, id});
            if (it == d.attrs.end()) {
              recs.push_back({id, zcl::status::kUnsupportedAttribute, {}});
            } else {
              recs.push_back({id, zcl::status::kSuccess, it->second});
            }
          }
          respond(zcl::global::kReadAttributesResponse, zcl::EncodeReadAttributesResponse(recs));
          return;
        }
        case zcl::global::kWriteAttributes: {
          auto recs = zcl::DecodeAttributeRecords(req.payload);
          if (!recs.ok()) return;
          std::vector<zcl::WriteStatus> st;
          for (auto& r : *recs) {
            auto it = d.attrs.find({cluster, r.id});
            if (it == d.attrs.end()) {
              st.push_back({zcl::status::kUnsupportedAttribute, r.id});
            } else {
              it->second = r.value;
              st.push_back({zcl::status::kSuccess, r.id});
            }
          }
          respond(zcl::global::kWriteAttributesResponse, zcl::EncodeWriteAttributesResponse(st));
          if (cluster == zc::kIasZone) {  // enrol: the zone asks the CIE for a zone id
            zcl::Frame enroll{{zcl::FrameKind::kCluster, false, true, false, 0, ++d.seq, zcl::cmd::kZoneEnrollRequest},
                              {0x15, 0x00, 0x00, 0x00}};
            IncomingZcl(d, cluster, enroll);
          }
          return;
        }
        case zcl::global::kConfigureReporting: {
          auto cfg = zcl::DecodeConfigureReporting(req.payload);
          std::vector<zcl::ReportingStatus> st;
          if (cfg.ok()) {
            for (auto& c : *cfg) {
              if (!d.attrs.count({cluster, c.id})) st.push_back({zcl::status::kUnsupportedAttribute, 0, c.id});
            }
          }
          respond(zcl::global::kConfigureReportingResponse, zcl::EncodeConfigureReportingResponse(st));
          return;
        }
        default:
          default_response(zcl::status::kUnsupGeneralCommand);
          return;
      }
    }
    // cluster-specific commands
    const Bytes& p = req.payload;
    const std::uint8_t c = req.header.command;
    auto& a = d.attrs;
    std::vector<std::pair<std::uint16_t, std::vector<std::uint16_t>>> changed;
    if (cluster == zc::kOnOff && c <= zcl::cmd::kToggle) {
      bool on = c == zcl::cmd::kOn || (c == zcl::cmd::kToggle && *a[{zc::kOnOff, za::kOnOff}].AsNumber() == 0);
      a[{zc::kOnOff, za::kOnOff}] = zcl::Value::Bool(on);
      if (d.info.type == "smart_plug") {
        a[{zc::kElectricalMeasurement, za::kActivePower}].v = static_cast<std::int64_t>(on ? 1200 : 0);
        a[{zc::kElectricalMeasurement, za::kRmsCurrent}].v = static_cast<std::uint64_t>(on ? 5217 : 0);
        changed.push_back({zc::kElectricalMeasurement, {za::kActivePower, za::kRmsCurrent}});
      }
      changed.insert(changed.begin(), {zc::kOnOff, {za::kOnOff}});
    } else if (cluster == zc::kLevelControl && (c == zcl::cmd::kMoveToLevel || c == zcl::cmd::kMoveToLevelWithOnOff) &&
               !p.empty()) {
      a[{zc::kLevelControl, za::kCurrentLevel}].v = static_cast<std::uint64_t>(p[0]);
      changed.push_back({zc::kLevelControl, {za::kCurrentLevel}});
      if (c == zcl::cmd::kMoveToLevelWithOnOff) {
        a[{zc::kOnOff, za::kOnOff}] = zcl::Value::Bool(p[0] > 1);
        changed.push_back({zc::kOnOff, {za::kOnOff}});
      }
    } else if (cluster == zc::kColorControl && c == zcl::cmd::kMoveToColor && p.size() >= 4) {
      a[{zc::kColorControl, za::kCurrentX}].v = GetLE(p, 0, 2);
      a[{zc::kColorControl, za::kCurrentY}].v = GetLE(p, 2, 2);
      a[{zc::kColorControl, za::kColorMode}].v = std::uint64_t{1};
      changed.push_back({zc::kColorControl, {za::kCurrentX, za::kCurrentY, za::kColorMode}});
    } else if (cluster == zc::kColorControl && c == zcl::cmd::kMoveToColorTemperature && p.size() >= 2) {
      a[{zc::kColorControl, za::kColorTemperature}].v = GetLE(p, 0, 2);
      a[{zc::kColorControl, za::kColorMode}].v = std::uint64_t{2};
      changed.push_back({zc::kColorControl, {za::kColorTemperature, za::kColorMode}});
    } else if (cluster == zc::kIasZone && c == zcl::cmd::kZoneEnrollResponse) {
      a[{zc::kIasZone, za::kZoneState}].v = std::uint64_t{1};
    } else {
      default_response(zcl::status::kUnsupClusterCommand);
      return;
    }
    default_response(zcl::status::kSuccess);
    // Like real lights and plugs with reporting configured: the new state is reported right away.
    for (auto& [cl, ids] : changed) Report(d, cl, ids);
  }

  void JoinNext() {
    if (Clock::now() >= permit_until) return;
    for (auto& d : devices) {
      if (d.info.joined) continue;
      d.info.joined = true;
      // Real devices' clocks are independent: each gets its own phase within the interval, so devices
      // that joined a multiple of the interval apart do not report in the same instant.
      const auto phase = std::uniform_int_distribution<std::int64_t>(0, options.report_interval.count())(rng);
      d.next_report = Clock::now() + options.report_interval + std::chrono::milliseconds(phase);
      SendMsg(Subsystem::kZDO, "tcDeviceInd", Direction::kRequest,
              {{"nwkaddr", d.info.nwk}, {"extaddr", d.info.ieee}, {"parentaddr", 0u}});
      SendMsg(Subsystem::kZDO, "endDeviceAnnceInd", Direction::kRequest,
              {{"srcaddr", d.info.nwk}, {"nwkaddr", d.info.nwk}, {"ieeeaddr", d.info.ieee},
               {"capabilities", d.capabilities}});
      After(options.join_spacing, [this] { JoinNext(); });
      return;
    }
  }

  void PermitJoin(std::uint8_t seconds) {
    const bool was = Clock::now() < permit_until;
    permit_until = seconds == 0 ? Clock::time_point{} : Clock::now() + std::chrono::seconds(seconds);
    SendMsg(Subsystem::kZDO, "permitJoinInd", Direction::kRequest, {{"duration", seconds}});
    if (seconds > 0 && !was) After(options.join_spacing, [this] { JoinNext(); });
  }

  // ZDO request to a device (or the coordinator, nwk 0): SRSP now, the AREQ answer shortly after.
  void HandleZdo(const znp::Message& m) {
    const auto& f = m.fields;
    const std::string_view name = m.def->name;
    Srsp(Subsystem::kZDO, name, {{"status", kStatusSuccess}});
    // The addressee: `dstaddr`, except for the address lookups, which name the device in `shortaddr`.
    const auto nwk = static_cast<std::uint16_t>(f.Has("dstaddr") ? f.U("dstaddr") : f.U("shortaddr"));
    const auto interest = static_cast<std::uint16_t>(f.Has("nwkaddrofinterest") ? f.U("nwkaddrofinterest") : nwk);
    const auto delay = options.response_delay;
    if (name == "mgmtPermitJoinReq") {
      PermitJoin(static_cast<std::uint8_t>(f.U("duration")));
      Areq(delay, Subsystem::kZDO, "mgmtPermitJoinRsp", {{"srcaddr", 0u}, {"status", 0u}});
      return;
    }
    if (nwk == 0x0000) {  // the coordinator itself
      if (name == "activeEpReq") {
        Bytes eps;
        for (auto& [id, ep] : endpoints) eps.push_back(id);
        Areq(delay, Subsystem::kZDO, "activeEpRsp", {{"srcaddr", 0u}, {"status", 0u}, {"nwkaddr", 0u}, {"activeeplist", eps}});
      } else if (name == "simpleDescReq") {
        auto it = endpoints.find(static_cast<std::uint8_t>(f.U("endpoint")));
        if (it == endpoints.end()) {
          Areq(delay, Subsystem::kZDO, "simpleDescRsp", {{"srcaddr", 0u}, {"status", 0x82u}, {"nwkaddr", 0u}});
        } else {
          const Endpoint& ep = it->second;
          Areq(delay, Subsystem::kZDO, "simpleDescRsp",
               {{"srcaddr", 0u}, {"status", 0u}, {"nwkaddr", 0u},
                {"len", static_cast<std::uint64_t>(8 + 2 * (ep.in.size() + ep.out.size()))}, {"endpoint", ep.id},
                {"profileid", ep.profile}, {"deviceid", ep.device_id}, {"deviceversion", 0u},
                {"inclusterlist", ep.in}, {"outclusterlist", ep.out}});
        }
      } else if (name == "nodeDescReq") {
        Areq(delay, Subsystem::kZDO, "nodeDescRsp",
             {{"srcaddr", 0u}, {"status", 0u}, {"nwkaddr", 0u}, {"logicaltype_cmplxdescavai_userdescavai", 0u},
              {"apsflags_freqband", 0x40u}, {"maccapflags", 0x8Fu}, {"manufacturercode", 0x0000u},
              {"maxbuffersize", 80u}, {"maxintransfersize", 160u}, {"servermask", 0x2C41u},
              {"maxouttransfersize", 160u}, {"descriptorcap", 0u}});
      }
      return;
    }
    Device* d = FindByNwk(name == "simpleDescReq" || name == "nodeDescReq" || name == "activeEpReq" ? interest : nwk);
    if (d == nullptr || d->info.silent) return;  // the request goes unanswered: the client times out
    const std::uint16_t src = d->info.nwk;
    if (name == "nodeDescReq") {
      const bool router = d->info.mains_powered;
      Areq(delay, Subsystem::kZDO, "nodeDescRsp",
           {{"srcaddr", src}, {"status", 0u}, {"nwkaddr", src},
            {"logicaltype_cmplxdescavai_userdescavai", router ? 1u : 2u}, {"apsflags_freqband", 0x40u},
            {"maccapflags", d->capabilities}, {"manufacturercode", 0x1234u}, {"maxbuffersize", 80u},
            {"maxintransfersize", 160u}, {"servermask", 0u}, {"maxouttransfersize", 160u}, {"descriptorcap", 0u}});
    } else if (name == "activeEpReq") {
      Areq(delay, Subsystem::kZDO, "activeEpRsp",
           {{"srcaddr", src}, {"status", 0u}, {"nwkaddr", src}, {"activeeplist", Bytes{d->ep.id}}});
    } else if (name == "simpleDescReq") {
      const Endpoint& ep = d->ep;
      Areq(delay, Subsystem::kZDO, "simpleDescRsp",
           {{"srcaddr", src}, {"status", 0u}, {"nwkaddr", src},
            {"len", static_cast<std::uint64_t>(8 + 2 * (ep.in.size() + ep.out.size()))}, {"endpoint", ep.id},
            {"profileid", ep.profile}, {"deviceid", ep.device_id}, {"deviceversion", 1u}, {"inclusterlist", ep.in},
            {"outclusterlist", ep.out}});
    } else if (name == "powerDescReq") {
      Areq(delay, Subsystem::kZDO, "powerDescRsp",
           {{"srcaddr", src}, {"status", 0u}, {"nwkaddr", src},
            {"currentpowermode_avaipowersrc", d->info.mains_powered ? 0x10u : 0x40u},
            {"currentpowersrc_currentpowersrclevel", d->info.mains_powered ? 0xC1u : 0xC4u}});
    } else if (name == "bindReq") {
      Areq(delay, Subsystem::kZDO, "bindRsp", {{"srcaddr", src}, {"status", 0u}});
    } else if (name == "unbindReq") {
      Areq(delay, Subsystem::kZDO, "unbindRsp", {{"srcaddr", src}, {"status", 0u}});
    } else if (name == "mgmtLeaveReq") {
      Areq(delay, Subsystem::kZDO, "mgmtLeaveRsp", {{"srcaddr", src}, {"status", 0u}});
      LeaveDevice(*d);
    } else if (name == "ieeeAddrReq") {
      Areq(delay, Subsystem::kZDO, "ieeeAddrRsp",
           {{"status", 0u}, {"ieeeaddr", d->info.ieee}, {"nwkaddr", src}, {"startindex", 0u}, {"numassocdev", 0u}});
    }
  }

  void LeaveDevice(Device& d) {
    if (!d.info.joined) return;
    d.info.joined = false;
    Areq(options.response_delay * 2, Subsystem::kZDO, "leaveInd",
         {{"srcaddr", d.info.nwk}, {"extaddr", d.info.ieee}, {"request", 0u}, {"removechildren", 0u}, {"rejoin", 0u}});
  }

  void HandleFrame(const Frame& frame) {
    ++frames_in;
    if (frame.type != znp::FrameType::kSreq && frame.type != znp::FrameType::kAreq) return;
    auto decoded = znp::Decode(frame);
    if (!decoded.ok()) {
      // Z-Stack answers an unknown command with an RPC error SRSP: [error 2, cmd0, cmd1].
      if (frame.type == znp::FrameType::kSreq) {
        Send({znp::FrameType::kSrsp, Subsystem::kRPC_ERROR, 0x00, {0x02, frame.cmd0(), frame.command}});
      }
      return;
    }
    const znp::Message& m = *decoded;
    const auto& f = m.fields;
    const std::string_view name = m.def->name;
    const Subsystem sub = frame.subsystem;
    const auto ok = [&] { Srsp(sub, name, {{"status", kStatusSuccess}}); };

    if (sub == Subsystem::kSYS) {
      if (name == "resetReq") {
        auto so = nv.find(kNvStartupOption);
        if (so != nv.end() && !so->second.empty() && (so->second[0] & 0x02)) {
          // STARTUP_OPTION "clear state": the network is forgotten on reset.
          for (auto id : {kNvNib, kNvActiveKeyInfo, kNvAlternKeyInfo, kNvHasConfigured}) nv.erase(id);
          for (auto& d : devices) d.info.joined = false;
        }
        device_state = 0;
        endpoints.clear();
        Areq(50ms, Subsystem::kSYS, "resetInd",
             {{"reason", 0u}, {"transportrev", 2u}, {"productid", 1u}, {"majorrel", 2u}, {"minorrel", 7u}, {"hwrev", 1u}});
      } else if (name == "ping") {
        Srsp(sub, name, {{"capabilities", 0x0659u}});
      } else if (name == "version") {
        Srsp(sub, name, {{"transportrev", 2u}, {"product", 2u}, {"majorrel", 2u}, {"minorrel", 7u}, {"maintrel", 1u},
                         {"revision", 20230507u}});
      } else if (name == "getExtAddr") {
        Srsp(sub, name, {{"extaddress", ieee}});
      } else if (name == "osalNvLength") {
        auto it = nv.find(static_cast<std::uint16_t>(f.U("id")));
        Srsp(sub, name, {{"length", it == nv.end() ? 0u : it->second.size()}});
      } else if (name == "osalNvReadExt" || name == "osalNvRead") {
        auto it = nv.find(static_cast<std::uint16_t>(f.U("id")));
        const std::size_t off = f.U("offset");
        if (it == nv.end() || off > it->second.size()) {
          Srsp(sub, name, {{"status", 0x0Au}, {"value", Bytes{}}});
        } else {
          const std::size_t n = std::min<std::size_t>(it->second.size() - off, 244);
          Srsp(sub, name, {{"status", 0u}, {"value", Bytes(it->second.begin() + static_cast<std::ptrdiff_t>(off),
                                                           it->second.begin() + static_cast<std::ptrdiff_t>(off + n))}});
        }
      } else if (name == "osalNvItemInit") {
        const auto id = static_cast<std::uint16_t>(f.U("id"));
        if (nv.count(id)) {
          ok();
        } else {
          Bytes item(f.U("len"), 0);
          const Bytes& init = f.Buf("initvalue");
          std::copy_n(init.begin(), std::min(init.size(), item.size()), item.begin());
          nv[id] = item;
          Srsp(sub, name, {{"status", kNvItemInitialized}});
        }
      } else if (name == "osalNvWriteExt" || name == "osalNvWrite") {
        auto it = nv.find(static_cast<std::uint16_t>(f.U("id")));
        const Bytes& v = f.Buf("value");
        const std::size_t off = f.U("offset");
        if (it == nv.end() || off + v.size() > it->second.size()) {
          Srsp(sub, name, {{"status", 0x0Au}});
        } else {
          std::copy(v.begin(), v.end(), it->second.begin() + static_cast<std::ptrdiff_t>(off));
          ok();
        }
      } else if (name == "osalNvDelete") {
        nv.erase(static_cast<std::uint16_t>(f.U("id")));
        ok();
      } else if (name == "setTxPower") {
        Srsp(sub, name, {{"txpower", f.U("level")}});
      } else if (m.def->has_response) {
        Srsp(sub, name, {});  // nvLength → 0 (no such extended item), others all-zero success
      }
      return;
    }
    if (sub == Subsystem::kUTIL) {
      if (name == "getDeviceInfo") {
        Srsp(sub, name, {{"status", 0u}, {"ieeeaddr", ieee}, {"shortaddr", 0u}, {"devicetype", 7u},
                         {"devicestate", device_state}, {"assocdeviceslist", std::vector<std::uint16_t>{}}});
      } else if (m.def->has_response) {
        ok();
      }
      return;
    }
    if (sub == Subsystem::kAPP_CNF) {
      if (name == "bdbStartCommissioning") {
        ok();
        if (f.U("mode") & 0x04) {  // formation
          FormNetwork();
          StartCoordinator();
          Areq(60ms, Subsystem::kAPP_CNF, "bdbComissioningNotifcation",
               {{"status", 0u}, {"commissioningMode", 4u}, {"remainingModes", 0u}});
        }
      } else if (name == "bdbSetChannel") {
        const auto mask = static_cast<std::uint32_t>(f.U("channel"));
        if (f.U("isPrimary") && mask != 0) {
          Bytes b(4);
          PutLE(b, 0, mask, 4);
          nv[kNvChanList] = b;
        }
        ok();
      } else if (m.def->has_response) {
        ok();
      }
      return;
    }
    if (sub == Subsystem::kAF) {
      if (name == "register") {
        const auto id = static_cast<std::uint8_t>(f.U("endpoint"));
        if (endpoints.count(id)) {
          Srsp(sub, name, {{"status", 0xB8u}});  // already registered
          return;
        }
        endpoints[id] = {id, static_cast<std::uint16_t>(f.U("appprofid")), static_cast<std::uint16_t>(f.U("appdeviceid")),
                         f.List16("appinclusterlist"), f.List16("appoutclusterlist")};
        ok();
      } else if (name == "dataRequest" || name == "dataRequestExt") {
        ok();
        const auto transid = f.U("transid");
        const auto src_ep = f.U("srcendpoint");
        const auto dst = static_cast<std::uint16_t>(f.U("dstaddr"));
        Device* d = name == "dataRequest" ? FindByNwk(dst) : nullptr;
        if (d == nullptr || d->info.silent) {
          Areq(100ms, Subsystem::kAF, "dataConfirm", {{"status", kMacNoAck}, {"endpoint", src_ep}, {"transid", transid}});
          return;
        }
        Areq(options.response_delay / 2, Subsystem::kAF, "dataConfirm",
             {{"status", 0u}, {"endpoint", src_ep}, {"transid", transid}});
        HandleZclToDevice(*d, static_cast<std::uint16_t>(f.U("clusterid")), f.Buf("data"));
      } else if (m.def->has_response) {
        ok();
      }
      return;
    }
    if (sub == Subsystem::kZDO) {
      if (name == "startupFromApp") {
        ok();
        StartCoordinator();
      } else if (name == "extNwkInfo") {
        Srsp(sub, name, {{"shortaddr", 0u}, {"devstate", device_state}, {"panid", PanId()}, {"parentaddr", 0xFFFEu},
                         {"extendedpanid", GetLE(ExtPanIdRaw(), 0, 8)}, {"parentextaddr", 0u}, {"channel", Channel()}});
      } else if (name == "extFindGroup") {
        const auto key = std::make_pair(static_cast<std::uint8_t>(f.U("endpoint")), static_cast<std::uint16_t>(f.U("groupid")));
        const bool found = std::find(groups.begin(), groups.end(), key) != groups.end();
        Srsp(sub, name, {{"status", found ? kStatusSuccess : kStatusFailure}, {"groupid", key.second}});
      } else if (name == "extAddGroup") {
        groups.emplace_back(static_cast<std::uint8_t>(f.U("endpoint")), static_cast<std::uint16_t>(f.U("groupid")));
        ok();
      } else if (m.def->type == znp::CommandType::kSreq && m.def->response.size() == 1 &&
                 m.def->response[0].name == "status" && m.def->id < 0x40) {
        HandleZdo(m);
      } else if (m.def->has_response) {
        ok();
      }
      return;
    }
    if (m.def->has_response) Srsp(sub, name, {});
  }

  // ---- transports ----
  Status OpenPty() {
    int master = -1, slave = -1;
    char name[256] = {};
    termios raw{};
    ::cfmakeraw(&raw);  // no echo: the sim must never read back its own frames before a client set raw mode
    if (::openpty(&master, &slave, name, &raw, nullptr) != 0) return ErrnoStatus("openpty", errno);
    ::close(slave);  // the client opens it by path; until then writes to the master just queue
    ::fcntl(master, F_SETFL, O_NONBLOCK);
    ::fcntl(master, F_SETFD, FD_CLOEXEC);
    std::error_code ec;
    std::filesystem::create_directories(pty_link.parent_path(), ec);
    const auto tmp = pty_link.string() + ".new";
    std::filesystem::remove(tmp, ec);
    std::filesystem::create_symlink(name, tmp, ec);
    if (!ec) std::filesystem::rename(tmp, pty_link, ec);  // atomic re-point, like udev does
    if (ec) {
      ::close(master);
      return InternalError(fmt::format("zsim: cannot point {} at {}: {}", pty_link.string(), name, ec.message()));
    }
    pty_master = master;
    pty_parser.Reset();
    return OkStatus();
  }

  Status OpenListener() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return ErrnoStatus("zsim socket", errno);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(tcp_port));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4) != 0) {
      const int err = errno;
      ::close(fd);
      return ErrnoStatus(fmt::format("zsim listen 127.0.0.1:{}", tcp_port), err);
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    tcp_port = ntohs(addr.sin_port);
    listen_fd = fd;
    return OkStatus();
  }

  void CloseFd(int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }

  void Run() {
    std::vector<std::byte> buf(4096);
    std::unique_lock lock(mu);
    while (!stopping) {
      // timers and periodic reports
      const auto now = Clock::now();
      while (!timers.empty() && timers.top().at <= now) {
        auto fn = timers.top().fn;
        timers.pop();
        fn();
      }
      for (auto& d : devices) {
        if (d.info.joined && !d.info.silent && now >= d.next_report) {
          d.next_report = now + options.report_interval;
          Drift(d);
          ReportAll(d);
        }
      }
      auto next = now + 100ms;
      if (!timers.empty()) next = std::min(next, timers.top().at);
      for (auto& d : devices) {
        if (d.info.joined && !d.info.silent) next = std::min(next, d.next_report);
      }
      std::vector<pollfd> fds = {{wake_fd, POLLIN, 0}};
      if (pty_master >= 0) fds.push_back({pty_master, POLLIN, 0});
      if (listen_fd >= 0) fds.push_back({listen_fd, POLLIN, 0});
      if (client_fd >= 0) fds.push_back({client_fd, POLLIN, 0});
      // ppoll's nanosecond timeout: a millisecond poll() rounds a wait under 1 ms down to 0 and spins
      // until the next report is due, taking a core from the process under test (see benchmarks.md).
      const auto wait = std::max(Clock::duration::zero(), next - Clock::now());
      const auto wait_s = std::chrono::duration_cast<std::chrono::seconds>(wait);
      const timespec timeout{static_cast<time_t>(wait_s.count()),
                             static_cast<long>(std::chrono::nanoseconds(wait - wait_s).count())};
      lock.unlock();
      ::ppoll(fds.data(), fds.size(), &timeout, nullptr);
      lock.lock();
      for (const auto& p : fds) {
        if (p.revents == 0) continue;
        if (p.fd == wake_fd) {
          std::uint64_t v;
          [[maybe_unused]] auto n = ::read(wake_fd, &v, sizeof v);
        } else if (p.fd == listen_fd && listen_fd >= 0) {
          const int c = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c >= 0) {
            int one = 1;
            ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            CloseFd(client_fd);
            client_fd = c;
            tcp_parser.Reset();
          }
        } else if ((p.fd == pty_master && pty_master >= 0) || (p.fd == client_fd && client_fd >= 0)) {
          const bool is_pty = p.fd == pty_master;
          const ssize_t n = ::read(p.fd, buf.data(), buf.size());
          if (n > 0) {
            auto& parser = is_pty ? pty_parser : tcp_parser;
            parser.Feed(std::span<const std::byte>(buf.data(), static_cast<std::size_t>(n)),
                        [this](Frame&& fr) { HandleFrame(fr); });
          } else if (!is_pty && (n == 0 || (errno != EAGAIN && errno != EINTR))) {
            CloseFd(client_fd);
          } else if (is_pty && n <= 0 && (errno == EIO || (p.revents & POLLHUP))) {
            // No client has the slave open (it closed to reconnect): avoid a busy loop on POLLHUP.
            lock.unlock();
            std::this_thread::sleep_for(20ms);
            lock.lock();
          }
        }
      }
    }
  }
};

ZnpSimulator::ZnpSimulator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

StatusOr<std::unique_ptr<ZnpSimulator>> ZnpSimulator::Create(SimulatorOptions options) {
  auto impl = std::make_unique<Impl>();
  for (std::size_t i = 0; i < options.devices.size(); ++i) {
    const auto& type = options.devices[i];
    if (std::find_if(std::begin(kDeviceTypes), std::end(kDeviceTypes), [&](const char* t) { return type == t; }) ==
        std::end(kDeviceTypes)) {
      return InvalidArgumentError(fmt::format(
          "zsim: unknown device type '{}'; expected climate_sensor, smart_plug, color_bulb, motion_sensor or door_contact", type));
    }
    impl->devices.push_back(MakeDevice(type, static_cast<int>(i)));
  }
  impl->rng.seed(options.seed);
  impl->options = std::move(options);
  impl->nv[kNvNwkKey] = Bytes(21, 0);  // length 21 tells clients the NV structs are packed
  impl->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl->wake_fd < 0) return ErrnoStatus("zsim eventfd", errno);
  auto sim = std::unique_ptr<ZnpSimulator>(new ZnpSimulator(std::move(impl)));
  sim->impl_->worker = std::thread([s = sim->impl_.get()] { s->Run(); });
  return sim;
}

ZnpSimulator::~ZnpSimulator() {
  Stop();
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
}

void ZnpSimulator::Stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->Wake();
  if (impl_->worker.joinable()) impl_->worker.join();
  std::lock_guard lock(impl_->mu);
  impl_->CloseFd(impl_->pty_master);
  impl_->CloseFd(impl_->client_fd);
  impl_->CloseFd(impl_->listen_fd);
}

Status ZnpSimulator::ServePty(const std::filesystem::path& link) {
  std::lock_guard lock(impl_->mu);
  impl_->pty_link = link;
  RETURN_IF_ERROR(impl_->OpenPty());
  impl_->Wake();
  return OkStatus();
}

StatusOr<int> ZnpSimulator::ServeTcp(int port) {
  std::lock_guard lock(impl_->mu);
  impl_->tcp_port = port;
  RETURN_IF_ERROR(impl_->OpenListener());
  impl_->Wake();
  return impl_->tcp_port;
}

void ZnpSimulator::VanishPort() {
  std::lock_guard lock(impl_->mu);
  impl_->vanished = true;
  // The link goes with the device, as udev removes /dev/serial/by-id entries on unplug. Left behind,
  // it would name a /dev/pts number that another process's next pty may take.
  if (!impl_->pty_link.empty()) {
    std::error_code ec;
    std::filesystem::remove(impl_->pty_link, ec);
  }
  impl_->CloseFd(impl_->pty_master);
  impl_->CloseFd(impl_->client_fd);
  impl_->CloseFd(impl_->listen_fd);
  impl_->Wake();
}

Status ZnpSimulator::RestorePort() {
  std::lock_guard lock(impl_->mu);
  if (!impl_->vanished) return OkStatus();
  impl_->vanished = false;
  if (!impl_->pty_link.empty()) RETURN_IF_ERROR(impl_->OpenPty());
  if (impl_->tcp_port != 0) RETURN_IF_ERROR(impl_->OpenListener());
  impl_->Wake();
  return OkStatus();
}

void ZnpSimulator::SetFaults(const FaultInjection& faults) {
  std::lock_guard lock(impl_->mu);
  impl_->faults = faults;
}

Status ZnpSimulator::SetDeviceSilent(std::uint64_t ieee, bool silent) {
  std::lock_guard lock(impl_->mu);
  Device* d = impl_->FindByIeee(ieee);
  if (d == nullptr) return NotFoundError(fmt::format("zsim: no device 0x{:016x}", ieee));
  d->info.silent = silent;
  return OkStatus();
}

Status ZnpSimulator::TriggerReport(std::uint64_t ieee) {
  std::lock_guard lock(impl_->mu);
  Device* d = impl_->FindByIeee(ieee);
  if (d == nullptr) return NotFoundError(fmt::format("zsim: no device 0x{:016x}", ieee));
  impl_->Drift(*d);
  impl_->ReportAll(*d);
  impl_->Wake();
  return OkStatus();
}

Status ZnpSimulator::Leave(std::uint64_t ieee) {
  std::lock_guard lock(impl_->mu);
  Device* d = impl_->FindByIeee(ieee);
  if (d == nullptr) return NotFoundError(fmt::format("zsim: no device 0x{:016x}", ieee));
  impl_->LeaveDevice(*d);
  impl_->Wake();
  return OkStatus();
}

Status ZnpSimulator::ChangeNetworkAddress(std::uint64_t ieee, std::uint16_t nwk) {
  std::lock_guard lock(impl_->mu);
  Device* d = impl_->FindByIeee(ieee);
  if (d == nullptr) return NotFoundError(fmt::format("zsim: no device 0x{:016x}", ieee));
  if (impl_->FindByNwk(nwk) != nullptr) return AlreadyExistsError(fmt::format("zsim: address 0x{:04x} is taken", nwk));
  d->info.nwk = nwk;
  return OkStatus();
}

std::vector<SimDeviceInfo> ZnpSimulator::Devices() const {
  std::lock_guard lock(impl_->mu);
  std::vector<SimDeviceInfo> out;
  for (const auto& d : impl_->devices) out.push_back(d.info);
  return out;
}

nlohmann::json ZnpSimulator::DeviceState(std::uint64_t ieee) const {
  std::lock_guard lock(impl_->mu);
  nlohmann::json out = nlohmann::json::object();
  Device* d = impl_->FindByIeee(ieee);
  if (d == nullptr) return out;
  std::map<std::uint16_t, std::vector<zcl::AttributeRecord>> per_cluster;
  for (const auto& [key, value] : d->attrs) per_cluster[key.first].push_back({key.second, value});
  for (const auto& [cluster, recs] : per_cluster) out.update(zcl::AttributesToState(cluster, recs));
  return out;
}

bool ZnpSimulator::permit_join() const {
  std::lock_guard lock(impl_->mu);
  return Clock::now() < impl_->permit_until;
}

std::uint64_t ZnpSimulator::coordinator_ieee() const { return impl_->ieee; }

std::uint64_t ZnpSimulator::frames_in() const {
  std::lock_guard lock(impl_->mu);
  return impl_->frames_in;
}

std::uint64_t ZnpSimulator::frames_out() const {
  std::lock_guard lock(impl_->mu);
  return impl_->frames_out;
}

std::filesystem::path ZnpSimulator::pty_link() const {
  std::lock_guard lock(impl_->mu);
  return impl_->pty_link;
}

}  // namespace edged::zigbee::sim
