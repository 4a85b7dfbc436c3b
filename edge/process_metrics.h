// Prometheus' standard process_* metrics (as every official client library exports them), read from
// /proc/self at scrape time, plus edged_build_info.
#pragma once

#include <memory>

#include <prometheus/collectable.h>

namespace edged {

// process_cpu_seconds_total, process_resident_memory_bytes, process_virtual_memory_bytes,
// process_start_time_seconds, process_open_fds, process_max_fds, process_threads.
std::shared_ptr<prometheus::Collectable> MakeProcessCollector();

// edged_build_info{version, cuda} 1.
std::shared_ptr<prometheus::Collectable> MakeBuildInfoCollector();

// The version string compiled into the binary.
const char* EdgedVersion();
bool BuiltWithCuda();

// Resident set size of this process in bytes (for logs and tests); 0 when /proc is unreadable.
long long ResidentMemoryBytes();

}  // namespace edged
