// The YAML loader: the only file of edged that includes yaml-cpp. Three passes, so that one run reports
// every problem of a file:
//   1. Parse: walk the YAML tree along the schema (tables of keys per section), convert scalars to the
//      struct's types, and remember where each value sits (path -> line:column). Structural problems
//      (syntax, unknown or duplicate keys, wrong types, malformed durations/numbers/polygons) are
//      collected here and the walk goes on with the default for the bad value.
//   2. Overrides: EDGED_MQTT_* environment variables and mqtt.password_file.
//   3. Validate: ranges, enumerations and cross-field rules on the typed struct, each problem reported at
//      the position remembered in pass 1 (or at the environment variable that supplied the value).
// yaml-cpp exceptions never leave this file.
#include "config/loader.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

namespace edged::config {

std::optional<std::string> ProcessEnv(const char* name) {
  const char* value = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): read once at load time
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

namespace {

constexpr std::size_t kMaxConfigBytes = 4 << 20;     // a config is a few KiB; refuse to slurp a disk image
constexpr std::size_t kMaxPasswordBytes = 64 << 10;  // a password file is a line
constexpr std::size_t kMaxProblems = 100;            // past this, the file is probably not a config at all
constexpr std::int64_t kMaxDurationMs = 1000LL * 3600 * 24 * 365 * 1000;  // 1000 years: anything longer is a typo

struct Position {
  int line = 0;  // 1-based; 0 = the value came from the environment, not the file
  int column = 0;
};

struct Problem {
  Position at;
  std::string where;  // "file:line:column" or "file: EDGED_MQTT_SERVER (environment)"
  std::string text;   // "what is wrong; what is expected"
};

Position PositionOf(const YAML::Mark& mark) { return {mark.line + 1, mark.column + 1}; }

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string Quote(std::string_view s) {
  constexpr std::size_t kMax = 60;
  std::string out = "'";
  out += s.size() > kMax ? std::string(s.substr(0, kMax)) + "..." : std::string(s);
  return out + "'";
}

std::string ListOf(const std::vector<std::string_view>& words) {
  std::string out;
  for (std::size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += (i + 1 == words.size()) ? " or " : ", ";
    out += words[i];
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The known key closest to `key`, when it is close enough to be a plausible typo.
std::optional<std::string_view> ClosestKey(std::string_view key, const std::vector<std::string_view>& known) {
  const std::string lowered = Lower(key);
  std::optional<std::string_view> best;
  std::size_t best_distance = std::numeric_limits<std::size_t>::max();
  for (std::string_view candidate : known) {
    const std::size_t d = EditDistance(lowered, candidate);
    if (d < best_distance) best_distance = d, best = candidate;
  }
  if (!best) return std::nullopt;
  const std::size_t allowed = std::max<std::size_t>(2, best->size() / 3);
  if (best_distance <= allowed) return best;
  // A prefix or suffix of a long key ("topic" for "base_topic") is also a fair guess.
  if (lowered.size() >= 4 && best->find(lowered) != std::string_view::npos) return best;
  return std::nullopt;
}

// ---- scalar grammars ------------------------------------------------------------------------------------

std::optional<std::int64_t> ParseInteger(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  }
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  if (s.empty()) return std::nullopt;
  std::uint64_t magnitude = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), magnitude, base);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  if (magnitude > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
  const auto value = static_cast<std::int64_t>(magnitude);
  return negative ? -value : value;
}

std::optional<double> ParseDouble(std::string_view s) {
  const std::string text(s);
  if (text.empty() || std::isspace(static_cast<unsigned char>(text[0]))) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || errno == ERANGE || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::optional<bool> ParseBool(std::string_view s) {
  const std::string v = Lower(s);
  if (v == "true" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "no" || v == "off") return false;
  return std::nullopt;
}

// "250ms", "30s", "5m", "2h", "10d", combinations such as "1h30m", or a plain integer of seconds.
std::optional<std::chrono::milliseconds> ParseDuration(std::string_view s) {
  using std::chrono::milliseconds;
  if (auto plain = ParseInteger(s)) {
    if (*plain < 0 || s.find_first_of("xX") != std::string_view::npos) return std::nullopt;
    if (*plain > kMaxDurationMs / 1000) return std::nullopt;
    return milliseconds(*plain * 1000);
  }
  if (s.empty()) return std::nullopt;
  std::int64_t total = 0;
  while (!s.empty()) {
    std::size_t digits = 0;
    while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
    if (digits == 0 || digits > 9) return std::nullopt;  // 999999999d still fits in int64 milliseconds
    std::int64_t count = 0;
    std::from_chars(s.data(), s.data() + digits, count);
    s.remove_prefix(digits);
    std::int64_t unit_ms = 0;
    if (s.starts_with("ms")) unit_ms = 1, s.remove_prefix(2);
    else if (s.starts_with("s")) unit_ms = 1000, s.remove_prefix(1);
    else if (s.starts_with("m")) unit_ms = 60 * 1000, s.remove_prefix(1);
    else if (s.starts_with("h")) unit_ms = 3600 * 1000, s.remove_prefix(1);
    else if (s.starts_with("d")) unit_ms = 24 * 3600 * 1000, s.remove_prefix(1);
    else return std::nullopt;
    total += count * unit_ms;
    if (total > kMaxDurationMs) return std::nullopt;  // keeps many terms from overflowing
  }
  return milliseconds(total);
}

std::string FormatDuration(std::chrono::milliseconds d) {
  const auto ms = d.count();
  if (ms % 1000 != 0) return std::to_string(ms) + "ms";
  return std::to_string(ms / 1000) + "s";
}

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

// An MQTT topic segment prefix: non-empty, no wildcards, no leading/trailing '/'.
bool IsTopic(std::string_view s) {
  return !s.empty() && s.find_first_of("+#") == std::string_view::npos && s.front() != '/' && s.back() != '/' &&
         s.find('\0') == std::string_view::npos;
}

// Camera and zone names become MQTT topic levels and file names, as in Frigate.
bool IsName(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

bool IsDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = s.find('.', start);
    const std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-'))
        return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool IsIpAddress(const std::string& s) {
  unsigned char buffer[16];
  return inet_pton(AF_INET, s.c_str(), buffer) == 1 || inet_pton(AF_INET6, s.c_str(), buffer) == 1;
}

// mqtt://host[:port] or mqtts://host[:port] (tcp://, ssl://, tls:// as the client also takes them);
// an IPv6 host in brackets. Returns what is wrong, or nothing.
std::optional<std::string> CheckMqttUrl(std::string_view url) {
  const std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "has no scheme";
  const std::string scheme = Lower(url.substr(0, scheme_end));
  if (scheme != "mqtt" && scheme != "mqtts" && scheme != "tcp" && scheme != "ssl" && scheme != "tls")
    return "has the scheme '" + scheme + "'";
  std::string_view rest = url.substr(scheme_end + 3);
  if (rest.find('@') != std::string_view::npos) return "carries credentials";
  if (rest.find('/') != std::string_view::npos && rest.find('/') + 1 != rest.size()) return "has a path";
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  std::string_view host = rest;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    const std::size_t close = rest.find(']');
    if (close == std::string_view::npos) return "has an unclosed '[' around an IPv6 host";
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return "has text after the IPv6 host";
      port = after.substr(1);
      if (port.empty()) return "has an empty port";
    }
    if (!IsIpAddress(std::string(host))) return "has a bad IPv6 address";
  } else {
    const std::size_t colon = rest.find(':');
    if (colon != std::string_view::npos) {
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
      if (port.empty()) return "has an empty port";
    }
    if (std::any_of(host.begin(), host.end(), [](char c) {
          return !(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_');
        }))
      return "has a bad host name";
  }
  if (host.empty()) return "has no host";
  if (!port.empty()) {
    auto p = ParseInteger(port);
    if (!p || port.find_first_not_of("0123456789") != std::string_view::npos || *p < 1 || *p > 65535)
      return "has the port '" + std::string(port) + "'";
  }
  return std::nullopt;
}

// Records where each document starts; the first pass of ParseConfig (see there).
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> marks;
  void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// ---- pass 1: parse -------------------------------------------------------------------------------------

std::string KindOf(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return "the text " + Quote(node.Scalar());
    default: return "empty";
  }
}

class Parser {
 public:
  using Handler = std::function<void(const YAML::Node& value, const std::string& path)>;
  struct Field {
    std::string_view key;
    Handler parse;
  };

  explicit Parser(std::vector<Problem>& problems, const std::string& file) : problems_(problems), file_(file) {}

  const std::map<std::string, Position>& marks() const { return marks_; }

  void Fail(const YAML::Mark& mark, std::string text) {
    const Position at = PositionOf(mark);
    problems_.push_back({at, file_ + ":" + std::to_string(at.line) + ":" + std::to_string(at.column), std::move(text)});
  }

  // A map with a fixed set of keys. An empty value (`mqtt:` with everything commented out) keeps defaults.
  void Section(const YAML::Node& node, const std::string& path, const std::vector<Field>& fields) {
    if (node.IsNull()) return;
    if (!node.IsMap()) {
      Fail(node.Mark(), Named(path) + " is " + KindOf(node) + "; expected a map of settings (key: value)");
      return;
    }
    std::vector<std::string_view> known;
    for (const Field& f : fields) known.push_back(f.key);
    ForEachKey(node, path, [&](const std::string& key, const YAML::Node& key_node, const YAML::Node& value) {
      auto it = std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.key == key; });
      if (it == fields.end()) {
        std::string text = "unknown key " + Quote(key) + (path.empty() ? " at the top level" : " in " + path);
        if (auto close = ClosestKey(key, known)) {
          text += "; did you mean '" + std::string(*close) + "'?";
        } else {
          text += "; expected one of: " + ListOf(known);
        }
        Fail(key_node.Mark(), std::move(text));
        return;
      }
      const std::string child = Join(path, key);
      Remember(child, key_node, value);
      it->parse(value, child);
    });
  }

  // A map whose keys are names the user picks (cameras, zones, devices). `check_key` says what is wrong
  // with a key, if anything.
  void Entries(const YAML::Node& node, const std::string& path, const std::string& expected_key,
               const std::function<bool(const std::string&)>& check_key, const Handler& parse) {
    if (node.IsNull()) return;
    if (!node.IsMap()) {
      Fail(node.Mark(), Named(path) + " is " + KindOf(node) + "; expected a map of " + expected_key + " to settings");
      return;
    }
    ForEachKey(node, path, [&](const std::string& key, const YAML::Node& key_node, const YAML::Node& value) {
      if (!check_key(key)) {
        Fail(key_node.Mark(), "the name " + Quote(key) + " in " + path + " is not valid; expected " + expected_key);
        return;
      }
      const std::string child = Join(path, key);
      Remember(child, key_node, value);
      parse(value, child);
    });
  }

  // Binds `key` to a field: the reader is chosen by the field's type.
  template <typename T>
  Field Bind(std::string_view key, T& target) {
    return {key, [this, &target](const YAML::Node& value, const std::string& path) { Read(value, path, target); }};
  }

  // ---- readers, one per field type ----

  void Read(const YAML::Node& n, const std::string& path, std::string& out) {
    if (auto s = Scalar(n, path, "a string")) out = *s;
  }

  void Read(const YAML::Node& n, const std::string& path, bool& out) {
    auto s = Scalar(n, path, "true or false");
    if (!s) return;
    if (auto b = ParseBool(*s)) {
      out = *b;
    } else {
      Fail(n.Mark(), path + " is " + Quote(*s) + "; expected true or false");
    }
  }

  void Read(const YAML::Node& n, const std::string& path, std::optional<bool>& out) {
    bool value = false;
    const std::size_t before = problems_.size();
    Read(n, path, value);
    if (problems_.size() == before) out = value;
  }

  void Read(const YAML::Node& n, const std::string& path, int& out) {
    if (auto v = Integer(n, path, std::numeric_limits<int>::min(), std::numeric_limits<int>::max(), "an integer"))
      out = static_cast<int>(*v);
  }

  void Read(const YAML::Node& n, const std::string& path, std::uint16_t& out) {
    if (auto v = Integer(n, path, 0, 0xFFFF, "an integer 0..65535 (decimal, or hex such as 0x1a62)"))
      out = static_cast<std::uint16_t>(*v);
  }

  void Read(const YAML::Node& n, const std::string& path, std::size_t& out) {
    if (auto v = Integer(n, path, 0, std::numeric_limits<std::int64_t>::max(), "a whole number >= 0"))
      out = static_cast<std::size_t>(*v);
  }

  void Read(const YAML::Node& n, const std::string& path, double& out) {
    auto s = Scalar(n, path, "a number");
    if (!s) return;
    if (auto v = ParseDouble(*s)) {
      out = *v;
    } else {
      Fail(n.Mark(), path + " is " + Quote(*s) + "; expected a number such as 0.5");
    }
  }

  template <typename Rep, typename Period>
  void Read(const YAML::Node& n, const std::string& path, std::chrono::duration<Rep, Period>& out) {
    constexpr const char* kExpected = "a duration such as 250ms, 30s, 5m, 2h, 10d, or a plain number of seconds";
    auto s = Scalar(n, path, kExpected);
    if (!s) return;
    auto d = ParseDuration(*s);
    if (!d) {
      Fail(n.Mark(), path + " is " + Quote(*s) + "; expected " + kExpected);
      return;
    }
    using Target = std::chrono::duration<Rep, Period>;
    const auto converted = std::chrono::duration_cast<Target>(*d);
    if (std::chrono::duration_cast<std::chrono::milliseconds>(converted) != *d) {
      Fail(n.Mark(), path + " is " + Quote(*s) + ", which is not a whole number of seconds; expected e.g. " +
                         FormatDuration(std::chrono::ceil<std::chrono::seconds>(*d)));
      return;
    }
    out = converted;
  }

  void Read(const YAML::Node& n, const std::string& path, std::vector<std::string>& out) {
    if (n.IsNull()) {
      out.clear();
      return;
    }
    if (!n.IsSequence()) {
      Fail(n.Mark(), path + " is " + KindOf(n) + "; expected a list such as [a, b]");
      return;
    }
    std::vector<std::string> items;
    for (std::size_t i = 0; i < n.size(); ++i) {
      const std::string item_path = path + "[" + std::to_string(i) + "]";
      Remember(item_path, n[i], n[i]);
      if (auto s = Scalar(n[i], item_path, "a string")) items.push_back(*s);
    }
    out = std::move(items);
  }

  // Frigate's "x1,y1,x2,y2,..." string, a list of [x, y] pairs, a list of "x,y" strings, or a flat list
  // of numbers.
  void Read(const YAML::Node& n, const std::string& path, Polygon& out) {
    std::vector<double> coords;
    bool ok = true;
    auto add_text = [&](const YAML::Node& item, const std::string& item_path) {
      std::string_view text = item.Scalar();
      while (ok) {
        const std::size_t comma = text.find(',');
        std::string token(text.substr(0, comma));
        token.erase(0, token.find_first_not_of(" \t"));
        token.erase(token.find_last_not_of(" \t") + 1);
        auto v = ParseDouble(token);
        if (!v) {
          Fail(item.Mark(), item_path + " has the coordinate " + Quote(token) + "; expected numbers as \"x1,y1,x2,y2,...\"");
          ok = false;
        } else {
          coords.push_back(*v);
        }
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
      }
    };
    if (n.IsScalar()) {
      add_text(n, path);
    } else if (n.IsSequence()) {
      for (std::size_t i = 0; i < n.size() && ok; ++i) {
        const YAML::Node item = n[i];
        const std::string item_path = path + "[" + std::to_string(i) + "]";
        if (item.IsScalar()) {
          add_text(item, item_path);
        } else if (item.IsSequence() && item.size() == 2 && item[0].IsScalar() && item[1].IsScalar()) {
          add_text(item[0], item_path);
          add_text(item[1], item_path);
        } else {
          Fail(item.Mark(), item_path + " is " + KindOf(item) + (item.IsSequence() ? " of " + std::to_string(item.size()) + " items" : "") +
                                "; expected a point [x, y]");
          ok = false;
        }
      }
    } else {
      Fail(n.Mark(), path + " is " + KindOf(n) + "; expected a polygon: \"x1,y1,x2,y2,...\" or a list of [x, y] points");
      return;
    }
    if (!ok) return;
    if (coords.size() % 2 != 0) {
      Fail(n.Mark(), path + " has " + std::to_string(coords.size()) +
                         " coordinates, an odd count; expected x,y pairs (x1,y1,x2,y2,...)");
      return;
    }
    if (coords.size() < 6) {
      Fail(n.Mark(), path + " has " + std::to_string(coords.size() / 2) + " point(s); expected a polygon of at least 3 points");
      return;
    }
    Polygon polygon;
    for (std::size_t i = 0; i + 1 < coords.size(); i += 2) polygon.push_back({coords[i], coords[i + 1]});
    out = std::move(polygon);
  }

  // One polygon (string or list of points) or a list of polygons.
  void Read(const YAML::Node& n, const std::string& path, std::vector<Polygon>& out) {
    out.clear();
    if (n.IsNull()) return;
    auto is_point = [](const YAML::Node& item) {
      if (item.IsSequence()) return item.size() == 2 && item[0].IsScalar() && item[1].IsScalar();
      if (!item.IsScalar()) return false;
      return std::count(item.Scalar().begin(), item.Scalar().end(), ',') <= 1;  // "x,y" or a bare number
    };
    if (n.IsScalar() || (n.IsSequence() && n.size() > 0 && is_point(n[0]))) {
      Polygon polygon;
      Read(n, path, polygon);
      if (!polygon.empty()) out.push_back(std::move(polygon));
      return;
    }
    if (!n.IsSequence()) {
      Fail(n.Mark(), path + " is " + KindOf(n) + "; expected a polygon \"x1,y1,...\" or a list of polygons");
      return;
    }
    for (std::size_t i = 0; i < n.size(); ++i) {
      const std::string item_path = path + "[" + std::to_string(i) + "]";
      Remember(item_path, n[i], n[i]);
      Polygon polygon;
      Read(n[i], item_path, polygon);
      if (!polygon.empty()) out.push_back(std::move(polygon));
    }
  }

  // A list of maps (storage.mounts).
  void List(const YAML::Node& n, const std::string& path, const std::function<void(const YAML::Node&, const std::string&)>& item) {
    if (n.IsNull()) return;
    if (!n.IsSequence()) {
      Fail(n.Mark(), path + " is " + KindOf(n) + "; expected a list (items start with '- ')");
      return;
    }
    for (std::size_t i = 0; i < n.size(); ++i) {
      const std::string item_path = path + "[" + std::to_string(i) + "]";
      Remember(item_path, n[i], n[i]);
      item(n[i], item_path);
    }
  }

  void Remember(const std::string& path, const YAML::Node& key, const YAML::Node& value) {
    // yaml-cpp places an implicit null ("port:" with nothing after it) on the next line, and a block map
    // at its first key: point at the key, where "cameras.streams.demo has no input" belongs.
    marks_[path] = PositionOf(value.IsNull() || value.IsMap() ? key.Mark() : value.Mark());
  }

 private:
  static std::string Named(const std::string& path) { return path.empty() ? "the top level" : path; }

  template <typename Fn>
  void ForEachKey(const YAML::Node& node, const std::string& path, Fn&& fn) {
    std::map<std::string, int> first_line;
    for (auto it = node.begin(); it != node.end(); ++it) {
      // Copies: yaml-cpp's iterator hands out a temporary pair, so a reference would dangle.
      const YAML::Node key_node = it->first;
      const YAML::Node value = it->second;
      if (!key_node.IsScalar()) {
        Fail(key_node.Mark(), "a key in " + Named(path) + " is " + KindOf(key_node) + "; expected a plain name");
        continue;
      }
      const std::string& key = key_node.Scalar();
      auto [seen, inserted] = first_line.emplace(key, key_node.Mark().line + 1);
      if (!inserted) {
        Fail(key_node.Mark(), "duplicate key " + Quote(key) + " in " + Named(path) + "; expected it once (first set on line " +
                                  std::to_string(seen->second) + ")");
        continue;
      }
      fn(key, key_node, value);
    }
  }

  std::optional<std::string> Scalar(const YAML::Node& n, const std::string& path, std::string_view expected) {
    if (n.IsScalar()) return n.Scalar();
    std::string text = path + " is " + KindOf(n) + "; expected " + std::string(expected);
    auto remembered = marks_.find(path);
    if (n.IsNull() && remembered != marks_.end()) {
      // An implicit null's own mark is the next token; the key's position was remembered.
      if (expected == "a string") text += " (write '' for an empty one)";
      const Position at = remembered->second;
      problems_.push_back({at, file_ + ":" + std::to_string(at.line) + ":" + std::to_string(at.column), std::move(text)});
    } else {
      Fail(n.Mark(), std::move(text));
    }
    return std::nullopt;
  }

  std::optional<std::int64_t> Integer(const YAML::Node& n, const std::string& path, std::int64_t min, std::int64_t max,
                                      std::string_view expected) {
    auto s = Scalar(n, path, expected);
    if (!s) return std::nullopt;
    auto v = ParseInteger(*s);
    if (!v || *v < min || *v > max) {
      Fail(n.Mark(), path + " is " + Quote(*s) + "; expected " + std::string(expected));
      return std::nullopt;
    }
    return v;
  }

  std::vector<Problem>& problems_;
  const std::string& file_;
  std::map<std::string, Position> marks_;
};

void ParseDocument(Parser& p, const YAML::Node& root, Config& c) {
  using F = std::vector<Parser::Field>;
  auto tls = [&](const YAML::Node& n, const std::string& path) {
    TlsConfig& t = c.mqtt.tls;
    p.Section(n, path, F{p.Bind("enabled", t.enabled), p.Bind("ca_file", t.ca_file), p.Bind("cert_file", t.cert_file),
                         p.Bind("key_file", t.key_file), p.Bind("insecure", t.insecure)});
  };
  auto mqtt = [&](const YAML::Node& n, const std::string& path) {
    MqttConfig& m = c.mqtt;
    p.Section(n, path,
              F{p.Bind("server", m.server), p.Bind("base_topic", m.base_topic), p.Bind("client_id", m.client_id),
                p.Bind("user", m.user), p.Bind("password", m.password), p.Bind("password_file", m.password_file),
                {"tls", tls}, p.Bind("keepalive", m.keepalive), p.Bind("reconnect_min_delay", m.reconnect_min_delay),
                p.Bind("reconnect_max_delay", m.reconnect_max_delay), p.Bind("qos", m.qos),
                p.Bind("queue_limit", m.queue_limit)});
  };
  auto http = [&](const YAML::Node& n, const std::string& path) {
    p.Section(n, path, F{p.Bind("address", c.http.address), p.Bind("port", c.http.port)});
  };
  auto logging = [&](const YAML::Node& n, const std::string& path) {
    p.Section(n, path, F{p.Bind("level", c.logging.level), p.Bind("format", c.logging.format)});
  };

  auto zigbee = [&](const YAML::Node& n, const std::string& path) {
    ZigbeeConfig& z = c.zigbee;
    auto serial = [&](const YAML::Node& v, const std::string& q) {
      p.Section(v, q, F{p.Bind("port", z.serial.port), p.Bind("baudrate", z.serial.baudrate),
                        p.Bind("rtscts", z.serial.rtscts), p.Bind("adapter", z.serial.adapter)});
    };
    auto network = [&](const YAML::Node& v, const std::string& q) {
      p.Section(v, q, F{p.Bind("channel", z.network.channel), p.Bind("pan_id", z.network.pan_id),
                        p.Bind("extended_pan_id", z.network.extended_pan_id),
                        p.Bind("network_key", z.network.network_key)});
    };
    auto availability = [&](const YAML::Node& v, const std::string& q) {
      p.Section(v, q, F{p.Bind("enabled", z.availability.enabled), p.Bind("active_timeout", z.availability.active_timeout),
                        p.Bind("passive_timeout", z.availability.passive_timeout)});
    };
    auto homeassistant = [&](const YAML::Node& v, const std::string& q) {
      p.Section(v, q, F{p.Bind("enabled", z.homeassistant.enabled),
                        p.Bind("discovery_topic", z.homeassistant.discovery_topic),
                        p.Bind("status_topic", z.homeassistant.status_topic)});
    };
    auto simulator = [&](const YAML::Node& v, const std::string& q) {
      p.Section(v, q, F{p.Bind("devices", z.simulator.devices), p.Bind("report_interval", z.simulator.report_interval)});
    };
    auto devices = [&](const YAML::Node& v, const std::string& q) {
      z.devices.clear();
      p.Entries(
          v, q, "an IEEE address such as 0x00124b0001020304",
          [](const std::string& key) { return key.size() == 18 && key.starts_with("0x") && IsHex(key.substr(2)); },
          [&](const YAML::Node& d, const std::string& dq) {
            ZigbeeDeviceOptions& o = z.devices[dq.substr(q.size() + 1)];
            p.Section(d, dq, F{p.Bind("friendly_name", o.friendly_name), p.Bind("retain", o.retain)});
          });
    };
    p.Section(n, path,
              F{p.Bind("enabled", z.enabled), {"serial", serial}, {"network", network},
                p.Bind("permit_join", z.permit_join), p.Bind("permit_join_timeout", z.permit_join_timeout),
                p.Bind("retain_state", z.retain_state), {"availability", availability}, {"homeassistant", homeassistant},
                {"simulator", simulator}, {"devices", devices}});
  };

  auto camera = [&](CameraConfig& cam, const YAML::Node& n, const std::string& path) {
    auto motion = [&](const YAML::Node& v, const std::string& q) {
      MotionConfig& m = cam.motion;
      p.Section(v, q, F{p.Bind("threshold", m.threshold), p.Bind("lightning_threshold", m.lightning_threshold),
                        p.Bind("contour_area", m.contour_area), p.Bind("frame_alpha", m.frame_alpha),
                        p.Bind("frame_height", m.frame_height), p.Bind("improve_contrast", m.improve_contrast),
                        p.Bind("mask", m.mask)});
    };
    auto filters = [&](const YAML::Node& v, const std::string& q) {
      cam.filters.clear();
      p.Entries(v, q, "an object label such as person", [](const std::string& k) { return !k.empty(); },
                [&](const YAML::Node& f, const std::string& fq) {
                  ObjectFilter& o = cam.filters[fq.substr(q.size() + 1)];
                  p.Section(f, fq, F{p.Bind("min_score", o.min_score), p.Bind("threshold", o.threshold),
                                     p.Bind("min_area", o.min_area), p.Bind("max_area", o.max_area)});
                });
    };
    auto zones = [&](const YAML::Node& v, const std::string& q) {
      cam.zones.clear();
      p.Entries(v, q, "a zone name of letters, digits, '_' or '-'", [](const std::string& k) { return IsName(k); },
                [&](const YAML::Node& zn, const std::string& zq) {
                  ZoneConfig& zone = cam.zones[zq.substr(q.size() + 1)];
                  p.Section(zn, zq, F{p.Bind("coordinates", zone.coordinates), p.Bind("objects", zone.objects)});
                });
    };
    auto snapshots = [&](const YAML::Node& v, const std::string& q) {
      SnapshotConfig& s = cam.snapshots;
      p.Section(v, q, F{p.Bind("enabled", s.enabled), p.Bind("bounding_box", s.bounding_box), p.Bind("quality", s.quality),
                        p.Bind("retain", s.retain)});
    };
    p.Section(n, path,
              F{p.Bind("enabled", cam.enabled), p.Bind("input", cam.input), p.Bind("loop", cam.loop), p.Bind("fps", cam.fps),
                p.Bind("width", cam.width), p.Bind("height", cam.height), {"motion", motion}, p.Bind("track", cam.track),
                {"filters", filters}, {"zones", zones}, {"snapshots", snapshots},
                p.Bind("max_disappeared", cam.max_disappeared), p.Bind("stationary_after", cam.stationary_after)});
  };
  auto cameras = [&](const YAML::Node& n, const std::string& path) {
    CamerasConfig& cs = c.cameras;
    auto detector = [&](const YAML::Node& v, const std::string& q) {
      DetectorConfig& d = cs.detector;
      p.Section(v, q, F{p.Bind("type", d.type), p.Bind("device", d.device), p.Bind("model", d.model),
                        p.Bind("labelmap", d.labelmap), p.Bind("input_size", d.input_size),
                        p.Bind("output_format", d.output_format)});
    };
    auto streams = [&](const YAML::Node& v, const std::string& q) {
      cs.streams.clear();
      p.Entries(v, q, "a camera name of letters, digits, '_' or '-'", [](const std::string& k) { return IsName(k); },
                [&](const YAML::Node& s, const std::string& sq) {
                  CameraConfig& cam = cs.streams[sq.substr(q.size() + 1)];
                  camera(cam, s, sq);
                });
    };
    p.Section(n, path, F{p.Bind("topic_prefix", cs.topic_prefix), {"detector", detector}, {"streams", streams}});
  };

  auto storage = [&](const YAML::Node& n, const std::string& path) {
    StorageConfig& s = c.storage;
    auto smart = [&](const YAML::Node& v, const std::string& q) {
      p.Section(v, q, F{p.Bind("enabled", s.smart.enabled), p.Bind("interval", s.smart.interval),
                        p.Bind("smartctl", s.smart.smartctl), p.Bind("devices", s.smart.devices),
                        p.Bind("timeout", s.smart.timeout)});
    };
    auto mounts = [&](const YAML::Node& v, const std::string& q) {
      s.mounts.clear();
      p.List(v, q, [&](const YAML::Node& m, const std::string& mq) {
        MountConfig& mount = s.mounts.emplace_back();
        p.Section(m, mq, F{p.Bind("path", mount.path), p.Bind("write_probe", mount.write_probe)});
      });
    };
    p.Section(n, path,
              F{p.Bind("enabled", s.enabled), p.Bind("interval", s.interval), p.Bind("probe_timeout", s.probe_timeout),
                {"mounts", mounts}, p.Bind("discover", s.discover), p.Bind("fstypes", s.fstypes),
                p.Bind("exclude_mountpoints", s.exclude_mountpoints), {"smart", smart}, p.Bind("raid", s.raid),
                p.Bind("zpool", s.zpool), p.Bind("proc_root", s.proc_root), p.Bind("sys_root", s.sys_root)});
  };

  auto labels = [&](const YAML::Node& n, const std::string& path) {
    LabelsConfig& l = c.labels;
    auto kubernetes = [&](const YAML::Node& v, const std::string& q) {
      KubernetesConfig& k = l.kubernetes;
      // YAML 1.1 tools (Helm's toYaml, PyYAML) turn a bare `off` into `false`: read it back as the mode.
      auto mode = [&](const YAML::Node& m, const std::string& mq) {
        p.Read(m, mq, k.mode);
        if (m.IsScalar() && m.Tag() == "?") {
          if (auto b = ParseBool(k.mode)) k.mode = *b ? "on" : "off";
        }
      };
      p.Section(v, q, F{{"mode", mode}, p.Bind("node_name", k.node_name), p.Bind("api_server", k.api_server),
                        p.Bind("token_file", k.token_file), p.Bind("ca_file", k.ca_file),
                        p.Bind("field_manager", k.field_manager)});
    };
    auto nfd = [&](const YAML::Node& v, const std::string& q) {
      p.Section(v, q, F{p.Bind("enabled", l.nfd.enabled), p.Bind("path", l.nfd.path), p.Bind("expiry", l.nfd.expiry)});
    };
    p.Section(n, path,
              F{p.Bind("enabled", l.enabled), p.Bind("prefix", l.prefix), p.Bind("allow", l.allow),
                p.Bind("interval", l.interval), p.Bind("proc_root", l.proc_root), p.Bind("sys_root", l.sys_root),
                p.Bind("dev_root", l.dev_root), {"kubernetes", kubernetes}, {"nfd", nfd}});
  };

  p.Section(root, "",
            F{p.Bind("state_dir", c.state_dir), {"mqtt", mqtt}, {"http", http}, {"logging", logging}, {"zigbee", zigbee},
              {"cameras", cameras}, {"storage", storage}, {"labels", labels}});
}

// ---- pass 2: environment and password_file --------------------------------------------------------------

struct Origins {
  std::map<std::string, std::string> env;  // path -> environment variable that supplied it
};

void ApplyOverrides(Config& c, EnvLookup env, Origins& origins, const std::function<void(const std::string&, std::string)>& fail) {
  auto take = [&](const char* name, const std::string& path, std::string& target) {
    std::optional<std::string> value = env(name);
    if (!value || value->empty()) return false;  // an empty variable counts as unset (a blank Secret key)
    target = *value;
    origins.env[path] = name;
    return true;
  };
  take("EDGED_MQTT_SERVER", "mqtt.server", c.mqtt.server);
  take("EDGED_MQTT_USER", "mqtt.user", c.mqtt.user);
  if (take("EDGED_MQTT_PASSWORD", "mqtt.password", c.mqtt.password)) return;  // wins over password_file
  if (c.mqtt.password_file.empty()) return;

  // Relative paths resolve against the working directory, like every path in the file.
  const std::filesystem::path file = c.mqtt.password_file;
  const std::string what = "mqtt.password_file " + Quote(c.mqtt.password_file);
  std::error_code ec;
  const auto status = std::filesystem::status(file, ec);
  if (ec || !std::filesystem::exists(status)) {
    fail("mqtt.password_file", what + " does not exist; expected a readable file holding the password (or unset it)");
    return;
  }
  if (!std::filesystem::is_regular_file(status)) {
    fail("mqtt.password_file", what + " is not a regular file; expected a file holding the password");
    return;
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    const int err = errno;
    fail("mqtt.password_file", what + " cannot be opened: " + std::string(std::strerror(err)) +
                                   "; expected a file readable by the edged user");
    return;
  }
  std::string contents;
  contents.resize(kMaxPasswordBytes + 1);
  in.read(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (in.bad()) {
    fail("mqtt.password_file", what + " cannot be read; expected a readable file holding the password");
    return;
  }
  contents.resize(static_cast<std::size_t>(in.gcount()));
  if (contents.size() > kMaxPasswordBytes) {
    fail("mqtt.password_file", what + " is larger than 64 KiB; expected a file holding only the password");
    return;
  }
  while (!contents.empty() && (contents.back() == '\n' || contents.back() == '\r')) contents.pop_back();
  c.mqtt.password = std::move(contents);
}

// ---- pass 3: validate -----------------------------------------------------------------------------------

class Validator {
 public:
  Validator(const std::string& file, const std::map<std::string, Position>& marks, const Origins& origins,
            std::vector<Problem>& problems)
      : file_(file), marks_(marks), origins_(origins), problems_(problems) {}

  // Reports `text` at the position of `path`, or of its closest ancestor that is in the file.
  void Fail(const std::string& path, std::string text) {
    if (auto it = origins_.env.find(path); it != origins_.env.end()) {
      problems_.push_back({{0, 0}, file_ + ": " + it->second + " (environment)", std::move(text)});
      return;
    }
    std::string p = path;
    while (!p.empty()) {
      if (auto it = marks_.find(p); it != marks_.end()) {
        problems_.push_back({it->second, Where(it->second), std::move(text)});
        return;
      }
      const std::size_t cut = p.find_last_of(".[");
      p = cut == std::string::npos ? "" : p.substr(0, cut);
    }
    problems_.push_back({{1, 1}, Where({1, 1}), std::move(text)});
  }

  bool InFile(const std::string& path) const { return marks_.count(path) > 0; }
  bool FromEnvironment(const std::string& path) const { return origins_.env.count(path) > 0; }
  bool Set(const std::string& path) const { return InFile(path) || FromEnvironment(path); }

  void IntRange(const std::string& path, std::int64_t v, std::int64_t lo, std::int64_t hi) {
    if (v < lo || v > hi)
      Fail(path, path + " is " + std::to_string(v) + ", out of range; expected " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  void Min(const std::string& path, std::int64_t v, std::int64_t lo) {
    if (v < lo) Fail(path, path + " is " + std::to_string(v) + ", too small; expected at least " + std::to_string(lo));
  }
  void DoubleRange(const std::string& path, double v, double lo, double hi, std::string_view expected) {
    if (!(v >= lo && v <= hi)) Fail(path, path + " is " + Num(v) + ", out of range; expected " + std::string(expected));
  }
  template <typename D>
  void Positive(const std::string& path, D d) {
    if (d <= D::zero()) Fail(path, path + " is " + FormatDuration(std::chrono::duration_cast<std::chrono::milliseconds>(d)) +
                                       "; expected a duration greater than zero");
  }
  template <typename D>
  void DurationRange(const std::string& path, D d, std::chrono::milliseconds lo, std::chrono::milliseconds hi) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d);
    if (ms < lo || ms > hi)
      Fail(path, path + " is " + FormatDuration(ms) + ", out of range; expected " + FormatDuration(lo) + ".." + FormatDuration(hi));
  }
  void OneOf(const std::string& path, const std::string& v, const std::vector<std::string_view>& allowed) {
    if (std::find(allowed.begin(), allowed.end(), v) == allowed.end())
      Fail(path, path + " is " + Quote(v) + "; expected " + ListOf(allowed));
  }
  void NotEmpty(const std::string& path, const std::string& v, std::string_view expected) {
    if (v.empty()) Fail(path, path + " is empty; expected " + std::string(expected));
  }
  void Topic(const std::string& path, const std::string& v) {
    if (!IsTopic(v))
      Fail(path, path + " is " + Quote(v) + "; expected a topic prefix without wildcards (+, #) or leading/trailing '/'");
  }
  void Polygon(const std::string& path, const config::Polygon& polygon) {
    for (const Point& pt : polygon) {
      if (pt.x < 0 || pt.y < 0) {
        Fail(path, path + " has the point " + Num(pt.x) + "," + Num(pt.y) + "; expected coordinates >= 0 (pixels)");
        return;
      }
    }
  }

 private:
  static std::string Num(double v) {
    std::ostringstream out;
    out << v;
    return out.str();
  }
  std::string Where(Position at) const { return file_ + ":" + std::to_string(at.line) + ":" + std::to_string(at.column); }

  const std::string& file_;
  const std::map<std::string, Position>& marks_;
  const Origins& origins_;
  std::vector<Problem>& problems_;
};

using std::chrono::milliseconds;
constexpr milliseconds kOneSecond{1000};
constexpr milliseconds kOneYear{365LL * 24 * 3600 * 1000};

void ValidateMqtt(Validator& v, const MqttConfig& m) {
  if (auto wrong = CheckMqttUrl(m.server)) {
    // A URL with credentials is not echoed: it may hold a password.
    const std::string shown = m.server.find('@') == std::string::npos ? " " + Quote(m.server) : "";
    v.Fail("mqtt.server", "mqtt.server" + shown + " " + *wrong +
                              "; expected mqtt://host:port or mqtts://host:port (user and password go in mqtt.user and "
                              "mqtt.password)");
  }
  v.Topic("mqtt.base_topic", m.base_topic);
  if (m.client_id.find_first_of("+#/") != std::string::npos)
    v.Fail("mqtt.client_id", "mqtt.client_id " + Quote(m.client_id) + " contains '+', '#' or '/'; expected a plain name");
  if (v.InFile("mqtt.password") && !m.password_file.empty() && !v.FromEnvironment("mqtt.password"))
    v.Fail("mqtt.password_file", "mqtt.password and mqtt.password_file are both set; expected only one of them");
  if (!m.tls.cert_file.empty() && m.tls.key_file.empty())
    v.Fail("mqtt.tls.cert_file", "mqtt.tls.cert_file is set but mqtt.tls.key_file is not; expected both for mutual TLS");
  if (m.tls.cert_file.empty() && !m.tls.key_file.empty())
    v.Fail("mqtt.tls.key_file", "mqtt.tls.key_file is set but mqtt.tls.cert_file is not; expected both for mutual TLS");
  v.DurationRange("mqtt.keepalive", m.keepalive, 5 * kOneSecond, 65535 * kOneSecond);
  v.DurationRange("mqtt.reconnect_min_delay", m.reconnect_min_delay, kOneSecond, 3600 * kOneSecond);
  v.DurationRange("mqtt.reconnect_max_delay", m.reconnect_max_delay, kOneSecond, 3600 * kOneSecond);
  if (m.reconnect_min_delay > m.reconnect_max_delay)
    v.Fail(v.Set("mqtt.reconnect_min_delay") ? "mqtt.reconnect_min_delay" : "mqtt.reconnect_max_delay",
           "mqtt.reconnect_min_delay (" + FormatDuration(m.reconnect_min_delay) + ") is above mqtt.reconnect_max_delay (" +
               FormatDuration(m.reconnect_max_delay) + "); expected min <= max");
  v.IntRange("mqtt.qos", m.qos, 0, 2);
}

void ValidateZigbee(Validator& v, const ZigbeeConfig& z) {
  v.NotEmpty("zigbee.serial.port", z.serial.port, "a device path, tcp://host:port, auto or simulator");
  static constexpr int kBaudrates[] = {9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600};
  if (std::find(std::begin(kBaudrates), std::end(kBaudrates), z.serial.baudrate) == std::end(kBaudrates))
    v.Fail("zigbee.serial.baudrate", "zigbee.serial.baudrate is " + std::to_string(z.serial.baudrate) +
                                         "; expected one of 9600, 19200, 38400, 57600, 115200 (Z-Stack default), "
                                         "230400, 460800, 921600");
  v.OneOf("zigbee.serial.adapter", z.serial.adapter, {"zstack"});
  v.IntRange("zigbee.network.channel", z.network.channel, 11, 26);
  if (z.network.pan_id == 0 || z.network.pan_id == 0xFFFF)
    v.Fail("zigbee.network.pan_id", "zigbee.network.pan_id is " + std::to_string(z.network.pan_id) +
                                        ", a reserved value; expected 0x0001..0xFFFE");
  if (z.network.extended_pan_id.size() != 16 || !IsHex(z.network.extended_pan_id))
    v.Fail("zigbee.network.extended_pan_id", "zigbee.network.extended_pan_id is " + Quote(z.network.extended_pan_id) +
                                                 "; expected exactly 16 hex digits such as dddddddddddddddd");
  if (z.network.network_key != "generate" && (z.network.network_key.size() != 32 || !IsHex(z.network.network_key)))
    v.Fail("zigbee.network.network_key", "zigbee.network.network_key is not 32 hex digits (it has " +
                                             std::to_string(z.network.network_key.size()) +
                                             " characters); expected 32 hex digits or \"generate\"");
  v.DurationRange("zigbee.permit_join_timeout", z.permit_join_timeout, kOneSecond, 254 * kOneSecond);
  v.Positive("zigbee.availability.active_timeout", z.availability.active_timeout);
  v.Positive("zigbee.availability.passive_timeout", z.availability.passive_timeout);
  v.Topic("zigbee.homeassistant.discovery_topic", z.homeassistant.discovery_topic);
  v.Topic("zigbee.homeassistant.status_topic", z.homeassistant.status_topic);
  for (std::size_t i = 0; i < z.simulator.devices.size(); ++i)
    v.OneOf("zigbee.simulator.devices[" + std::to_string(i) + "]", z.simulator.devices[i],
            {"climate_sensor", "smart_plug", "color_bulb", "motion_sensor", "door_contact"});
  v.Positive("zigbee.simulator.report_interval", z.simulator.report_interval);
  std::map<std::string, std::string> names;
  for (const auto& [ieee, device] : z.devices) {
    const std::string path = "zigbee.devices." + ieee + ".friendly_name";
    if (device.friendly_name.empty()) continue;
    if (!IsTopic(device.friendly_name)) {
      v.Fail(path, path + " is " + Quote(device.friendly_name) +
                       "; expected a name without '+', '#' or leading/trailing '/' (it becomes an MQTT topic)");
    } else if (auto [it, inserted] = names.emplace(device.friendly_name, ieee); !inserted) {
      v.Fail(path, path + " " + Quote(device.friendly_name) + " is already the name of " + it->second +
                       "; expected a unique friendly_name per device");
    }
  }
}

void ValidateCamera(Validator& v, const std::string& path, const CameraConfig& cam) {
  if (cam.input.empty()) {
    v.Fail(path + ".input", path + " has no input; expected input: an rtsp:// or http(s):// URL, a file path or /dev/videoN");
  }
  v.DoubleRange(path + ".fps", cam.fps, 0.01, 120, "a rate greater than 0 and at most 120 frames per second");
  v.IntRange(path + ".width", cam.width, 0, 16384);
  v.IntRange(path + ".height", cam.height, 0, 16384);
  const MotionConfig& m = cam.motion;
  v.IntRange(path + ".motion.threshold", m.threshold, 1, 255);
  v.DoubleRange(path + ".motion.lightning_threshold", m.lightning_threshold, 0.3, 1.0, "0.3..1.0");
  v.Min(path + ".motion.contour_area", m.contour_area, 0);
  if (!(m.frame_alpha > 0 && m.frame_alpha <= 1))
    v.Fail(path + ".motion.frame_alpha", path + ".motion.frame_alpha is out of range; expected a weight greater than 0 "
                                                "and at most 1 such as 0.01");
  v.IntRange(path + ".motion.frame_height", m.frame_height, 10, 2160);
  for (std::size_t i = 0; i < m.mask.size(); ++i) v.Polygon(path + ".motion.mask[" + std::to_string(i) + "]", m.mask[i]);
  if (cam.track.empty()) v.Fail(path + ".track", path + ".track is empty; expected at least one label such as person");
  for (std::size_t i = 0; i < cam.track.size(); ++i)
    v.NotEmpty(path + ".track[" + std::to_string(i) + "]", cam.track[i], "an object label such as person");
  for (const auto& [label, f] : cam.filters) {
    const std::string fp = path + ".filters." + label;
    v.DoubleRange(fp + ".min_score", f.min_score, 0, 1, "0..1");
    v.DoubleRange(fp + ".threshold", f.threshold, 0, 1, "0..1");
    v.Min(fp + ".min_area", f.min_area, 0);
    if (f.max_area < f.min_area)
      v.Fail(fp + ".max_area", fp + ".max_area (" + std::to_string(f.max_area) + ") is below min_area (" +
                                   std::to_string(f.min_area) + "); expected max_area >= min_area");
  }
  for (const auto& [name, zone] : cam.zones) {
    const std::string zp = path + ".zones." + name;
    if (zone.coordinates.empty() && !v.InFile(zp + ".coordinates"))  // a bad polygon was reported already
      v.Fail(zp + ".coordinates", zp + " has no coordinates; expected coordinates: \"x1,y1,x2,y2,x3,y3,...\"");
    v.Polygon(zp + ".coordinates", zone.coordinates);
  }
  v.IntRange(path + ".snapshots.quality", cam.snapshots.quality, 1, 100);
  v.DurationRange(path + ".snapshots.retain", cam.snapshots.retain, milliseconds(0), 10 * kOneYear);
  v.Positive(path + ".max_disappeared", cam.max_disappeared);
  v.Positive(path + ".stationary_after", cam.stationary_after);
}

void ValidateCameras(Validator& v, const CamerasConfig& cs) {
  v.Topic("cameras.topic_prefix", cs.topic_prefix);
  const DetectorConfig& d = cs.detector;
  v.OneOf("cameras.detector.type", d.type, {"hog", "onnx"});
  v.OneOf("cameras.detector.device", d.device, {"auto", "cuda", "cpu"});
  v.OneOf("cameras.detector.output_format", d.output_format, {"yolov5", "yolov8", "ssd"});
  v.IntRange("cameras.detector.input_size", d.input_size, 32, 4096);
  if (d.type == "onnx" && d.model.empty())
    v.Fail("cameras.detector.model", "cameras.detector.type is onnx but cameras.detector.model is not set; expected the "
                                     "path of an .onnx model file");
  for (const auto& [name, cam] : cs.streams) ValidateCamera(v, "cameras.streams." + name, cam);
}

void ValidateStorage(Validator& v, const StorageConfig& s) {
  v.Positive("storage.interval", s.interval);
  v.Positive("storage.probe_timeout", s.probe_timeout);
  for (std::size_t i = 0; i < s.mounts.size(); ++i) {
    const std::string mp = "storage.mounts[" + std::to_string(i) + "]";
    if (s.mounts[i].path.empty()) {
      v.Fail(mp + ".path", mp + " has no path; expected path: an absolute mount point such as /mnt/nas");
    } else if (s.mounts[i].path.front() != '/') {
      v.Fail(mp + ".path", mp + ".path is " + Quote(s.mounts[i].path) + "; expected an absolute mount point such as /mnt/nas");
    }
  }
  for (std::size_t i = 0; i < s.fstypes.size(); ++i)
    v.NotEmpty("storage.fstypes[" + std::to_string(i) + "]", s.fstypes[i], "a file system type such as nfs4");
  // std::regex compiles recursively: a huge pattern could exhaust the stack, so cap it first.
  if (s.exclude_mountpoints.size() > 1024) {
    v.Fail("storage.exclude_mountpoints", "storage.exclude_mountpoints is " + std::to_string(s.exclude_mountpoints.size()) +
                                              " characters long; expected a regular expression of at most 1024");
  } else try {
    std::regex compiled(s.exclude_mountpoints, std::regex::ECMAScript);
    static_cast<void>(compiled);
  } catch (const std::regex_error& e) {
    v.Fail("storage.exclude_mountpoints", "storage.exclude_mountpoints " + Quote(s.exclude_mountpoints) +
                                              " is not a valid regular expression (" + e.what() +
                                              "); expected an ECMAScript regex such as ^/(dev|proc)($|/)");
  }
  v.Positive("storage.smart.interval", s.smart.interval);
  v.NotEmpty("storage.smart.smartctl", s.smart.smartctl, "the smartctl command or its path");
  v.Positive("storage.smart.timeout", s.smart.timeout);
  v.NotEmpty("storage.zpool", s.zpool, "the zpool command or its path");
  v.NotEmpty("storage.proc_root", s.proc_root, "a directory such as /proc");
  v.NotEmpty("storage.sys_root", s.sys_root, "a directory such as /sys");
}

void ValidateLabels(Validator& v, const LabelsConfig& l) {
  if (!l.prefix.empty()) {
    const bool domain = l.prefix.back() == '/';
    const std::string_view body = domain ? std::string_view(l.prefix).substr(0, l.prefix.size() - 1) : l.prefix;
    const bool ok = domain ? IsDnsSubdomain(body)
                           : std::isalnum(static_cast<unsigned char>(body.front())) &&
                                 std::all_of(body.begin(), body.end(), [](char ch) {
                                   return std::islower(static_cast<unsigned char>(ch)) ||
                                          std::isdigit(static_cast<unsigned char>(ch)) || ch == '-' || ch == '.';
                                 });
    if (!ok)
      v.Fail("labels.prefix", "labels.prefix " + Quote(l.prefix) +
                                  " does not make valid label keys; expected a DNS domain ending in '/' (edged.io/) or "
                                  "lower-case letters, digits, '-' and '.' (lab-)");
  }
  v.Positive("labels.interval", l.interval);
  v.NotEmpty("labels.proc_root", l.proc_root, "a directory such as /proc");
  v.NotEmpty("labels.sys_root", l.sys_root, "a directory such as /sys");
  v.NotEmpty("labels.dev_root", l.dev_root, "a directory such as /dev");
  const KubernetesConfig& k = l.kubernetes;
  v.OneOf("labels.kubernetes.mode", k.mode, {"auto", "on", "off"});
  if (!k.node_name.empty() && !IsDnsSubdomain(k.node_name))
    v.Fail("labels.kubernetes.node_name", "labels.kubernetes.node_name " + Quote(k.node_name) +
                                              " is not a valid node name; expected lower-case DNS name such as node-1");
  if (!k.api_server.empty() && !k.api_server.starts_with("https://") && !k.api_server.starts_with("http://"))
    v.Fail("labels.kubernetes.api_server", "labels.kubernetes.api_server " + Quote(k.api_server) +
                                               " is not a URL; expected https://host:port");
  v.NotEmpty("labels.kubernetes.field_manager", k.field_manager, "a field manager name such as edged");
  v.NotEmpty("labels.nfd.path", l.nfd.path, "the feature file path");
  v.Positive("labels.nfd.expiry", l.nfd.expiry);
}

void Validate(Validator& v, const Config& c) {
  v.NotEmpty("state_dir", c.state_dir, "a directory such as /var/lib/edged");
  ValidateMqtt(v, c.mqtt);
  if (!IsIpAddress(c.http.address))
    v.Fail("http.address", "http.address is " + Quote(c.http.address) +
                               "; expected an IP address to listen on such as 0.0.0.0, 127.0.0.1 or ::");
  v.IntRange("http.port", c.http.port, 1, 65535);
  v.OneOf("logging.level", c.logging.level, {"trace", "debug", "info", "warning", "error", "critical", "off"});
  v.OneOf("logging.format", c.logging.format, {"text", "json"});
  ValidateZigbee(v, c.zigbee);
  ValidateCameras(v, c.cameras);
  ValidateStorage(v, c.storage);
  ValidateLabels(v, c.labels);
}

Status Report(std::vector<Problem> problems) {
  std::stable_sort(problems.begin(), problems.end(), [](const Problem& a, const Problem& b) {
    return std::tie(a.at.line, a.at.column) < std::tie(b.at.line, b.at.column);
  });
  std::string text;
  for (std::size_t i = 0; i < problems.size() && i < kMaxProblems; ++i) {
    if (!text.empty()) text += '\n';
    text += problems[i].where + ": " + problems[i].text;
  }
  if (problems.size() > kMaxProblems)
    text += "\n(" + std::to_string(problems.size() - kMaxProblems) + " more problems not shown)";
  return InvalidArgumentError(std::move(text));
}

}  // namespace

StatusOr<Config> ParseConfig(std::string_view yaml_text, std::string_view file_name, EnvLookup env) {
  const std::string file(file_name);
  std::vector<Problem> problems;
  auto at_start = [&](std::string text) { problems.push_back({{1, 1}, file + ":1:1", std::move(text)}); };
  Config config;
  Parser parser(problems, file);
  try {
    // YAML::LoadAll is not used: on a document that starts with a stray ',' yaml-cpp 0.7 never consumes
    // the token and LoadAll appends empty documents until memory runs out. A first pass with an event
    // handler looks at no more than two documents and notices when the parser makes no progress.
    std::istringstream stream{std::string(yaml_text)};
    YAML::Parser events(stream);
    DocumentStarts starts;
    for (int i = 0; i < 2 && events.HandleNextDocument(starts); ++i) {
    }
    if (starts.marks.empty()) {
      at_start("the file is empty; expected a YAML map of sections such as mqtt:, http:, zigbee:");
      return Report(std::move(problems));
    }
    if (starts.marks.size() > 1) {
      const YAML::Mark& first = starts.marks[0];
      const YAML::Mark& second = starts.marks[1];
      if (first.pos == second.pos) {
        parser.Fail(first, "YAML syntax error: unexpected text where a document should start; expected valid YAML "
                           "(a stray ',' or bracket?)");
        return Report(std::move(problems));
      }
      parser.Fail(second, "a second YAML document starts here; expected one document per file");
    }
    const YAML::Node document = YAML::Load(std::string(yaml_text));
    if (document.IsNull()) {
      at_start("the file is empty; expected a YAML map of sections such as mqtt:, http:, zigbee:");
      return Report(std::move(problems));
    }
    const YAML::Node& root = document;
    if (!root.IsMap()) {
      parser.Fail(root.Mark(), "the top level is " + KindOf(root) + "; expected a map of sections such as mqtt:, http:, zigbee:");
      return Report(std::move(problems));
    }
    ParseDocument(parser, root, config);
  } catch (const YAML::Exception& e) {
    // Syntax errors end the parse: nothing after them can be trusted.
    std::string message = e.msg;
    if (message == "bad file") message = "nesting too deep or unreadable input";
    parser.Fail(e.mark, "YAML syntax error: " + message + "; expected valid YAML (check indentation, quotes and brackets)");
    return Report(std::move(problems));
  } catch (const std::exception& e) {
    at_start(std::string("cannot parse: ") + e.what() + "; expected valid YAML");
    return Report(std::move(problems));
  }

  Origins origins;
  Validator validator(file, parser.marks(), origins, problems);
  ApplyOverrides(config, env, origins, [&](const std::string& path, std::string text) { validator.Fail(path, std::move(text)); });
  Validate(validator, config);
  if (!problems.empty()) return Report(std::move(problems));
  return config;
}

StatusOr<Config> LoadConfigFile(const std::string& path, EnvLookup env) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status))
    return NotFoundError(path + ": config file not found; expected a YAML file (see config/examples/demo.yaml)");
  if (!std::filesystem::is_regular_file(status))
    return InvalidArgumentError(path + ": not a regular file; expected a YAML config file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoStatus("open config file " + path, errno);
  std::string text;
  text.resize(kMaxConfigBytes + 1);
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return ErrnoStatus("read config file " + path, errno);
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) return InvalidArgumentError(path + ": larger than 4 MiB; expected a YAML config file");
  return ParseConfig(text, path, env);
}

}  // namespace edged::config
