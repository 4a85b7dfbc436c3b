// The config loader: every kind of bad input is reported at its file:line:column with a message that
// says what is wrong and what is expected; good input lands in every field of the structs.
#include "config/loader.h"

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <iterator>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace edged::config {
namespace {

using namespace std::chrono_literals;
using namespace std::string_view_literals;

std::optional<std::string> NoEnv(const char*) { return std::nullopt; }

std::optional<std::string> SecretsEnv(const char* name) {
  if (name == "EDGED_MQTT_PASSWORD"sv) return "env-password-7f3a";
  if (name == "EDGED_MQTT_USER"sv) return "env-user";
  if (name == "EDGED_MQTT_SERVER"sv) return "mqtts://broker.lan:8883";
  return std::nullopt;
}

std::optional<std::string> BadServerEnv(const char* name) {
  if (name == "EDGED_MQTT_SERVER"sv) return "http://broker.lan:1883";
  return std::nullopt;
}

std::optional<std::string> EmptyEnv(const char* name) {
  if (name == "EDGED_MQTT_PASSWORD"sv || name == "EDGED_MQTT_USER"sv) return "";
  return std::nullopt;
}

std::vector<std::string> Lines(std::string_view text) {
  std::vector<std::string> lines;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A temporary directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "edged-config-test-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::filesystem::path Write(const std::string& name, std::string_view contents) const {
    const auto file = path_ / name;
    std::ofstream(file, std::ios::binary) << contents;
    return file;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// ---- bad input: one problem each, at an exact position ----------------------------------------------

struct BadCase {
  const char* name;
  std::string yaml;
  std::string where;    // "t.yaml:L:C"
  std::string message;  // a substring of the problem's text
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class ConfigRejects : public testing::TestWithParam<BadCase> {};

TEST_P(ConfigRejects, ReportsPositionAndReason) {
  const BadCase& c = GetParam();
  auto config = ParseConfig(c.yaml, "t.yaml", NoEnv);
  ASSERT_FALSE(config.ok()) << "accepted:\n" << c.yaml;
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  const std::string message(config.status().message());
  const std::vector<std::string> lines = Lines(message);
  ASSERT_FALSE(lines.empty());
  bool found = false;
  for (const std::string& line : lines) {
    EXPECT_TRUE(line.starts_with("t.yaml:")) << line;
    if (line.starts_with(c.where + ": ")) {
      found = true;
      EXPECT_NE(line.find(c.message), std::string::npos) << "line: " << line << "\nwanted: " << c.message;
      EXPECT_NE(line.find("; "), std::string::npos) << "no 'what is wrong; what is expected' in: " << line;
    }
  }
  EXPECT_TRUE(found) << "no problem at " << c.where << " in:\n" << message;
  EXPECT_EQ(lines.size(), 1u) << "expected exactly one problem, got:\n" << message;
}

const BadCase kBadCases[] = {
    // Syntax.
    {"SyntaxUnclosedFlowList", "mqtt:\n  server: [a, b\nhttp:\n  port: 1\n", "t.yaml:3:5",
     "YAML syntax error: end of sequence flow not found"},
    {"SyntaxBadIndentation", "mqtt:\n  qos: 1\n   base_topic: x\n", "t.yaml:3:14", "YAML syntax error: illegal map value"},
    {"SyntaxTab", "mqtt:\n\tqos: 1\n", "t.yaml:2:5", "YAML syntax error: illegal map value"},
    {"SyntaxUndefinedAlias", "mqtt:\n  qos: *nothing\n", "t.yaml:2:8", "YAML syntax error: the referenced anchor"},
    {"SecondDocument", "http:\n  port: 1\n---\nhttp:\n  port: 2\n", "t.yaml:3:1", "second YAML document"},
    // yaml-cpp's LoadAll loops on these until memory runs out; the loader must not.
    {"StrayCommaAtStart", ", x\n", "t.yaml:1:1", "YAML syntax error: unexpected text where a document should start"},
    {"StrayCommaBeforeFlow", ",[x] y\nmqtt:\n  qos: 1\n", "t.yaml:1:1", "YAML syntax error"},
    // Shape of the file.
    {"EmptyFile", "", "t.yaml:1:1", "the file is empty; expected a YAML map"},
    {"OnlyComments", "# nothing here\n\n", "t.yaml:1:1", "the file is empty"},
    {"TopLevelList", "- mqtt\n- http\n", "t.yaml:1:1", "the top level is a list; expected a map of sections"},
    {"TopLevelScalar", "hello\n", "t.yaml:1:1", "the top level is the text 'hello'; expected a map"},
    // Unknown keys, with a suggestion.
    {"UnknownKeySuggests", "mqtt:\n  base_topc: z2m\n", "t.yaml:2:3",
     "unknown key 'base_topc' in mqtt; did you mean 'base_topic'?"},
    {"UnknownTopLevelSuggests", "mqt:\n  qos: 1\n", "t.yaml:1:1", "unknown key 'mqt' at the top level; did you mean 'mqtt'?"},
    {"UnknownKeyListsKnown", "http:\n  colour: blue\n", "t.yaml:2:3",
     "unknown key 'colour' in http; expected one of: address or port"},
    {"UnknownNestedKey", "zigbee:\n  network:\n    chanel: 15\n", "t.yaml:3:5", "did you mean 'channel'?"},
    {"UnknownCameraKey", "cameras:\n  streams:\n    door:\n      input: a.mp4\n      fsp: 5\n", "t.yaml:5:7",
     "in cameras.streams.door; did you mean 'fps'?"},
    {"DuplicateKey", "mqtt:\n  qos: 1\n  base_topic: a\n  qos: 2\n", "t.yaml:4:3",
     "duplicate key 'qos' in mqtt; expected it once (first set on line 2)"},
    {"DuplicateSection", "http:\n  port: 1\nhttp:\n  port: 2\n", "t.yaml:3:1", "duplicate key 'http' in the top level"},
    {"DuplicateCamera", "cameras:\n  streams:\n    a:\n      input: x\n    a:\n      input: y\n", "t.yaml:5:5",
     "duplicate key 'a' in cameras.streams"},
    // Wrong types.
    {"StringWhereInt", "http:\n  port: abc\n", "t.yaml:2:9", "http.port is 'abc'; expected an integer"},
    {"FloatWhereInt", "mqtt:\n  qos: 1.5\n", "t.yaml:2:8", "mqtt.qos is '1.5'; expected an integer"},
    {"MapWhereList", "cameras:\n  streams:\n    a:\n      input: x\n      track: {person: 1}\n", "t.yaml:5:14",
     "cameras.streams.a.track is a map; expected a list"},
    {"ListWhereMap", "mqtt: [1, 2]\n", "t.yaml:1:7", "mqtt is a list; expected a map of settings"},
    {"ScalarWhereMap", "zigbee:\n  serial: /dev/ttyUSB0\n", "t.yaml:2:11",
     "zigbee.serial is the text '/dev/ttyUSB0'; expected a map"},
    {"MapWhereString", "mqtt:\n  server: {host: a}\n", "t.yaml:2:11", "mqtt.server is a map; expected a string"},
    {"EmptyWhereInt", "http:\n  port:\n  address: 0.0.0.0\n", "t.yaml:2:3", "http.port is empty; expected an integer"},
    {"BadBool", "zigbee:\n  enabled: maybe\n", "t.yaml:2:12", "zigbee.enabled is 'maybe'; expected true or false"},
    {"NegativeQueueLimit", "mqtt:\n  queue_limit: -5\n", "t.yaml:2:16", "expected a whole number >= 0"},
    {"NumberTooBigForInt", "http:\n  port: 99999999999999\n", "t.yaml:2:9", "expected an integer"},
    {"NotANumber", "cameras:\n  streams:\n    a:\n      input: x\n      fps: fast\n", "t.yaml:5:12",
     "cameras.streams.a.fps is 'fast'; expected a number"},
    {"ListItemNotString", "storage:\n  fstypes: [nfs, {a: b}]\n", "t.yaml:2:18",
     "storage.fstypes[1] is a map; expected a string"},
    {"MountsNotList", "storage:\n  mounts: /mnt/nas\n", "t.yaml:2:11", "storage.mounts is the text '/mnt/nas'; expected a list"},
    // Out of range.
    {"PortTooHigh", "http:\n  port: 70000\n", "t.yaml:2:9", "http.port is 70000, out of range; expected 1..65535"},
    {"PortZero", "http:\n  port: 0\n", "t.yaml:2:9", "http.port is 0, out of range; expected 1..65535"},
    {"ChannelTooHigh", "zigbee:\n  network:\n    channel: 27\n", "t.yaml:3:14", "expected 11..26"},
    {"ChannelTooLow", "zigbee:\n  network:\n    channel: 10\n", "t.yaml:3:14", "zigbee.network.channel is 10"},
    {"PanIdReserved", "zigbee:\n  network:\n    pan_id: 0xFFFF\n", "t.yaml:3:13", "expected 0x0001..0xFFFE"},
    {"PanIdTooBig", "zigbee:\n  network:\n    pan_id: \"0x10000\"\n", "t.yaml:3:13", "expected an integer 0..65535"},
    {"QosThree", "mqtt:\n  qos: 3\n", "t.yaml:2:8", "mqtt.qos is 3, out of range; expected 0..2"},
    {"QosNegative", "mqtt:\n  qos: -1\n", "t.yaml:2:8", "expected 0..2"},
    {"MotionThreshold", "cameras:\n  streams:\n    a:\n      input: x\n      motion:\n        threshold: 256\n", "t.yaml:6:20",
     "cameras.streams.a.motion.threshold is 256, out of range; expected 1..255"},
    {"LightningThreshold",
     "cameras:\n  streams:\n    a:\n      input: x\n      motion:\n        lightning_threshold: 0.1\n", "t.yaml:6:30",
     "expected 0.3..1.0"},
    {"FpsZero", "cameras:\n  streams:\n    a:\n      input: x\n      fps: 0\n", "t.yaml:5:12", "fps is 0, out of range"},
    {"FilterScore", "cameras:\n  streams:\n    a:\n      input: x\n      filters:\n        person:\n          min_score: 1.5\n",
     "t.yaml:7:22", "cameras.streams.a.filters.person.min_score is 1.5, out of range; expected 0..1"},
    {"SnapshotQuality", "cameras:\n  streams:\n    a:\n      input: x\n      snapshots:\n        quality: 0\n", "t.yaml:6:18",
     "expected 1..100"},
    {"KeepaliveTooShort", "mqtt:\n  keepalive: 2s\n", "t.yaml:2:14", "mqtt.keepalive is 2s, out of range; expected 5s..65535s"},
    {"PermitJoinTooLong", "zigbee:\n  permit_join_timeout: 5m\n", "t.yaml:2:24", "expected 1s..254s"},
    {"ReconnectMinAboveMax", "mqtt:\n  reconnect_min_delay: 2m\n", "t.yaml:2:24",
     "mqtt.reconnect_min_delay (120s) is above mqtt.reconnect_max_delay (60s)"},
    {"BadBaudrate", "zigbee:\n  serial:\n    baudrate: 12345\n", "t.yaml:3:15", "expected one of 9600"},
    {"MaxAreaBelowMin",
     "cameras:\n  streams:\n    a:\n      input: x\n      filters:\n        car:\n          min_area: 500\n          max_area: 100\n",
     "t.yaml:8:21", "expected max_area >= min_area"},
    // Bad enumerations.
    {"LogFormat", "logging:\n  format: xml\n", "t.yaml:2:11", "logging.format is 'xml'; expected text or json"},
    {"LogLevel", "logging:\n  level: verbose\n", "t.yaml:2:10",
     "expected trace, debug, info, warning, error, critical or off"},
    {"DetectorType", "cameras:\n  detector:\n    type: yolo\n", "t.yaml:3:11",
     "cameras.detector.type is 'yolo'; expected hog or onnx"},
    {"DetectorDevice", "cameras:\n  detector:\n    device: gpu\n", "t.yaml:3:13", "expected auto, cuda or cpu"},
    {"OutputFormat", "cameras:\n  detector:\n    output_format: yolov3\n", "t.yaml:3:20", "expected yolov5, yolov8 or ssd"},
    {"KubernetesMode", "labels:\n  kubernetes:\n    mode: maybe\n", "t.yaml:3:11", "expected auto, on or off"},
    {"SimulatorDevice", "zigbee:\n  simulator:\n    devices: [smart_plug, toaster]\n", "t.yaml:3:27",
     "zigbee.simulator.devices[1] is 'toaster'; expected climate_sensor"},
    {"Adapter", "zigbee:\n  serial:\n    adapter: ezsp\n", "t.yaml:3:14", "expected zstack"},
    {"OnnxWithoutModel", "cameras:\n  detector:\n    type: onnx\n", "t.yaml:2:3", "cameras.detector.model is not set"},
    // Durations.
    {"DurationUnknownUnit", "storage:\n  interval: 30x\n", "t.yaml:2:13",
     "storage.interval is '30x'; expected a duration such as 250ms, 30s, 5m, 2h, 10d"},
    {"DurationWithSpace", "storage:\n  interval: 5 m\n", "t.yaml:2:13", "expected a duration"},
    {"DurationNegative", "storage:\n  interval: -5\n", "t.yaml:2:13", "expected a duration"},
    {"DurationFraction", "storage:\n  interval: 1.5h\n", "t.yaml:2:13", "expected a duration"},
    {"DurationHuge", "storage:\n  interval: 999999999d999999999d\n", "t.yaml:2:13", "expected a duration"},
    {"DurationHugePlain", "storage:\n  interval: 9223372036854775807\n", "t.yaml:2:13", "expected a duration"},
    {"DurationZero", "storage:\n  interval: 0s\n", "t.yaml:2:13", "storage.interval is 0s; expected a duration greater than zero"},
    {"DurationMillisForSeconds", "storage:\n  probe_timeout: 1500ms\n", "t.yaml:2:18",
     "not a whole number of seconds; expected e.g. 2s"},
    // Hex.
    {"ExtendedPanIdShort", "zigbee:\n  network:\n    extended_pan_id: ddddddddddddddd\n", "t.yaml:3:22",
     "expected exactly 16 hex digits"},
    {"ExtendedPanIdNotHex", "zigbee:\n  network:\n    extended_pan_id: ddddddddddddddzz\n", "t.yaml:3:22",
     "zigbee.network.extended_pan_id is 'ddddddddddddddzz'"},
    {"NetworkKeyShort", "zigbee:\n  network:\n    network_key: 0102030405060708090a0b0c0d0e0f1\n", "t.yaml:3:18",
     "expected 32 hex digits or \"generate\""},
    {"NetworkKeyNotHex", "zigbee:\n  network:\n    network_key: 0102030405060708090a0b0c0d0e0fxx\n", "t.yaml:3:18",
     "is not 32 hex digits"},
    {"DeviceIeeeKey", "zigbee:\n  devices:\n    kitchen_plug:\n      friendly_name: plug\n", "t.yaml:3:5",
     "the name 'kitchen_plug' in zigbee.devices is not valid; expected an IEEE address"},
    // mqtt.server.
    {"ServerHttpScheme", "mqtt:\n  server: http://broker:1883\n", "t.yaml:2:11",
     "mqtt.server 'http://broker:1883' has the scheme 'http'; expected mqtt://host:port or mqtts://host:port"},
    {"ServerNoScheme", "mqtt:\n  server: broker:1883\n", "t.yaml:2:11", "has no scheme"},
    {"ServerNoHost", "mqtt:\n  server: mqtt://:1883\n", "t.yaml:2:11", "has no host"},
    {"ServerBadPort", "mqtt:\n  server: mqtt://broker:99999\n", "t.yaml:2:11", "has the port '99999'"},
    {"ServerPortNotNumber", "mqtt:\n  server: mqtts://broker:abc\n", "t.yaml:2:11", "has the port 'abc'"},
    {"ServerWithPath", "mqtt:\n  server: mqtt://broker:1883/topic\n", "t.yaml:2:11", "has a path"},
    {"BaseTopicWildcard", "mqtt:\n  base_topic: z2m/#\n", "t.yaml:2:15", "expected a topic prefix without wildcards"},
    {"HttpAddressNotIp", "http:\n  address: everywhere\n", "t.yaml:2:12", "expected an IP address"},
    // Required keys.
    {"CameraWithoutInput", "cameras:\n  streams:\n    door:\n      fps: 5\n", "t.yaml:3:5",
     "cameras.streams.door has no input; expected input:"},
    {"CameraEmpty", "cameras:\n  streams:\n    door:\n", "t.yaml:3:5", "cameras.streams.door has no input"},
    {"MountWithoutPath", "storage:\n  mounts:\n    - write_probe: true\n", "t.yaml:3:7",
     "storage.mounts[0] has no path; expected path:"},
    {"MountRelativePath", "storage:\n  mounts:\n    - path: mnt/nas\n", "t.yaml:3:13", "expected an absolute mount point"},
    {"CameraBadName", "cameras:\n  streams:\n    front door:\n      input: x\n", "t.yaml:3:5",
     "the name 'front door' in cameras.streams is not valid"},
    // Polygons.
    {"PolygonTwoPoints", "cameras:\n  streams:\n    a:\n      input: x\n      motion:\n        mask: 0,0,10,10\n",
     "t.yaml:6:15", "has 2 point(s); expected a polygon of at least 3 points"},
    {"PolygonOddCount", "cameras:\n  streams:\n    a:\n      input: x\n      motion:\n        mask: 0,0,10,0,10\n",
     "t.yaml:6:15", "has 5 coordinates, an odd count; expected x,y pairs"},
    {"PolygonListTooShort",
     "cameras:\n  streams:\n    a:\n      input: x\n      zones:\n        porch:\n          coordinates: [[0, 0], [5, 5]]\n",
     "t.yaml:7:24", "has 2 point(s)"},
    {"PolygonBadPoint",
     "cameras:\n  streams:\n    a:\n      input: x\n      zones:\n        porch:\n          coordinates: [[0, 0, 1], [5, 5], [1, 1]]\n",
     "t.yaml:7:25", "coordinates[0] is a list of 3 items; expected a point [x, y]"},
    {"PolygonNotNumber", "cameras:\n  streams:\n    a:\n      input: x\n      motion:\n        mask: 0,0,ten,0,10,10\n",
     "t.yaml:6:15", "has the coordinate 'ten'"},
    {"PolygonNegative", "cameras:\n  streams:\n    a:\n      input: x\n      motion:\n        mask: 0,0,-10,0,10,10\n",
     "t.yaml:6:15", "expected coordinates >= 0"},
    {"SecondMaskTooShort",
     "cameras:\n  streams:\n    a:\n      input: x\n      motion:\n        mask:\n          - 0,0,10,0,10,10\n          - 1,1,2,2\n",
     "t.yaml:8:13", "mask[1] has 2 point(s)"},
    {"ZoneWithoutCoordinates", "cameras:\n  streams:\n    a:\n      input: x\n      zones:\n        porch:\n          objects: [person]\n",
     "t.yaml:6:9", "has no coordinates"},
    // TLS, password file, regex, labels.
    {"TlsCertWithoutKey", "mqtt:\n  tls:\n    enabled: true\n    cert_file: /etc/edged/client.crt\n", "t.yaml:4:16",
     "mqtt.tls.cert_file is set but mqtt.tls.key_file is not; expected both"},
    {"TlsKeyWithoutCert", "mqtt:\n  tls:\n    key_file: /etc/edged/client.key\n", "t.yaml:3:15", "expected both"},
    {"PasswordFileMissing", "mqtt:\n  password_file: /nonexistent/edged/password\n", "t.yaml:2:18",
     "mqtt.password_file '/nonexistent/edged/password' does not exist; expected a readable file"},
    {"PasswordFileIsDirectory", "mqtt:\n  password_file: /\n", "t.yaml:2:18", "is not a regular file"},
    {"BadRegex", "storage:\n  exclude_mountpoints: \"^/(dev|proc\"\n", "t.yaml:2:24",
     "storage.exclude_mountpoints '^/(dev|proc' is not a valid regular expression"},
    {"LabelPrefix", "labels:\n  prefix: Edged.IO/\n", "t.yaml:2:11", "labels.prefix 'Edged.IO/' does not make valid label keys"},
    {"NodeName", "labels:\n  kubernetes:\n    node_name: Node_1\n", "t.yaml:3:16", "is not a valid node name"},
    {"DuplicateFriendlyName",
     "zigbee:\n  devices:\n    '0x00124b0001020304':\n      friendly_name: plug\n    '0x00124b0001020305':\n      friendly_name: plug\n",
     "t.yaml:6:22", "is already the name of 0x00124b0001020304"},
};

INSTANTIATE_TEST_SUITE_P(Config, ConfigRejects, testing::ValuesIn(kBadCases),
                         [](const testing::TestParamInfo<BadCase>& info) { return std::string(info.param.name); });

// ---- several problems at once ---------------------------------------------------------------------------

TEST(ConfigErrors, AllProblemsReportedInOnePassSortedByLine) {
  const std::string yaml =
      "logging:\n"
      "  format: xml\n"          // 2: bad enum
      "http:\n"
      "  port: 70000\n"          // 4: out of range
      "  adress: 0.0.0.0\n"      // 5: unknown key
      "zigbee:\n"
      "  network:\n"
      "    channel: 5\n"         // 8: out of range
      "    pan_id: nope\n"       // 9: wrong type
      "cameras:\n"
      "  streams:\n"
      "    a:\n"                 // 12: no input
      "      fps: -2\n";         // 13: out of range
  auto config = ParseConfig(yaml, "node.yaml", NoEnv);
  ASSERT_FALSE(config.ok());
  const auto lines = Lines(config.status().message());
  ASSERT_EQ(lines.size(), 7u) << config.status().message();
  EXPECT_TRUE(lines[0].starts_with("node.yaml:2:11: logging.format")) << lines[0];
  EXPECT_TRUE(lines[1].starts_with("node.yaml:4:9: http.port")) << lines[1];
  EXPECT_TRUE(lines[2].starts_with("node.yaml:5:3: unknown key 'adress' in http; did you mean 'address'?")) << lines[2];
  EXPECT_TRUE(lines[3].starts_with("node.yaml:8:14: zigbee.network.channel")) << lines[3];
  EXPECT_TRUE(lines[4].starts_with("node.yaml:9:13: zigbee.network.pan_id is 'nope'")) << lines[4];
  EXPECT_TRUE(lines[5].starts_with("node.yaml:12:5: cameras.streams.a has no input")) << lines[5];
  EXPECT_TRUE(lines[6].starts_with("node.yaml:13:12: cameras.streams.a.fps is -2")) << lines[6];
}

TEST(ConfigErrors, ProblemCountIsCapped) {
  std::string yaml = "mqtt:\n";
  for (int i = 0; i < 150; ++i) yaml += "  unknown_" + std::to_string(i) + ": 1\n";
  auto config = ParseConfig(yaml, "t.yaml", NoEnv);
  ASSERT_FALSE(config.ok());
  const auto lines = Lines(config.status().message());
  ASSERT_EQ(lines.size(), 101u);
  EXPECT_EQ(lines.back(), "(50 more problems not shown)");
}

TEST(ConfigErrors, DeepNestingIsAnErrorNotACrash) {
  const std::string yaml = "mqtt: " + std::string(5000, '[') + std::string(5000, ']') + "\n";
  auto config = ParseConfig(yaml, "t.yaml", NoEnv);
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(config.status().message().starts_with("t.yaml:1:")) << config.status().message();
}

TEST(ConfigErrors, BinaryGarbageIsAnErrorNotACrash) {
  std::string garbage;
  for (int i = 0; i < 4096; ++i) garbage += static_cast<char>((i * 7919) % 256);
  auto config = ParseConfig(garbage, "t.yaml", NoEnv);
  EXPECT_FALSE(config.ok());
}

// ---- secrets ---------------------------------------------------------------------------------------------

TEST(ConfigSecrets, PasswordNeverAppearsInErrors) {
  TempDir dir;
  const auto file = dir.Write("password", "file-password-91c2\n");
  const std::string yaml =
      "mqtt:\n"
      "  user: bob\n"
      "  password: inline-password-4d1e\n"
      "  qos: 7\n"
      "  pasword: typo-password-a0b3\n";
  auto config = ParseConfig(yaml, "t.yaml", NoEnv);
  ASSERT_FALSE(config.ok());
  const std::string message(config.status().message());
  EXPECT_EQ(message.find("inline-password-4d1e"), std::string::npos) << message;
  EXPECT_EQ(message.find("typo-password-a0b3"), std::string::npos) << message;
  EXPECT_NE(message.find("t.yaml:5:3: unknown key 'pasword' in mqtt; did you mean 'password'?"), std::string::npos)
      << message;

  // A password in the server URL: the URL is not echoed.
  auto in_url = ParseConfig("mqtt:\n  server: mqtt://bob:url-password-55aa@broker:1883\n", "t.yaml", NoEnv);
  ASSERT_FALSE(in_url.ok());
  EXPECT_EQ(std::string(in_url.status().message()).find("url-password-55aa"), std::string::npos)
      << in_url.status().message();
  EXPECT_TRUE(in_url.status().message().starts_with("t.yaml:2:11: mqtt.server carries credentials"))
      << in_url.status().message();

  // Password from a file and from the environment, with other errors present.
  auto from_file = ParseConfig("mqtt:\n  password_file: " + file.string() + "\n  qos: 9\n", "t.yaml", NoEnv);
  ASSERT_FALSE(from_file.ok());
  EXPECT_EQ(std::string(from_file.status().message()).find("file-password-91c2"), std::string::npos);
  auto from_env = ParseConfig("mqtt:\n  qos: 9\n  password: [a, list]\n", "t.yaml", SecretsEnv);
  ASSERT_FALSE(from_env.ok());
  EXPECT_EQ(std::string(from_env.status().message()).find("env-password-7f3a"), std::string::npos);
}

TEST(ConfigSecrets, EnvironmentOverridesFile) {
  const std::string yaml =
      "mqtt:\n"
      "  server: mqtt://127.0.0.1:1883\n"
      "  user: file-user\n"
      "  password: file-password\n";
  auto config = ParseConfig(yaml, "t.yaml", SecretsEnv);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->mqtt.server, "mqtts://broker.lan:8883");
  EXPECT_EQ(config->mqtt.user, "env-user");
  EXPECT_EQ(config->mqtt.password, "env-password-7f3a");
}

TEST(ConfigSecrets, EnvironmentWinsOverPasswordFileWithoutReadingIt) {
  auto config = ParseConfig("mqtt:\n  password_file: /nonexistent/password\n", "t.yaml", SecretsEnv);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->mqtt.password, "env-password-7f3a");
}

TEST(ConfigSecrets, EmptyEnvironmentVariablesCountAsUnset) {
  auto config = ParseConfig("mqtt:\n  user: u\n  password: p\n", "t.yaml", EmptyEnv);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->mqtt.user, "u");
  EXPECT_EQ(config->mqtt.password, "p");
}

TEST(ConfigSecrets, BadServerFromEnvironmentNamesTheVariable) {
  auto config = ParseConfig("http:\n  port: 9822\n", "t.yaml", BadServerEnv);
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(config.status().message().starts_with(
      "t.yaml: EDGED_MQTT_SERVER (environment): mqtt.server 'http://broker.lan:1883' has the scheme 'http'"))
      << config.status().message();
}

TEST(ConfigSecrets, PasswordFileIsReadAndTrailingNewlineStripped) {
  TempDir dir;
  const auto file = dir.Write("password", "s3cret with spaces \r\n\n");
  auto config = ParseConfig("mqtt:\n  user: edged\n  password_file: " + file.string() + "\n", "t.yaml", NoEnv);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->mqtt.password, "s3cret with spaces ");
  EXPECT_EQ(config->mqtt.password_file, file.string());
}

TEST(ConfigSecrets, UnreadablePasswordFileIsReported) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads files whatever their mode";
  TempDir dir;
  const auto file = dir.Write("password", "secret\n");
  std::filesystem::permissions(file, std::filesystem::perms::none);
  auto config = ParseConfig("mqtt:\n  password_file: " + file.string() + "\n", "t.yaml", NoEnv);
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(config.status().message().starts_with("t.yaml:2:18: mqtt.password_file")) << config.status().message();
  EXPECT_NE(std::string(config.status().message()).find("cannot be opened: Permission denied"), std::string::npos)
      << config.status().message();
}

TEST(ConfigSecrets, PasswordAndPasswordFileTogetherIsAnError) {
  TempDir dir;
  const auto file = dir.Write("password", "x\n");
  auto config = ParseConfig("mqtt:\n  password: a\n  password_file: " + file.string() + "\n", "t.yaml", NoEnv);
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(config.status().message().starts_with(
      "t.yaml:3:18: mqtt.password and mqtt.password_file are both set; expected only one of them"))
      << config.status().message();
}

// ---- good input ------------------------------------------------------------------------------------------

TEST(ConfigAccepts, MinimalFileKeepsDefaults) {
  auto config = ParseConfig("mqtt:\n  server: mqtt://127.0.0.1:1883\n", "t.yaml", NoEnv);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(*config, Config{});
}

TEST(ConfigAccepts, EmptySectionsKeepDefaults) {
  auto config = ParseConfig("mqtt:\nhttp:\nzigbee:\n  network:\ncameras:\n  streams:\nstorage:\n  mounts:\nlabels:\n", "t.yaml", NoEnv);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(*config, Config{});
}

struct DurationCase {
  const char* text;
  Seconds expected;
};

TEST(ConfigAccepts, DurationForms) {
  const DurationCase cases[] = {{"30", 30s},  {"30s", 30s},     {"5m", 300s},        {"2h", 7200s},
                                {"10d", 864000s}, {"1h30m", 5400s}, {"2000ms", 2s}, {"\"45\"", 45s}};
  for (const auto& c : cases) {
    auto config = ParseConfig(std::string("storage:\n  interval: ") + c.text + "\n", "t.yaml", NoEnv);
    ASSERT_TRUE(config.ok()) << c.text << ": " << config.status().ToString();
    EXPECT_EQ(config->storage.interval, c.expected) << c.text;
  }
}

TEST(ConfigAccepts, PanIdAsHexStringOrDecimal) {
  for (const char* text : {"\"0x1a62\"", "0x1A62", "6754"}) {
    auto config = ParseConfig(std::string("zigbee:\n  network:\n    pan_id: ") + text + "\n", "t.yaml", NoEnv);
    ASSERT_TRUE(config.ok()) << text << ": " << config.status().ToString();
    EXPECT_EQ(config->zigbee.network.pan_id, 0x1A62) << text;
  }
}

TEST(ConfigAccepts, PolygonForms) {
  const Polygon triangle = {{0, 0}, {100, 0}, {100, 50.5}};
  for (const char* text : {"\"0,0,100,0,100,50.5\"", "0, 0, 100, 0, 100, 50.5", "[[0, 0], [100, 0], [100, 50.5]]",
                           "[\"0,0\", \"100,0\", \"100,50.5\"]", "[0, 0, 100, 0, 100, 50.5]"}) {
    const std::string yaml = std::string("cameras:\n  streams:\n    a:\n      input: x\n      motion:\n        mask: ") +
                             text + "\n      zones:\n        z:\n          coordinates: " + text + "\n";
    auto config = ParseConfig(yaml, "t.yaml", NoEnv);
    ASSERT_TRUE(config.ok()) << text << ": " << config.status().ToString();
    const CameraConfig& cam = config->cameras.streams.at("a");
    ASSERT_EQ(cam.motion.mask.size(), 1u) << text;
    EXPECT_EQ(cam.motion.mask[0], triangle) << text;
    EXPECT_EQ(cam.zones.at("z").coordinates, triangle) << text;
  }
  // Several masks: a list of strings or a list of point lists.
  auto config = ParseConfig(
      "cameras:\n  streams:\n    a:\n      input: x\n      motion:\n        mask:\n          - 0,0,100,0,100,50.5\n"
      "          - [[1, 1], [2, 1], [2, 2], [1, 2]]\n",
      "t.yaml", NoEnv);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const auto& mask = config->cameras.streams.at("a").motion.mask;
  ASSERT_EQ(mask.size(), 2u);
  EXPECT_EQ(mask[0], triangle);
  EXPECT_EQ(mask[1].size(), 4u);
}

TEST(ConfigAccepts, BooleanSpellingsAndBareOffMode) {
  auto config = ParseConfig("zigbee:\n  enabled: yes\n  permit_join: on\n  retain_state: False\nlabels:\n  kubernetes:\n"
                            "    mode: false\n",
                            "t.yaml", NoEnv);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_TRUE(config->zigbee.enabled);
  EXPECT_TRUE(config->zigbee.permit_join);
  EXPECT_FALSE(config->zigbee.retain_state);
  EXPECT_EQ(config->labels.kubernetes.mode, "off");  // Helm's toYaml writes a bare `off` as `false`
}

TEST(ConfigAccepts, ServerUrlForms) {
  for (const char* url : {"mqtt://broker", "mqtts://broker.lan:8883", "mqtt://[::1]:1883", "mqtt://10.0.0.2:1883/",
                          "tcp://broker:1883"}) {
    auto config = ParseConfig(std::string("mqtt:\n  server: \"") + url + "\"\n", "t.yaml", NoEnv);
    EXPECT_TRUE(config.ok()) << url << ": " << config.status().ToString();
  }
}

// ---- the shipped examples -------------------------------------------------------------------------------

TEST(ConfigExamples, DemoLoads) {
  auto config = LoadConfigFile(EDGED_SOURCE_DIR "/config/examples/demo.yaml", NoEnv);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->state_dir, ".edged-demo");
  EXPECT_EQ(config->mqtt.server, "mqtt://127.0.0.1:1883");
  EXPECT_EQ(config->http.address, "127.0.0.1");
  EXPECT_EQ(config->http.port, 9822);
  EXPECT_TRUE(config->zigbee.enabled);
  EXPECT_EQ(config->zigbee.serial.port, "simulator");
  EXPECT_TRUE(config->zigbee.permit_join);
  ASSERT_EQ(config->cameras.streams.size(), 1u);
  const CameraConfig& demo = config->cameras.streams.at("demo");
  EXPECT_EQ(demo.input, "../shared/data/video/vtest.avi");
  EXPECT_TRUE(demo.loop);
  EXPECT_EQ(demo.fps, 5);
  EXPECT_EQ(config->cameras.detector.type, "hog");
  EXPECT_EQ(config->cameras.detector.device, "cpu");
  EXPECT_TRUE(config->storage.enabled);
  EXPECT_TRUE(config->storage.discover);
  EXPECT_EQ(config->labels.kubernetes.mode, "off");
}

TEST(ConfigExamples, DemoVideoExistsFromRepositoryRoot) {
  // demo.yaml's relative input resolves against the working directory: scripts/demo.sh runs from the
  // repository root, with shared/ beside the checkout.
  EXPECT_TRUE(std::filesystem::exists(EDGED_SOURCE_DIR "/../shared/data/video/vtest.avi"));
}

TEST(ConfigExamples, NodeLoads) {
  auto config = LoadConfigFile(EDGED_SOURCE_DIR "/config/examples/node.yaml", NoEnv);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->state_dir, "/var/lib/edged");
  EXPECT_FALSE(config->cameras.streams.empty());
  EXPECT_FALSE(config->storage.mounts.empty());
}

TEST(ConfigExamples, MissingFileIsNotFound) {
  auto config = LoadConfigFile("/nonexistent/edged.yaml", NoEnv);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kNotFound);
  EXPECT_NE(std::string(config.status().message()).find("/nonexistent/edged.yaml"), std::string::npos);
}

TEST(ConfigExamples, FileNameAppearsInErrors) {
  TempDir dir;
  const auto file = dir.Write("broken.yaml", "http:\n  port: 0\n");
  auto config = LoadConfigFile(file.string(), NoEnv);
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(config.status().message().starts_with(file.string() + ":2:9: http.port is 0")) << config.status().message();
}

// ---- every field is parsed -----------------------------------------------------------------------------

// Counts an aggregate's members (as Boost.PFR does): the largest N for which T{x1..xN} compiles. When
// someone adds a field to config.h, the count below fails and points here: parse it in loader.cc, set it
// in the YAML below, document it in docs/configuration.md.
struct AnyField {
  template <typename T>
  operator T&() const;  // NOLINT: only used in unevaluated contexts
};
template <typename T, std::size_t... I>
constexpr bool BraceInitializable(std::index_sequence<I...>) {
  return requires { T{(static_cast<void>(I), AnyField{})...}; };
}
template <typename T, std::size_t N = 0>
constexpr std::size_t FieldCount() {
  if constexpr (N > 64 || !BraceInitializable<T>(std::make_index_sequence<N + 1>{})) {
    return N;
  } else {
    return FieldCount<T, N + 1>();
  }
}

TEST(ConfigSchema, FieldCountsMatchTheLoader) {
  EXPECT_EQ(FieldCount<Config>(), 8u);
  EXPECT_EQ(FieldCount<MqttConfig>(), 12u);
  EXPECT_EQ(FieldCount<TlsConfig>(), 5u);
  EXPECT_EQ(FieldCount<HttpConfig>(), 2u);
  EXPECT_EQ(FieldCount<LoggingConfig>(), 2u);
  EXPECT_EQ(FieldCount<ZigbeeConfig>(), 10u);
  EXPECT_EQ(FieldCount<ZigbeeSerialConfig>(), 4u);
  EXPECT_EQ(FieldCount<ZigbeeNetworkConfig>(), 4u);
  EXPECT_EQ(FieldCount<ZigbeeAvailabilityConfig>(), 3u);
  EXPECT_EQ(FieldCount<ZigbeeDeviceOptions>(), 2u);
  EXPECT_EQ(FieldCount<SimulatorConfig>(), 2u);
  EXPECT_EQ(FieldCount<HomeAssistantConfig>(), 3u);
  EXPECT_EQ(FieldCount<CamerasConfig>(), 3u);
  EXPECT_EQ(FieldCount<DetectorConfig>(), 6u);
  EXPECT_EQ(FieldCount<CameraConfig>(), 13u);
  EXPECT_EQ(FieldCount<MotionConfig>(), 7u);
  EXPECT_EQ(FieldCount<ObjectFilter>(), 4u);
  EXPECT_EQ(FieldCount<ZoneConfig>(), 2u);
  EXPECT_EQ(FieldCount<SnapshotConfig>(), 4u);
  EXPECT_EQ(FieldCount<StorageConfig>(), 12u);
  EXPECT_EQ(FieldCount<MountConfig>(), 2u);
  EXPECT_EQ(FieldCount<SmartConfig>(), 5u);
  EXPECT_EQ(FieldCount<LabelsConfig>(), 9u);
  EXPECT_EQ(FieldCount<KubernetesConfig>(), 6u);
  EXPECT_EQ(FieldCount<NfdConfig>(), 3u);
}

// Every field set to a value different from its default; each must land in the struct.
constexpr const char* kEveryField = R"(
state_dir: /srv/edged
mqtt:
  server: mqtts://broker.lan:8883
  base_topic: z2m
  client_id: edged_test
  user: edged
  password: pw
  password_file: ""
  tls:
    enabled: true
    ca_file: /etc/ca.pem
    cert_file: /etc/client.crt
    key_file: /etc/client.key
    insecure: true
  keepalive: 30s
  reconnect_min_delay: 2s
  reconnect_max_delay: 2m
  qos: 2
  queue_limit: 500
http:
  address: "::"
  port: 9100
logging:
  level: debug
  format: json
zigbee:
  enabled: true
  serial:
    port: /dev/ttyACM0
    baudrate: 460800
    rtscts: true
    adapter: zstack
  network:
    channel: 25
    pan_id: 0x1234
    extended_pan_id: 0123456789abcdef
    network_key: 000102030405060708090a0b0c0d0e0f
  permit_join: true
  permit_join_timeout: 120
  retain_state: false
  availability:
    enabled: false
    active_timeout: 5m
    passive_timeout: 2d
  homeassistant:
    enabled: false
    discovery_topic: ha
    status_topic: ha/status
  simulator:
    devices: [smart_plug]
    report_interval: 3s
  devices:
    "0x00124b0001020304":
      friendly_name: kitchen/plug
      retain: false
cameras:
  topic_prefix: frig
  detector:
    type: onnx
    device: cuda
    model: /models/yolov8n.onnx
    labelmap: /models/coco.txt
    input_size: 640
    output_format: yolov5
  streams:
    porch:
      enabled: false
      input: rtsp://cam.lan/stream
      loop: true
      fps: 2.5
      width: 1280
      height: 720
      motion:
        threshold: 40
        lightning_threshold: 0.5
        contour_area: 20
        frame_alpha: 0.02
        frame_height: 120
        improve_contrast: false
        mask: 0,0,10,0,10,10
      track: [person, car]
      filters:
        car:
          min_score: 0.6
          threshold: 0.8
          min_area: 100
          max_area: 50000
      zones:
        drive:
          coordinates: 0,0,100,0,100,100
          objects: [car]
      snapshots:
        enabled: false
        bounding_box: false
        quality: 90
        retain: 3d
      max_disappeared: 7s
      stationary_after: 20s
storage:
  enabled: false
  interval: 1m
  probe_timeout: 2s
  mounts:
    - path: /mnt/nas
      write_probe: true
  discover: false
  fstypes: [nfs4]
  exclude_mountpoints: ^/boot
  smart:
    enabled: false
    interval: 1h
    smartctl: /usr/sbin/smartctl
    devices: [/dev/sda]
    timeout: 90s
  raid: false
  zpool: /sbin/zpool
  proc_root: /host/proc
  sys_root: /host/sys
labels:
  enabled: false
  prefix: edged.io/
  allow: [hardware/usb]
  interval: 5m
  proc_root: /host/proc
  sys_root: /host/sys
  dev_root: /host/dev
  kubernetes:
    mode: "on"
    node_name: node-1
    api_server: https://10.0.0.1:6443
    token_file: /token
    ca_file: /ca.crt
    field_manager: edged-test
  nfd:
    enabled: true
    path: /etc/nfd/edged
    expiry: 2h
)";

TEST(ConfigSchema, EveryFieldLandsInTheStruct) {
  auto loaded = ParseConfig(kEveryField, "every.yaml", NoEnv);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const Config& c = *loaded;
  const Config d;  // defaults: every field below must differ from them, or the test proves nothing

  EXPECT_EQ(c.state_dir, "/srv/edged");
  const MqttConfig& m = c.mqtt;
  EXPECT_EQ(m.server, "mqtts://broker.lan:8883");
  EXPECT_EQ(m.base_topic, "z2m");
  EXPECT_EQ(m.client_id, "edged_test");
  EXPECT_EQ(m.user, "edged");
  EXPECT_EQ(m.password, "pw");
  EXPECT_EQ(m.password_file, "");  // set by the next test: it needs a real file
  EXPECT_TRUE(m.tls.enabled);
  EXPECT_EQ(m.tls.ca_file, "/etc/ca.pem");
  EXPECT_EQ(m.tls.cert_file, "/etc/client.crt");
  EXPECT_EQ(m.tls.key_file, "/etc/client.key");
  EXPECT_TRUE(m.tls.insecure);
  EXPECT_EQ(m.keepalive, 30s);
  EXPECT_EQ(m.reconnect_min_delay, 2s);
  EXPECT_EQ(m.reconnect_max_delay, 120s);
  EXPECT_EQ(m.qos, 2);
  EXPECT_EQ(m.queue_limit, 500u);
  EXPECT_EQ(c.http.address, "::");
  EXPECT_EQ(c.http.port, 9100);
  EXPECT_EQ(c.logging.level, "debug");
  EXPECT_EQ(c.logging.format, "json");

  const ZigbeeConfig& z = c.zigbee;
  EXPECT_TRUE(z.enabled);
  EXPECT_EQ(z.serial.port, "/dev/ttyACM0");
  EXPECT_EQ(z.serial.baudrate, 460800);
  EXPECT_TRUE(z.serial.rtscts);
  EXPECT_EQ(z.serial.adapter, "zstack");  // the only adapter: cannot differ from the default
  EXPECT_EQ(z.network.channel, 25);
  EXPECT_EQ(z.network.pan_id, 0x1234);
  EXPECT_EQ(z.network.extended_pan_id, "0123456789abcdef");
  EXPECT_EQ(z.network.network_key, "000102030405060708090a0b0c0d0e0f");
  EXPECT_TRUE(z.permit_join);
  EXPECT_EQ(z.permit_join_timeout, 120s);
  EXPECT_FALSE(z.retain_state);
  EXPECT_FALSE(z.availability.enabled);
  EXPECT_EQ(z.availability.active_timeout, 300s);
  EXPECT_EQ(z.availability.passive_timeout, 2 * 86400s);
  EXPECT_FALSE(z.homeassistant.enabled);
  EXPECT_EQ(z.homeassistant.discovery_topic, "ha");
  EXPECT_EQ(z.homeassistant.status_topic, "ha/status");
  EXPECT_EQ(z.simulator.devices, std::vector<std::string>{"smart_plug"});
  EXPECT_EQ(z.simulator.report_interval, 3s);
  ASSERT_EQ(z.devices.count("0x00124b0001020304"), 1u);
  EXPECT_EQ(z.devices.at("0x00124b0001020304").friendly_name, "kitchen/plug");
  EXPECT_EQ(z.devices.at("0x00124b0001020304").retain, std::optional<bool>(false));

  const CamerasConfig& cs = c.cameras;
  EXPECT_EQ(cs.topic_prefix, "frig");
  EXPECT_EQ(cs.detector.type, "onnx");
  EXPECT_EQ(cs.detector.device, "cuda");
  EXPECT_EQ(cs.detector.model, "/models/yolov8n.onnx");
  EXPECT_EQ(cs.detector.labelmap, "/models/coco.txt");
  EXPECT_EQ(cs.detector.input_size, 640);
  EXPECT_EQ(cs.detector.output_format, "yolov5");
  ASSERT_EQ(cs.streams.count("porch"), 1u);
  const CameraConfig& cam = cs.streams.at("porch");
  EXPECT_FALSE(cam.enabled);
  EXPECT_EQ(cam.input, "rtsp://cam.lan/stream");
  EXPECT_TRUE(cam.loop);
  EXPECT_EQ(cam.fps, 2.5);
  EXPECT_EQ(cam.width, 1280);
  EXPECT_EQ(cam.height, 720);
  EXPECT_EQ(cam.motion.threshold, 40);
  EXPECT_EQ(cam.motion.lightning_threshold, 0.5);
  EXPECT_EQ(cam.motion.contour_area, 20);
  EXPECT_EQ(cam.motion.frame_alpha, 0.02);
  EXPECT_EQ(cam.motion.frame_height, 120);
  EXPECT_FALSE(cam.motion.improve_contrast);
  EXPECT_EQ(cam.motion.mask, (std::vector<Polygon>{{{0, 0}, {10, 0}, {10, 10}}}));
  EXPECT_EQ(cam.track, (std::vector<std::string>{"person", "car"}));
  ASSERT_EQ(cam.filters.count("car"), 1u);
  EXPECT_EQ(cam.filters.at("car"), (ObjectFilter{0.6, 0.8, 100, 50000}));
  ASSERT_EQ(cam.zones.count("drive"), 1u);
  EXPECT_EQ(cam.zones.at("drive").coordinates, (Polygon{{0, 0}, {100, 0}, {100, 100}}));
  EXPECT_EQ(cam.zones.at("drive").objects, std::vector<std::string>{"car"});
  EXPECT_FALSE(cam.snapshots.enabled);
  EXPECT_FALSE(cam.snapshots.bounding_box);
  EXPECT_EQ(cam.snapshots.quality, 90);
  EXPECT_EQ(cam.snapshots.retain, 3 * 86400s);
  EXPECT_EQ(cam.max_disappeared, 7s);
  EXPECT_EQ(cam.stationary_after, 20s);

  const StorageConfig& s = c.storage;
  EXPECT_FALSE(s.enabled);
  EXPECT_EQ(s.interval, 60s);
  EXPECT_EQ(s.probe_timeout, 2s);
  ASSERT_EQ(s.mounts.size(), 1u);
  EXPECT_EQ(s.mounts[0].path, "/mnt/nas");
  EXPECT_TRUE(s.mounts[0].write_probe);
  EXPECT_FALSE(s.discover);
  EXPECT_EQ(s.fstypes, std::vector<std::string>{"nfs4"});
  EXPECT_EQ(s.exclude_mountpoints, "^/boot");
  EXPECT_FALSE(s.smart.enabled);
  EXPECT_EQ(s.smart.interval, 3600s);
  EXPECT_EQ(s.smart.smartctl, "/usr/sbin/smartctl");
  EXPECT_EQ(s.smart.devices, std::vector<std::string>{"/dev/sda"});
  EXPECT_EQ(s.smart.timeout, 90s);
  EXPECT_FALSE(s.raid);
  EXPECT_EQ(s.zpool, "/sbin/zpool");
  EXPECT_EQ(s.proc_root, "/host/proc");
  EXPECT_EQ(s.sys_root, "/host/sys");

  const LabelsConfig& l = c.labels;
  EXPECT_FALSE(l.enabled);
  EXPECT_EQ(l.prefix, "edged.io/");
  EXPECT_EQ(l.allow, std::vector<std::string>{"hardware/usb"});
  EXPECT_EQ(l.interval, 300s);
  EXPECT_EQ(l.proc_root, "/host/proc");
  EXPECT_EQ(l.sys_root, "/host/sys");
  EXPECT_EQ(l.dev_root, "/host/dev");
  EXPECT_EQ(l.kubernetes.mode, "on");
  EXPECT_EQ(l.kubernetes.node_name, "node-1");
  EXPECT_EQ(l.kubernetes.api_server, "https://10.0.0.1:6443");
  EXPECT_EQ(l.kubernetes.token_file, "/token");
  EXPECT_EQ(l.kubernetes.ca_file, "/ca.crt");
  EXPECT_EQ(l.kubernetes.field_manager, "edged-test");
  EXPECT_TRUE(l.nfd.enabled);
  EXPECT_EQ(l.nfd.path, "/etc/nfd/edged");
  EXPECT_EQ(l.nfd.expiry, 7200s);

  // Every section differs from the defaults in every field checked above, so none kept its default
  // by accident; zigbee.serial.adapter and mqtt.password_file are the two exceptions noted above.
  EXPECT_NE(c.mqtt.tls, d.mqtt.tls);
  EXPECT_NE(c.http, d.http);
  EXPECT_NE(c.logging, d.logging);
  EXPECT_NE(c.zigbee, d.zigbee);
  EXPECT_NE(c.cameras, d.cameras);
  EXPECT_NE(c.storage, d.storage);
  EXPECT_NE(c.labels, d.labels);
}

TEST(ConfigSchema, PasswordFileLandsInTheStruct) {
  TempDir dir;
  const auto file = dir.Write("pw", "from-file\n");
  auto loaded = ParseConfig("mqtt:\n  password_file: " + file.string() + "\n", "t.yaml", NoEnv);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->mqtt.password_file, file.string());
  EXPECT_EQ(loaded->mqtt.password, "from-file");
}


// ---- robustness -----------------------------------------------------------------------------------------

// Mutations of the annotated example (byte flips, deleted and duplicated lines, truncation): the loader
// either accepts the result or rejects it with positioned messages; it never crashes or throws.
TEST(ConfigRobustness, MutatedExampleNeverCrashes) {
  std::ifstream in(EDGED_SOURCE_DIR "/config/examples/node.yaml", std::ios::binary);
  const std::string original((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(original.empty());
  std::uint64_t state = 0x9E3779B97F4A7C15ULL;  // fixed seed: failures reproduce
  auto next = [&state] {
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return state;
  };
  constexpr std::string_view kBytes = ":-[]{},#'\"&*!|> \n\t0x1aZ";
  int rejected = 0;
  for (int round = 0; round < 400; ++round) {
    std::string text = original;
    const int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const std::size_t at = next() % text.size();
      switch (next() % 4) {
        case 0: text[at] = kBytes[next() % kBytes.size()]; break;
        case 1: text.erase(at, 1 + next() % 40); break;
        case 2: text.insert(at, text.substr(next() % text.size(), 1 + next() % 60)); break;
        default: text.resize(at); break;
      }
    }
    auto config = ParseConfig(text, "m.yaml", NoEnv);
    if (config.ok()) continue;
    ++rejected;
    ASSERT_EQ(config.status().code(), StatusCode::kInvalidArgument);
    for (const std::string& line : Lines(config.status().message())) {
      ASSERT_TRUE(line.starts_with("m.yaml:") || line.starts_with("(")) << line;
    }
  }
  EXPECT_GT(rejected, 100);  // the mutations do break things
}

TEST(ConfigRobustness, HugeRegexIsRejectedBeforeCompiling) {
  auto config = ParseConfig("storage:\n  exclude_mountpoints: \"" + std::string(5000, '(') + "\"\n", "t.yaml", NoEnv);
  ASSERT_FALSE(config.ok());
  EXPECT_TRUE(config.status().message().starts_with("t.yaml:2:24: storage.exclude_mountpoints is 5000 characters long"))
      << config.status().message();
}

}  // namespace
}  // namespace edged::config
