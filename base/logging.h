// One named spdlog logger per module ("mqtt", "zigbee", ...), all writing to stderr in one format:
// human text, or JSON lines that Loki/Alloy parse without a regex.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

#include "base/status.h"

namespace edged {

enum class LogFormat { kText, kJson };

// Sets level and format for every logger, existing and future. Level is one of
// trace, debug, info, warning, error, critical, off.
Status ConfigureLogging(std::string_view level, LogFormat format);

// The module's logger, created on first use with the configured format and level.
std::shared_ptr<spdlog::logger> Logger(const std::string& name);

}  // namespace edged
