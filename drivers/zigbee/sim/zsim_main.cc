// edged-zsim: a simulated Z-Stack coordinator with simulated devices, for the demo, k3d and CI.
//   edged-zsim --pty /run/edged/zsim.tty --tcp 6638 --devices climate_sensor,smart_plug --report-interval 10
// edged connects to the pty (zigbee.serial.port: /run/edged/zsim.tty) or to tcp://127.0.0.1:6638.
// Benchmarks: --count 200 repeats the device list up to 200 devices; --stamp-file PATH writes a line
// "<ieee> <temperature in 0.01 °C> <CLOCK_REALTIME ns>" for every temperature report as it is sent.
#include <csignal>
#include <cstdio>
#include <ctime>
#include <memory>
#include <sstream>

#include <CLI/CLI.hpp>

#include "drivers/zigbee/sim/simulator.h"

int main(int argc, char** argv) {
  CLI::App app{"edged-zsim: simulated Z-Stack ZNP coordinator with simulated Zigbee devices"};
  std::string pty;
  int tcp = -1;
  std::string devices = "climate_sensor,smart_plug,color_bulb,motion_sensor,door_contact";
  double report_interval = 10;
  double garbage = 0, drop = 0;
  std::size_t count = 0;
  std::string stamp_file;
  app.add_option("--pty", pty, "serve a pseudo-terminal behind this symlink path");
  app.add_option("--tcp", tcp, "serve ZNP on 127.0.0.1:PORT (0 = any free port)");
  app.add_option("--devices", devices, "comma-separated device types");
  app.add_option("--count", count, "repeat the device list until there are this many devices");
  app.add_option("--report-interval", report_interval, "seconds between reports of each device");
  app.add_option("--stamp-file", stamp_file,
                 "benchmarks: temperatures count up per report, and each send is logged here");
  app.add_option("--fault-garbage", garbage, "probability of noise bytes before a frame");
  app.add_option("--fault-drop-srsp", drop, "probability that an SRSP is dropped");
  CLI11_PARSE(app, argc, argv);
  if (pty.empty() && tcp < 0) {
    std::fprintf(stderr, "edged-zsim: give --pty PATH and/or --tcp PORT\n");
    return 2;
  }
  edged::zigbee::sim::SimulatorOptions options;
  options.devices.clear();
  std::stringstream ss(devices);
  for (std::string t; std::getline(ss, t, ',');) {
    if (!t.empty()) options.devices.push_back(t);
  }
  if (options.devices.empty()) {
    std::fprintf(stderr, "edged-zsim: --devices is empty; give at least one of climate_sensor, smart_plug, "
                         "color_bulb, motion_sensor, door_contact\n");
    return 2;
  }
  for (std::size_t i = 0; options.devices.size() < count; ++i) options.devices.push_back(options.devices[i]);
  options.report_interval = std::chrono::milliseconds(static_cast<long>(report_interval * 1000));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> stamps(nullptr, &std::fclose);
  if (!stamp_file.empty()) {
    stamps.reset(std::fopen(stamp_file.c_str(), "w"));
    if (!stamps) {
      std::perror(("edged-zsim: cannot write --stamp-file " + stamp_file).c_str());
      return 1;
    }
    options.temperature_report_sent = [file = stamps.get()](std::uint64_t ieee, std::int64_t centi) {
      timespec now{};
      clock_gettime(CLOCK_REALTIME, &now);
      std::fprintf(file, "0x%016llx %lld %lld%09ld\n", static_cast<unsigned long long>(ieee),
                   static_cast<long long>(centi), static_cast<long long>(now.tv_sec), now.tv_nsec);
    };
  }
  auto sim = edged::zigbee::sim::ZnpSimulator::Create(options);
  if (!sim.ok()) {
    std::fprintf(stderr, "edged-zsim: %s\n", sim.status().ToString().c_str());
    return 1;
  }
  (*sim)->SetFaults({drop, std::chrono::milliseconds(0), garbage});
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  if (!pty.empty()) {
    if (auto st = (*sim)->ServePty(pty); !st.ok()) {
      std::fprintf(stderr, "edged-zsim: %s\n", st.ToString().c_str());
      return 1;
    }
    std::printf("pty %s\n", pty.c_str());
  }
  if (tcp >= 0) {
    auto port = (*sim)->ServeTcp(tcp);
    if (!port.ok()) {
      std::fprintf(stderr, "edged-zsim: %s\n", port.status().ToString().c_str());
      return 1;
    }
    std::printf("tcp 127.0.0.1:%d\n", *port);
  }
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  (*sim)->Stop();
  return 0;
}
