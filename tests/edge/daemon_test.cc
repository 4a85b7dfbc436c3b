// The edged binary as a user runs it: against a real mosquitto, with HTTP on loopback. Checks the
// foundation's promises end to end — --check-config exit codes, /metrics that promtool accepts,
// /readyz following the broker, the last will after SIGKILL, SIGTERM within 5 s, SIGHUP reloads
// (a broken file is rejected and the old config kept), and resident memory.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/support/mqtt_test_support.h"

namespace edged {
namespace {

using namespace std::chrono_literals;
using test::MosquittoBroker;
using test::MqttProbe;
using test::PayloadIs;
using test::Subprocess;
using test::TempDir;

struct HttpResult {
  int status = 0;  // 0: no answer
  std::string body;
};

HttpResult HttpGet(int port, const std::string& path) {
  HttpResult result;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return result;
  }
  std::string request = "GET " + path + " HTTP/1.0\r\n\r\n";
  if (::write(fd, request.data(), request.size()) < 0) {
    ::close(fd);
    return result;
  }
  std::string response;
  char buffer[8192];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) response.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  if (response.rfind("HTTP/1.1 ", 0) == 0) result.status = std::stoi(response.substr(9, 3));
  auto body = response.find("\r\n\r\n");
  if (body != std::string::npos) result.body = response.substr(body + 4);
  return result;
}

// Polls until `predicate` holds or `timeout` passes.
template <typename Predicate>
bool Eventually(Predicate predicate, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return predicate();
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

#if !defined(__SANITIZE_ADDRESS__)  // the memory test does not run under ASan (its shadow memory counts)
long ResidentKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}
#endif

class EdgeDaemon : public ::testing::Test {
 protected:
  void SetUp() override {
    auto broker = MosquittoBroker::Start();
    ASSERT_TRUE(broker.ok()) << broker.status().ToString();
    broker_ = std::move(broker).value();
    http_port_ = test::FreeTcpPort();
    config_path_ = dir_.path() / "edged.yaml";
    WriteConfig("zigbee2mqtt");
  }

  void WriteConfig(const std::string& base_topic, const std::string& extra = "") {
    std::ofstream out(config_path_);
    out << "state_dir: " << (dir_.path() / "state").string() << "\n"
        << "mqtt:\n  server: " << broker_->url() << "\n  base_topic: " << base_topic << "\n"
        << "  reconnect_min_delay: 1s\n  reconnect_max_delay: 2s\n"
        << "http:\n  address: 127.0.0.1\n  port: " << http_port_ << "\n"
        << "logging:\n  level: debug\n"
        << "zigbee:\n  enabled: false\n"
        << "storage:\n  enabled: false\n"
        << "labels:\n  enabled: false\n"
        << extra;
  }

  void StartDaemon() {
    auto process = Subprocess::Start({EDGED_BINARY, "--config", config_path_.string()}, dir_.path() / "edged.log");
    ASSERT_TRUE(process.ok()) << process.status().ToString();
    daemon_ = std::move(process).value();
    ASSERT_TRUE(Eventually([&] { return HttpGet(http_port_, "/readyz").status == 200; }, 10s))
        << "edged never became ready; /readyz: " << HttpGet(http_port_, "/readyz").body << "\nlog:\n" << Log();
  }

  std::string Log() const { return ReadFile(dir_.path() / "edged.log"); }

  TempDir dir_{"edged-daemon-test"};
  std::unique_ptr<MosquittoBroker> broker_;
  std::unique_ptr<Subprocess> daemon_;
  int http_port_ = 0;
  std::filesystem::path config_path_;
};

TEST(EdgeCheckConfig, DemoExampleIsValid) {
  auto process = Subprocess::Start({EDGED_BINARY, "--check-config", EDGED_SOURCE_DIR "/config/examples/demo.yaml"});
  ASSERT_TRUE(process.ok());
  auto code = (*process)->Wait(10s);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 0);
}

TEST(EdgeCheckConfig, BrokenFileExitsOneWithLineAndColumn) {
  TempDir dir;
  const auto path = dir.path() / "broken.yaml";
  std::ofstream(path) << "mqtt:\n  server: mqtt://127.0.0.1:1883\nhttp:\n  port: 99999\n";
  const auto log = dir.path() / "out.log";
  auto process = Subprocess::Start({EDGED_BINARY, "--check-config", path.string()}, log);
  ASSERT_TRUE(process.ok());
  auto code = (*process)->Wait(10s);
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 1);
  const std::string output = ReadFile(log);
  EXPECT_TRUE(std::regex_search(output, std::regex(R"(broken\.yaml:4:9: )"))) << output;
}

TEST_F(EdgeDaemon, MetricsPassPromtoolAndNameTheBuild) {
  StartDaemon();
  HttpResult metrics = HttpGet(http_port_, "/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("edged_build_info{"), std::string::npos);
  EXPECT_NE(metrics.body.find("process_resident_memory_bytes "), std::string::npos);
  EXPECT_NE(metrics.body.find("edged_module_up{module=\"mqtt\"} 1"), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("edged_mqtt_connected 1"), std::string::npos) << metrics.body;
  const auto file = dir_.path() / "metrics.txt";
  std::ofstream(file) << metrics.body;
  // promtool reads the exposition from stdin.
  Status check = test::RunCommand({"sh", "-c", "promtool check metrics < " + file.string()});
  EXPECT_TRUE(check.ok()) << check.ToString();
  EXPECT_EQ(HttpGet(http_port_, "/healthz").status, 200);
}

TEST_F(EdgeDaemon, ReadyzFollowsTheBroker) {
  StartDaemon();
  broker_->Kill();
  ASSERT_TRUE(Eventually([&] { return HttpGet(http_port_, "/readyz").status == 503; }, 5s));
  HttpResult ready = HttpGet(http_port_, "/readyz");
  EXPECT_NE(ready.body.find("\"mqtt\":{\"message\""), std::string::npos) << ready.body;
  EXPECT_EQ(HttpGet(http_port_, "/healthz").status, 200);  // alive, just not ready
  ASSERT_TRUE(broker_->Restart().ok());
  EXPECT_TRUE(Eventually([&] { return HttpGet(http_port_, "/readyz").status == 200; }, 10s)) << Log();
}

TEST_F(EdgeDaemon, LastWillIsPublishedWhenTheDaemonIsKilled) {
  auto probe = MqttProbe::Connect(*broker_, {"zigbee2mqtt/bridge/state"});
  ASSERT_TRUE(probe.ok());
  StartDaemon();
  ASSERT_TRUE((*probe)->WaitFor("zigbee2mqtt/bridge/state", PayloadIs(R"({"state":"online"})")));
  (*probe)->Clear();
  daemon_->Signal(SIGKILL);
  auto offline = (*probe)->WaitFor("zigbee2mqtt/bridge/state", PayloadIs(R"({"state":"offline"})"), 5000ms);
  ASSERT_TRUE(offline.has_value()) << (*probe)->Dump();
  EXPECT_TRUE(offline->retain || true);  // retained flag is only set for late subscribers
  auto late = MqttProbe::Connect(*broker_, {"zigbee2mqtt/bridge/state"});
  ASSERT_TRUE(late.ok());
  auto retained = (*late)->WaitFor("zigbee2mqtt/bridge/state", PayloadIs(R"({"state":"offline"})"), 3000ms);
  ASSERT_TRUE(retained.has_value()) << "the will must be retained";
  EXPECT_TRUE(retained->retain);
}

TEST_F(EdgeDaemon, SigtermStopsWithinFiveSecondsAndSaysOffline) {
  auto probe = MqttProbe::Connect(*broker_, {"zigbee2mqtt/bridge/state"});
  ASSERT_TRUE(probe.ok());
  StartDaemon();
  ASSERT_TRUE((*probe)->WaitFor("zigbee2mqtt/bridge/state", PayloadIs(R"({"state":"online"})")));
  const auto start = std::chrono::steady_clock::now();
  daemon_->Signal(SIGTERM);
  auto code = daemon_->Wait(6s);
  ASSERT_TRUE(code.ok()) << "edged did not stop after SIGTERM\n" << Log();
  EXPECT_EQ(*code, 0) << Log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE((*probe)->WaitFor("zigbee2mqtt/bridge/state", PayloadIs(R"({"state":"offline"})"), 2000ms));
}

TEST_F(EdgeDaemon, SigtermWithTheBrokerGoneStillStopsInTime) {
  StartDaemon();
  broker_->Kill();
  ASSERT_TRUE(Eventually([&] { return HttpGet(http_port_, "/readyz").status == 503; }, 5s));
  const auto start = std::chrono::steady_clock::now();
  daemon_->Signal(SIGTERM);
  auto code = daemon_->Wait(6s);
  ASSERT_TRUE(code.ok()) << Log();
  EXPECT_EQ(*code, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(EdgeDaemon, SighupKeepsTheOldConfigWhenTheNewOneIsBroken) {
  StartDaemon();
  std::ofstream(config_path_) << "mqtt:\n  base_topic: [not, a, string]\n";
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(Eventually([&] { return Log().find("reload rejected") != std::string::npos; }, 5s)) << Log();
  EXPECT_NE(Log().find("edged.yaml:2:15"), std::string::npos) << Log();
  EXPECT_TRUE(daemon_->running());
  EXPECT_EQ(HttpGet(http_port_, "/readyz").status, 200);
}

TEST_F(EdgeDaemon, SighupAppliesAValidNewConfig) {
  auto probe = MqttProbe::Connect(*broker_, {"home/bridge/state"});
  ASSERT_TRUE(probe.ok());
  StartDaemon();
  WriteConfig("home");
  daemon_->Signal(SIGHUP);
  EXPECT_TRUE((*probe)->WaitFor("home/bridge/state", PayloadIs(R"({"state":"online"})"), 5000ms))
      << (*probe)->Dump() << Log();
  EXPECT_TRUE(Eventually([&] { return HttpGet(http_port_, "/readyz").status == 200; }, 5s));
}

TEST_F(EdgeDaemon, JsonLogLinesAreParseable) {
  WriteConfig("zigbee2mqtt", "");
  std::ofstream(config_path_, std::ios::app);
  {
    std::string text = ReadFile(config_path_);
    text = std::regex_replace(text, std::regex("logging:\n  level: debug\n"), "logging:\n  level: info\n  format: json\n");
    std::ofstream(config_path_) << text;
  }
  StartDaemon();
  std::istringstream lines(Log());
  int json_lines = 0;
  for (std::string line; std::getline(lines, line);) {
    ASSERT_TRUE(std::regex_match(line, std::regex(R"(\{"ts":"[0-9T:.\-]+Z","level":"\w+","logger":"[\w-]+","msg":".*"\})")))
        << line;
    ++json_lines;
  }
  EXPECT_GT(json_lines, 0);
}

TEST_F(EdgeDaemon, CamerasLoadThePluginAndPublishFrigateTopics) {
  auto probe = MqttProbe::Connect(*broker_, {"frigate/#"});
  ASSERT_TRUE(probe.ok());
  WriteConfig("zigbee2mqtt", "cameras:\n  detector:\n    type: hog\n    device: cpu\n  streams:\n    door:\n"
                             "      input: " EDGED_SOURCE_DIR "/../shared/data/video/vtest.avi\n      loop: true\n"
                             "      fps: 5\n");
  StartDaemon();
  // The camera reports "not started" until its decode thread has opened the file.
  EXPECT_TRUE(Eventually([&] {
    return HttpGet(http_port_, "/readyz").body.find("\"cameras\":{\"state\":\"ok\"}") != std::string::npos;
  }, 10s)) << HttpGet(http_port_, "/readyz").body;
  EXPECT_TRUE((*probe)->WaitFor("frigate/available", PayloadIs("online"), 10000ms)) << (*probe)->Dump();
  EXPECT_TRUE((*probe)->WaitFor("frigate/events", test::PayloadContains("\"label\":\"person\""), 30000ms))
      << Log();
  EXPECT_NE(HttpGet(http_port_, "/metrics").body.find("edged_camera_up{camera=\"door\"} 1"), std::string::npos);
}

#if !defined(__SANITIZE_ADDRESS__)
TEST_F(EdgeDaemon, ResidentMemoryStaysUnderFifteenMegabytes) {
  StartDaemon();
  std::this_thread::sleep_for(1s);
  for (int i = 0; i < 20; ++i) HttpGet(http_port_, "/metrics");  // a few scrapes, as Prometheus would
  const long kb = ResidentKb(daemon_->pid());
  RecordProperty("resident_kb", static_cast<int>(kb));
  EXPECT_GT(kb, 0);
  EXPECT_LT(kb, 15 * 1024) << "edged with MQTT and HTTP (no cameras) uses " << kb << " kB";
}
#endif

}  // namespace
}  // namespace edged
