// Time from a device report written on the pty (the simulator's TriggerReport) to the decoded state
// inside edged (ZigbeeNetwork's device_message event): p50/p99 over N reports.
// Usage: zigbee_latency [reports, default 2000]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unistd.h>

#include "drivers/zigbee/device_db.h"
#include "drivers/zigbee/network.h"
#include "drivers/zigbee/sim/simulator.h"

using namespace edged::zigbee;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  const int reports = argc > 1 ? std::atoi(argv[1]) : 2000;
  const auto dir = std::filesystem::temp_directory_path() / ("edged-zigbee-latency-" + std::to_string(::getpid()));
  NetworkOptions o;
  o.config.serial.port = "simulator";
  o.config.simulator.devices = {"climate_sensor"};
  o.simulator_report_interval = 3600s;  // only triggered reports
  o.simulator_response_delay = 0ms;     // measure edged, not the simulated air time
  o.state_dir = dir;
  auto net = ZigbeeNetwork::Create(o);
  if (!net.ok()) {
    std::fprintf(stderr, "%s\n", net.status().ToString().c_str());
    return 1;
  }
  std::mutex mu;
  std::condition_variable cv;
  int seen = 0, interviewed = 0;
  NetworkEvents ev;
  ev.device_interview = [&](const DeviceInfo&, std::string_view s) {
    std::lock_guard l(mu);
    if (s == "successful") ++interviewed;
    cv.notify_all();
  };
  ev.device_message = [&](const std::string&, const nlohmann::json& state, std::optional<int>) {
    std::lock_guard l(mu);
    if (state.contains("temperature")) ++seen;
    cv.notify_all();
  };
  (*net)->SetEvents(ev);
  if (!(*net)->Start().ok()) return 1;
  for (int i = 0; i < 300 && !(*net)->coordinator_up(); ++i) std::this_thread::sleep_for(50ms);
  if (!(*net)->PermitJoin(60s).ok()) return 1;
  {
    std::unique_lock l(mu);
    cv.wait_for(l, 30s, [&] { return interviewed == 1; });
  }
  std::this_thread::sleep_for(1s);  // let configure-time reads settle
  const auto ieee = (*net)->simulator()->Devices()[0].ieee;
  std::vector<double> us;
  for (int i = 0; i < reports; ++i) {
    int before;
    {
      std::lock_guard l(mu);
      before = seen;
    }
    const auto t0 = std::chrono::steady_clock::now();
    (void)(*net)->simulator()->TriggerReport(ieee);
    std::unique_lock l(mu);
    if (!cv.wait_for(l, 2s, [&] { return seen > before; })) continue;
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  (*net)->Stop();
  std::filesystem::remove_all(dir);
  std::sort(us.begin(), us.end());
  if (us.empty()) return 1;
  std::printf("reports %zu/%d  p50 %.0f us  p99 %.0f us  max %.0f us\n", us.size(), reports, us[us.size() / 2],
              us[std::min(us.size() - 1, us.size() * 99 / 100)], us.back());
  return 0;
}
