// The bridge half of the zigbee2mqtt side-by-side benchmark: N simulated devices (the in-memory
// network stand-in of tests/bridge, not the coordinator) each report once per period through the
// Bridge to a real mosquitto; an independent subscriber measures report → MQTT delivery latency.
// Prints p50/p99 latency, the process's resident memory growth, and the time from Start() to
// bridge/state online. Not a CTest test. Usage: bridge_bench [devices=200] [seconds=20]
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <prometheus/registry.h>

#include "mqtt/bridge/bridge.h"
#include "mqtt/client.h"
#include "tests/bridge/in_memory_network.h"
#include "tests/support/mqtt_test_support.h"

namespace {

using Clock = std::chrono::steady_clock;

long RssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

double NowUs() {
  return std::chrono::duration<double, std::micro>(Clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace edged;
  const int devices = argc > 1 ? std::stoi(argv[1]) : 200;
  const int seconds = argc > 2 ? std::stoi(argv[2]) : 20;

  auto broker = test::MosquittoBroker::Start();
  if (!broker.ok()) {
    std::fprintf(stderr, "mosquitto: %s\n", broker.status().ToString().c_str());
    return 1;
  }
  // The latency probe: edged's own client on its own connection, timestamps on arrival.
  std::mutex mu;
  std::vector<double> latencies_us;
  std::atomic<double> online_at{0};
  // Its own will topic: the default one is bridge/state, which would fake the bridge's start-up.
  auto probe = mqtt::Client::Create((*broker)->ClientConfig("bench_probe"),
                                    mqtt::Will{"bench/probe/state", "offline", "online"}, nullptr);
  if (!probe.ok()) return 1;
  // Device states and bridge/state only: bridge/devices copies would inflate this process's memory.
  auto on_message = [&](const mqtt::Message& m) {
    const double now = NowUs();
    if (m.topic == "zigbee2mqtt/bridge/state" && m.payload.find("online") != std::string::npos) {
      double expected = 0;
      online_at.compare_exchange_strong(expected, now);
      return;
    }
    const auto pos = m.payload.find("\"bench_sent_us\":");
    if (pos == std::string::npos) return;
    const double sent = std::stod(m.payload.substr(pos + 16));
    std::lock_guard lock(mu);
    latencies_us.push_back(now - sent);
  };
  (*probe)->Subscribe("zigbee2mqtt/+", 0, on_message);
  (*probe)->Subscribe("zigbee2mqtt/bridge/state", 0, on_message);
  if (!(*probe)->Start().ok()) return 1;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));

  const long rss_before = RssKiB();
  test::InMemoryNetwork net;
  prometheus::Registry registry;
  auto client = mqtt::Client::Create((*broker)->ClientConfig("bench_edged"), &registry);
  if (!client.ok()) return 1;
  mqtt::bridge::BridgeOptions options;
  options.zigbee.retain_state = false;  // zigbee2mqtt's default
  auto bridge = mqtt::bridge::Bridge::Create(options, **client, net, &registry);
  if (!bridge.ok()) return 1;
  const double start_us = NowUs();
  if (!(*bridge)->Start().ok() || !(*client)->Start().ok()) return 1;
  while (online_at.load() == 0 && NowUs() - start_us < 10e6) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const double startup_ms = (online_at.load() - start_us) / 1000;

  std::vector<std::string> ieees;
  for (int i = 0; i < devices; ++i) {
    char ieee[32];
    std::snprintf(ieee, sizeof ieee, "0x00124b00%08x", i + 1);
    ieees.push_back(ieee);
    net.Join("climate_sensor", ieee);
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  {
    std::lock_guard lock(mu);
    latencies_us.clear();
  }
  const long rss_joined = RssKiB();

  // Each device reports once per second, staggered across the second.
  const auto period = std::chrono::microseconds(1000000 / devices);
  auto next = Clock::now();
  const auto end = Clock::now() + std::chrono::seconds(seconds);
  long sent = 0;
  for (int i = 0; Clock::now() < end; i = (i + 1) % devices) {
    next += period;
    std::this_thread::sleep_until(next);
    net.Report(ieees[i], {{"temperature", 20 + (sent % 100) / 10.0}, {"bench_sent_us", NowUs()}}, 100);
    ++sent;
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const long rss_after = RssKiB();
  (*bridge)->Stop();
  (*client)->Stop();
  (*probe)->Stop();

  std::vector<double> l;
  {
    std::lock_guard lock(mu);
    l = latencies_us;
  }
  std::sort(l.begin(), l.end());
  auto pct = [&](double p) { return l.empty() ? 0 : l[std::min(l.size() - 1, static_cast<size_t>(p * l.size()))]; };
  std::printf("devices %d, reports sent %ld, received %zu\n", devices, sent, l.size());
  std::printf("report->MQTT latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", pct(0.50) / 1000, pct(0.99) / 1000,
              l.empty() ? 0 : l.back() / 1000);
  std::printf("bridge + client resident memory growth %.1f MiB (process RSS %.1f MiB)\n",
              (rss_after - rss_before) / 1024.0, rss_after / 1024.0);
  std::printf("after %d joins: growth %.1f MiB\n", devices, (rss_joined - rss_before) / 1024.0);
  std::printf("Start() to bridge/state online: %.1f ms\n", startup_ms);
  return 0;
}
