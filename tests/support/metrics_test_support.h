// Reading one series back from a prometheus-cpp registry in tests.
#pragma once

#include <map>
#include <optional>
#include <string>

#include <prometheus/registry.h>

namespace edged::test {

// The value of the first series of `name` whose labels include `labels` (counter or gauge);
// nullopt when there is none.
inline std::optional<double> MetricValue(prometheus::Registry& registry, const std::string& name,
                                         const std::map<std::string, std::string>& labels = {}) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      std::map<std::string, std::string> have;
      for (const auto& l : metric.label) have[l.name] = l.value;
      bool match = true;
      for (const auto& [k, v] : labels) match = match && have[k] == v;
      if (!match) continue;
      if (family.type == prometheus::MetricType::Counter) return metric.counter.value;
      return metric.gauge.value;
    }
  }
  return std::nullopt;
}

}  // namespace edged::test
