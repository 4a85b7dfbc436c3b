#include "base/logging.h"

#include <chrono>
#include <ctime>

#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <fmt/format.h>

namespace edged {
namespace {

void AppendJsonString(spdlog::memory_buf_t& out, std::string_view text) {
  out.push_back('"');
  for (unsigned char c : text) {
    switch (c) {
      case '"': out.append(std::string_view("\\\"")); break;
      case '\\': out.append(std::string_view("\\\\")); break;
      case '\n': out.append(std::string_view("\\n")); break;
      case '\r': out.append(std::string_view("\\r")); break;
      case '\t': out.append(std::string_view("\\t")); break;
      default:
        if (c < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out.append(std::string_view(escaped));
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

// {"ts":"2026-11-23T08:00:00.123Z","level":"info","logger":"mqtt","msg":"connected"}
class JsonLineFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    using namespace std::chrono;
    auto since_epoch = msg.time.time_since_epoch();
    std::time_t seconds = duration_cast<std::chrono::seconds>(since_epoch).count();
    auto millis = duration_cast<milliseconds>(since_epoch).count() % 1000;
    std::tm utc{};
    gmtime_r(&seconds, &utc);
    char stamp[40];
    size_t n = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
    std::snprintf(stamp + n, sizeof stamp - n, ".%03dZ", static_cast<int>(millis));
    dest.append(std::string_view("{\"ts\":\""));
    dest.append(std::string_view(stamp));
    dest.append(std::string_view("\",\"level\":"));
    {
      auto level = spdlog::level::to_string_view(msg.level);
      AppendJsonString(dest, std::string_view(level.data(), level.size()));
    }
    dest.append(std::string_view(",\"logger\":"));
    AppendJsonString(dest, std::string_view(msg.logger_name.data(), msg.logger_name.size()));
    dest.append(std::string_view(",\"msg\":"));
    AppendJsonString(dest, std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(std::string_view("}\n"));
  }
  std::unique_ptr<spdlog::formatter> clone() const override { return std::make_unique<JsonLineFormatter>(); }
};

std::unique_ptr<spdlog::formatter> MakeFormatter(LogFormat format) {
  if (format == LogFormat::kJson) return std::make_unique<JsonLineFormatter>();
  return std::make_unique<spdlog::pattern_formatter>("%Y-%m-%d %H:%M:%S.%e %-5l [%n] %v");
}

// All loggers share one stderr sink, so lines from different modules never interleave.
spdlog::sink_ptr StderrSink() {
  static const spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  return sink;
}

}  // namespace

Status ConfigureLogging(std::string_view level, LogFormat format) {
  spdlog::level::level_enum parsed = spdlog::level::from_str(std::string(level));
  if (parsed == spdlog::level::off && level != "off") {
    return InvalidArgumentError(fmt::format("{}{}{}", "logging level '", level, "' is unknown; expected trace, debug, info, warning, error, critical or off"));
  }
  if (spdlog::default_logger()->name() != "edged") {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("edged", StderrSink()));
  }
  spdlog::set_level(parsed);
  spdlog::set_formatter(MakeFormatter(format));  // applies to every registered logger
  return OkStatus();
}

std::shared_ptr<spdlog::logger> Logger(const std::string& name) {
  if (auto existing = spdlog::get(name)) return existing;
  auto logger = std::make_shared<spdlog::logger>(name, StderrSink());
  try {
    spdlog::initialize_logger(logger);  // takes the configured level and formatter
  } catch (const spdlog::spdlog_ex&) {
    return spdlog::get(name);  // another thread registered it first
  }
  return logger;
}

}  // namespace edged
