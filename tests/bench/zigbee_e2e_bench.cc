// zigbee2mqtt and edged side by side, whole process against whole process: each runs on its own
// edged-zsim (ZNP over TCP, as a network coordinator) with N devices reporting every second, and its
// own mosquitto. One run measures both, one after the other, so they share the machine's state:
//   - start-up: process launch → `<base>/bridge/state` {"state":"online"}, and → the first
//     `bridge/request/permit_join` answered ok (the coordinator is up, the network formed);
//   - interview: permit_join request → every device's `device_interview` successful event;
//   - report → MQTT latency: the simulator logs when each temperature report's bytes leave it
//     (--stamp-file: temperatures count up, so each report is unique), an independent MQTT client
//     stamps the state message that first carries that temperature; p50/p99/max over the window;
//   - resident memory of the process (VmRSS sampled every second during the window, peak VmHWM).
// Not a CTest test. Usage:
//   zigbee_e2e_bench [--devices 200] [--seconds 60] [--peers edged,zigbee2mqtt]
// zigbee2mqtt is tests/peers-z2m (`npm ci` there first); see docs/benchmarks.md "Zigbee bridge".
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "mqtt/client.h"
#include "tests/support/mqtt_test_support.h"

namespace {

using namespace std::chrono_literals;
using edged::test::MosquittoBroker;
using edged::test::Subprocess;
using edged::test::TempDir;
using Clock = std::chrono::steady_clock;

std::int64_t RealtimeNs() {
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<std::int64_t>(now.tv_sec) * 1'000'000'000 + now.tv_nsec;
}

// A "VmRSS:"-style field of /proc/<pid>/status in KiB, or -1.
long StatusKiB(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(field, 0) == 0) return std::stol(line.substr(field.size()));
  }
  return -1;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(std::clamp(p * static_cast<double>(v.size() - 1), 0.0,
                                                     static_cast<double>(v.size() - 1)));
  return v[i];
}

struct Result {
  std::string peer;
  bool ok = false;
  std::string error;
  double startup_s = NAN;
  double ready_s = NAN;
  double interview_s = NAN;
  std::size_t interviewed = 0;
  std::vector<double> latencies_ms;
  std::size_t sent_in_window = 0;
  long rss_mean_kib = -1, rss_max_kib = -1, hwm_kib = -1;
};

// What the independent subscriber saw: bridge state, interviews, and the first arrival of every
// (device, temperature) pair.
class Observer {
 public:
  void OnMessage(const edged::mqtt::Message& m) {
    const std::int64_t now = RealtimeNs();
    if (m.topic == "zigbee2mqtt/bridge/state") {
      if (m.payload.find("\"online\"") != std::string::npos) online_ns_.store(now);
      return;
    }
    const auto j = nlohmann::json::parse(m.payload, nullptr, false);
    if (!j.is_object()) return;
    if (m.topic == "zigbee2mqtt/bridge/response/permit_join") {
      if (j.value("status", "") == "ok") permit_ok_ns_.store(now);
      return;
    }
    if (m.topic == "zigbee2mqtt/bridge/event") {
      if (j.value("type", "") == "device_interview" && j.contains("data") &&
          j["data"].value("status", "") == "successful") {
        std::lock_guard lock(mu_);
        interviewed_.insert(j["data"].value("ieee_address", ""));
      }
      return;
    }
    const auto t = j.find("temperature");
    if (t == j.end() || !t->is_number()) return;
    const std::string device = m.topic.substr(std::string_view("zigbee2mqtt/").size());
    const auto centi = static_cast<std::int64_t>(std::llround(t->get<double>() * 100));
    std::lock_guard lock(mu_);
    arrivals_.try_emplace({device, centi}, now);
  }

  std::int64_t online_ns() const { return online_ns_.load(); }
  std::int64_t permit_ok_ns() const { return permit_ok_ns_.load(); }
  std::size_t interviewed() const {
    std::lock_guard lock(mu_);
    return interviewed_.size();
  }
  std::map<std::pair<std::string, std::int64_t>, std::int64_t> arrivals() const {
    std::lock_guard lock(mu_);
    return arrivals_;
  }

 private:
  std::atomic<std::int64_t> online_ns_{0};
  std::atomic<std::int64_t> permit_ok_ns_{0};
  mutable std::mutex mu_;
  std::set<std::string> interviewed_;
  std::map<std::pair<std::string, std::int64_t>, std::int64_t> arrivals_;
};

struct Options {
  int devices = 200;
  int seconds = 60;
  int interview_timeout_s = 300;
  std::string build_dir;
  std::string repo_dir;
  std::string samples_prefix;  // when set: <prefix><peer>.txt gets "sent_ns latency_ms device" per report
};

std::vector<std::string> PeerCommand(const std::string& peer, const Options& o, const TempDir& dir,
                                     const MosquittoBroker& broker, int zsim_port) {
  const std::string mqtt_url = broker.url();
  if (peer == "edged") {
    std::ofstream cfg(dir.path() / "edged.yaml");
    cfg << "state_dir: " << (dir.path() / "state").string() << "\n"
        << "mqtt:\n  server: " << mqtt_url << "\n  base_topic: zigbee2mqtt\n"
        << "http:\n  address: 127.0.0.1\n  port: " << edged::test::FreeTcpPort() << "\n"
        << "logging:\n  level: info\n"
        << "zigbee:\n  enabled: true\n  permit_join: false\n"
        << "  serial:\n    port: tcp://127.0.0.1:" << zsim_port << "\n"
        << "storage:\n  enabled: false\nlabels:\n  enabled: false\n";
    return {o.build_dir + "/edge/edged", "--config", (dir.path() / "edged.yaml").string()};
  }
  // zigbee2mqtt, configured as close to edged's defaults as it allows (HomeAssistant discovery and
  // availability on, console log at info, no frontend).
  std::filesystem::create_directories(dir.path() / "data");
  std::ofstream cfg(dir.path() / "data" / "configuration.yaml");
  cfg << "version: 4\nhomeassistant: {enabled: true}\n"
      << "mqtt: {base_topic: zigbee2mqtt, server: \"" << mqtt_url << "\"}\n"
      << "serial: {port: \"tcp://127.0.0.1:" << zsim_port << "\", adapter: zstack}\n"
      << "advanced:\n  network_key: [1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10, 12, 13]\n"
      << "  pan_id: 6754\n  ext_pan_id: [221, 221, 221, 221, 221, 221, 221, 221]\n  channel: 11\n"
      << "  log_output: [console]\n  log_level: info\n"
      << "frontend: {enabled: false}\navailability: {enabled: true}\n";
  // From outside any git checkout: zigbee2mqtt's index.js compares `git rev-parse HEAD` of the
  // current directory with its build hash and tries to rebuild when they differ.
  return {"/bin/sh", "-c",
          "cd '" + dir.path().string() + "' && ZIGBEE2MQTT_DATA='" + (dir.path() / "data").string() +
              "' exec node '" + o.repo_dir + "/tests/peers-z2m/node_modules/zigbee2mqtt/index.js'"};
}

Result RunPeer(const std::string& peer, const Options& o) {
  Result r;
  r.peer = peer;
  TempDir dir("edged-e2e-" + peer);
  auto broker = MosquittoBroker::Start();
  if (!broker.ok()) {
    r.error = broker.status().ToString();
    return r;
  }
  const int zsim_port = edged::test::FreeTcpPort();
  const auto stamps = dir.path() / "stamps.txt";
  auto zsim = Subprocess::Start({o.build_dir + "/drivers/zigbee/edged-zsim", "--tcp", std::to_string(zsim_port),
                                 "--count", std::to_string(o.devices), "--report-interval", "1",
                                 "--stamp-file", stamps.string()},
                                dir.path() / "zsim.log");
  if (!zsim.ok()) {
    r.error = zsim.status().ToString();
    return r;
  }
  std::this_thread::sleep_for(500ms);

  Observer observer;
  auto probe = edged::mqtt::Client::Create((*broker)->ClientConfig("e2e_probe"),
                                           edged::mqtt::Will{"bench/probe/state", "offline", "online"}, nullptr);
  if (!probe.ok()) {
    r.error = probe.status().ToString();
    return r;
  }
  const auto on_message = [&observer](const edged::mqtt::Message& m) { observer.OnMessage(m); };
  (*probe)->Subscribe("zigbee2mqtt/+", 0, on_message);
  (*probe)->Subscribe("zigbee2mqtt/bridge/state", 0, on_message);
  (*probe)->Subscribe("zigbee2mqtt/bridge/event", 0, on_message);
  (*probe)->Subscribe("zigbee2mqtt/bridge/response/permit_join", 0, on_message);
  if (auto st = (*probe)->Start(); !st.ok()) {
    r.error = st.ToString();
    return r;
  }
  for (int i = 0; i < 50 && !(*probe)->connected(); ++i) std::this_thread::sleep_for(100ms);

  const std::int64_t launch_ns = RealtimeNs();
  auto process = Subprocess::Start(PeerCommand(peer, o, dir, **broker, zsim_port), dir.path() / "peer.log");
  if (!process.ok()) {
    r.error = process.status().ToString();
    return r;
  }
  const pid_t pid = (*process)->pid();
  for (auto until = Clock::now() + 60s; observer.online_ns() == 0 && Clock::now() < until;) {
    std::this_thread::sleep_for(10ms);
  }
  if (observer.online_ns() == 0) {
    r.error = "no bridge/state online within 60 s; see its log";
    return r;
  }
  r.startup_s = static_cast<double>(observer.online_ns() - launch_ns) / 1e9;
  // Ready: the first permit_join that succeeds (the coordinator is up and the network formed). edged
  // says online as soon as it has the broker; zigbee2mqtt only after its adapter started.
  for (auto until = Clock::now() + 60s; observer.permit_ok_ns() == 0 && Clock::now() < until;) {
    (*probe)->Publish("zigbee2mqtt/bridge/request/permit_join", R"({"time":254})");
    for (int i = 0; i < 20 && observer.permit_ok_ns() == 0; ++i) std::this_thread::sleep_for(10ms);
  }
  if (observer.permit_ok_ns() == 0) {
    r.error = "permit_join never succeeded within 60 s; see its log";
    return r;
  }
  r.ready_s = static_cast<double>(observer.permit_ok_ns() - launch_ns) / 1e9;
  const auto permit = Clock::now();
  const auto permit_again = permit + 200s;  // both cap a permit at 254 s
  bool permitted_again = false;
  int ticks = 0;
  while (observer.interviewed() < static_cast<std::size_t>(o.devices) &&
         Clock::now() < permit + std::chrono::seconds(o.interview_timeout_s)) {
    if (!permitted_again && Clock::now() > permit_again) {
      (*probe)->Publish("zigbee2mqtt/bridge/request/permit_join", R"({"time":254})");
      permitted_again = true;
    }
    std::this_thread::sleep_for(100ms);
    if (++ticks % 100 == 0) std::fprintf(stderr, "%s: %zu devices interviewed\n", peer.c_str(), observer.interviewed());
  }
  r.interviewed = observer.interviewed();
  r.interview_s = std::chrono::duration<double>(Clock::now() - permit).count();
  std::fprintf(stderr, "%s: online after %.2f s, %zu/%d devices interviewed after %.1f s\n", peer.c_str(),
               r.startup_s, r.interviewed, o.devices, r.interview_s);

  // The window: everything is joined and reporting every second.
  std::this_thread::sleep_for(5s);
  const std::int64_t window_start = RealtimeNs();
  long rss_sum = 0, rss_n = 0;
  for (int s = 0; s < o.seconds; ++s) {
    std::this_thread::sleep_for(1s);
    const long rss = StatusKiB(pid, "VmRSS:");
    if (rss > 0) {
      rss_sum += rss;
      ++rss_n;
      r.rss_max_kib = std::max(r.rss_max_kib, rss);
    }
  }
  const std::int64_t window_end = RealtimeNs();
  r.hwm_kib = StatusKiB(pid, "VmHWM:");
  r.rss_mean_kib = rss_n ? rss_sum / rss_n : -1;
  std::this_thread::sleep_for(3s);  // late arrivals of reports sent inside the window
  (*process)->Signal(SIGTERM);
  (void)(*process)->Wait(10s);
  (*zsim)->Signal(SIGTERM);
  (void)(*zsim)->Wait(5s);
  (*probe)->Stop();

  const auto arrivals = observer.arrivals();
  std::ifstream in(stamps);
  std::ofstream samples;
  if (!o.samples_prefix.empty()) samples.open(o.samples_prefix + peer + ".txt");
  std::size_t lost = 0;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string ieee;
    std::int64_t centi = 0, sent = 0;
    if (!(fields >> ieee >> centi >> sent) || sent < window_start || sent > window_end) continue;
    ++r.sent_in_window;
    const auto it = arrivals.find({ieee, centi});
    if (it == arrivals.end()) {
      ++lost;
      continue;
    }
    r.latencies_ms.push_back(static_cast<double>(it->second - sent) / 1e6);
    if (samples) samples << sent << ' ' << r.latencies_ms.back() << ' ' << ieee << '\n';
  }
  r.ok = r.sent_in_window > 0;
  if (!r.ok) r.error = "no temperature report was sent in the window";
  std::fprintf(stderr, "%s: %zu temperature reports sent in the window, %zu never arrived\n", peer.c_str(),
               r.sent_in_window, lost);
  return r;
}

std::string Ms(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, v < 10 ? "%.2f ms" : "%.0f ms", v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"zigbee2mqtt and edged side by side on edged-zsim (see docs/benchmarks.md)"};
  Options o;
  std::string peers = "edged,zigbee2mqtt";
  app.add_option("--devices", o.devices, "simulated devices, each reporting every second");
  app.add_option("--seconds", o.seconds, "length of the measured window");
  app.add_option("--interview-timeout", o.interview_timeout_s, "seconds to wait for every interview");
  app.add_option("--peers", peers, "comma-separated: edged, zigbee2mqtt");
  app.add_option("--samples", o.samples_prefix, "write each report's latency to <PREFIX><peer>.txt");
  o.build_dir = EDGED_BUILD_DIR;
  o.repo_dir = EDGED_SOURCE_DIR;
  CLI11_PARSE(app, argc, argv);

  std::vector<Result> results;
  std::stringstream list(peers);
  for (std::string peer; std::getline(list, peer, ',');) {
    if (peer != "edged" && peer != "zigbee2mqtt") {
      std::fprintf(stderr, "unknown peer '%s': use edged or zigbee2mqtt\n", peer.c_str());
      return 2;
    }
    results.push_back(RunPeer(peer, o));
    if (!results.back().ok) std::fprintf(stderr, "%s: %s\n", peer.c_str(), results.back().error.c_str());
  }

  std::printf("\n%d devices reporting every second, %d s window\n\n| |", o.devices, o.seconds);
  for (const auto& r : results) std::printf(" %s |", r.peer.c_str());
  std::printf("\n|---|");
  for (std::size_t i = 0; i < results.size(); ++i) std::printf("---|");
  const auto row = [&](const char* name, auto cell) {
    std::printf("\n| %s |", name);
    for (const auto& r : results) std::printf(" %s |", r.ok ? cell(r).c_str() : "failed");
  };
  row("start-up to bridge/state online", [](const Result& r) { return Ms(r.startup_s * 1000); });
  row("start-up to the first successful permit_join", [](const Result& r) { return Ms(r.ready_s * 1000); });
  row("all devices interviewed after permit_join", [&](const Result& r) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%zu/%d in %.1f s", r.interviewed, o.devices, r.interview_s);
    return std::string(buf);
  });
  row("report → MQTT p50", [](const Result& r) { return Ms(Percentile(r.latencies_ms, 0.50)); });
  row("report → MQTT p99", [](const Result& r) { return Ms(Percentile(r.latencies_ms, 0.99)); });
  row("report → MQTT max", [](const Result& r) { return Ms(Percentile(r.latencies_ms, 1.0)); });
  row("reports delivered in the window", [](const Result& r) {
    return std::to_string(r.latencies_ms.size()) + "/" + std::to_string(r.sent_in_window);
  });
  row("resident memory, mean / max in the window", [](const Result& r) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f / %.1f MiB", r.rss_mean_kib / 1024.0, r.rss_max_kib / 1024.0);
    return std::string(buf);
  });
  row("peak resident memory (VmHWM)", [](const Result& r) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", r.hwm_kib / 1024.0);
    return std::string(buf);
  });
  std::printf("\n");
  return std::all_of(results.begin(), results.end(), [](const Result& r) { return r.ok; }) ? 0 : 1;
}
