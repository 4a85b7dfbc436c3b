// State files survive crashes: write a temporary file beside the target, fsync it, rename it over the
// target and fsync the directory, so a reader sees either the old or the new content, never a mix.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "base/status.h"

namespace edged {

// Creates missing parent directories. `mode` applies to the new file (0600 for secrets such as keys).
Status WriteFileAtomically(const std::filesystem::path& path, std::string_view contents, unsigned mode = 0644);

// Reads a whole file; NotFound when it does not exist.
StatusOr<std::string> ReadFileToString(const std::filesystem::path& path);

}  // namespace edged
