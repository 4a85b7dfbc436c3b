#include "edge/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

namespace edged {
namespace {

prometheus::MetricFamily Gauge(std::string name, std::string help, double value) {
  prometheus::MetricFamily family{std::move(name), std::move(help), prometheus::MetricType::Gauge, {}};
  prometheus::ClientMetric metric;
  metric.gauge.value = value;
  family.metric.push_back(std::move(metric));
  return family;
}

prometheus::MetricFamily Counter(std::string name, std::string help, double value) {
  prometheus::MetricFamily family{std::move(name), std::move(help), prometheus::MetricType::Counter, {}};
  prometheus::ClientMetric metric;
  metric.counter.value = value;
  family.metric.push_back(std::move(metric));
  return family;
}

// Fields of /proc/self/stat after the command name (which may contain spaces and parentheses).
std::vector<std::string> ReadStatFields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  std::getline(in, line);
  auto close = line.rfind(')');
  std::vector<std::string> fields;
  if (close == std::string::npos) return fields;
  std::istringstream rest(line.substr(close + 2));
  for (std::string field; rest >> field;) fields.push_back(field);
  return fields;  // fields[0] is "state" (field 3 of stat(5))
}

double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double value = 0;
      in >> value;
      return value;
    }
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

class ProcessCollector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> families;
    const auto fields = ReadStatFields();
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    // stat(5) field numbers minus 3: utime 14, stime 15, num_threads 20, starttime 22, vsize 23, rss 24.
    if (fields.size() > 21) {
      families.push_back(Counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                                 (std::stod(fields[11]) + std::stod(fields[12])) / ticks));
      families.push_back(Gauge("process_threads", "Number of OS threads in the process.", std::stod(fields[17])));
      families.push_back(Gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
                               BootTimeSeconds() + std::stod(fields[19]) / ticks));
      families.push_back(Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", std::stod(fields[20])));
      families.push_back(Gauge("process_resident_memory_bytes", "Resident memory size in bytes.",
                               std::stod(fields[21]) * page));
    }
    std::error_code ec;
    double open_fds = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
      ++open_fds;
    }
    families.push_back(Gauge("process_open_fds", "Number of open file descriptors.", open_fds));
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
      families.push_back(Gauge("process_max_fds", "Maximum number of open file descriptors.",
                               static_cast<double>(limit.rlim_cur)));
    }
    return families;
  }
};

class BuildInfoCollector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    auto family = Gauge("edged_build_info", "A metric with a constant '1' value labeled by version and build options.", 1);
    family.metric[0].label = {{"cuda", BuiltWithCuda() ? "yes" : "no"}, {"version", EdgedVersion()}};
    return {family};
  }
};

}  // namespace

std::shared_ptr<prometheus::Collectable> MakeProcessCollector() { return std::make_shared<ProcessCollector>(); }
std::shared_ptr<prometheus::Collectable> MakeBuildInfoCollector() { return std::make_shared<BuildInfoCollector>(); }

long long ResidentMemoryBytes() {
  const auto fields = ReadStatFields();
  if (fields.size() <= 21) return 0;
  return std::stoll(fields[21]) * sysconf(_SC_PAGESIZE);
}

}  // namespace edged
