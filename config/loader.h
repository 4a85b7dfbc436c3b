// Loads and validates edged's YAML configuration. All errors are collected in one pass, each as
// "file:line:column: what is wrong; what is expected", so a user fixes a file in one go.
#pragma once

#include <string>
#include <optional>
#include <string_view>

#include "base/status.h"
#include "config/config.h"

namespace edged::config {

// Environment lookups are injected so tests do not touch the process environment.
using EnvLookup = std::optional<std::string> (*)(const char* name);
std::optional<std::string> ProcessEnv(const char* name);

// Parses `yaml_text` (named `file_name` in messages), applies the environment overrides
// (EDGED_MQTT_PASSWORD, EDGED_MQTT_USER, EDGED_MQTT_SERVER) and password_file, then validates.
// InvalidArgument with one line per problem when anything is wrong.
StatusOr<Config> ParseConfig(std::string_view yaml_text, std::string_view file_name, EnvLookup env = ProcessEnv);

// Reads and parses a file.
StatusOr<Config> LoadConfigFile(const std::string& path, EnvLookup env = ProcessEnv);

}  // namespace edged::config
