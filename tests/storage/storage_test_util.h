// Helpers shared by the storage tests: a temporary directory, reading one series out of the metrics
// text, and starting the module with test options.
#pragma once

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>

#include "drivers/storage/storage.h"
#include "drivers/storage/storage_internal.h"

namespace edged::storage::testing {

// A fresh directory under $TMPDIR, removed with everything in it at the end of the scope.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "edged-storage-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::string MetricsText(prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

// The value of the one series `name{labels}` in the exposition text, or NaN when absent. Labels are
// matched as written by prometheus-cpp (sorted by name).
inline double Metric(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return std::nan("");
}

inline std::unique_ptr<StorageModule> StartModule(detail::StorageOptions o, prometheus::Registry& registry) {
  auto m = detail::NewStorageModuleWithOptions(std::move(o), registry);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  if (!m.ok()) return nullptr;
  EXPECT_TRUE((*m)->Start().ok());
  return std::move(m).value();
}

}  // namespace edged::storage::testing
