// The MQTT client's pure parts, table-driven: topic matching, broker URLs, backoff, config checks.
#include <chrono>
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "mqtt/client.h"
#include "mqtt/client_internal.h"

namespace edged::mqtt {
namespace {

using std::chrono::seconds;

struct MatchCase {
  const char* pattern;
  const char* topic;
  bool matches;
};

TEST(MqttTopicMatches, Table) {
  const MatchCase cases[] = {
      {"a/b", "a/b", true},
      {"a/b", "a/c", false},
      {"a/b", "a/b/c", false},
      {"a/b/c", "a/b", false},
      {"a/+", "a/b", true},
      {"a/+", "a/", true},  // '+' matches an empty level
      {"a/+", "a/b/c", false},
      {"a/+", "a", false},
      {"+/b", "a/b", true},
      {"+/+", "a/b", true},
      {"+", "a", true},
      {"+", "a/b", false},
      {"+", "", true},
      {"a/#", "a", true},  // '#' also matches the parent level
      {"a/#", "a/b", true},
      {"a/#", "a/b/c", true},
      {"a/#", "ab", false},
      {"a/#", "b/a", false},
      {"#", "a/b/c", true},
      {"#", "/", true},
      {"a/+/c/#", "a/x/c", true},
      {"a/+/c/#", "a/x/c/d/e", true},
      {"a/+/c/#", "a/x/d/e", false},
      {"zigbee2mqtt/+/set", "zigbee2mqtt/lamp/set", true},
      {"zigbee2mqtt/+/set", "zigbee2mqtt/lamp/get", false},
      {"zigbee2mqtt/bridge/request/#", "zigbee2mqtt/bridge/request/permit_join", true},
      {"/a", "/a", true},
      {"/+", "/a", true},
      {"+/a", "/a", true},  // the empty first level is a level
      // $-topics are not matched by a leading wildcard (MQTT 3.1.1 §4.7.2), only explicitly.
      {"#", "$SYS/broker/uptime", false},
      {"+/broker/uptime", "$SYS/broker/uptime", false},
      {"$SYS/#", "$SYS/broker/uptime", true},
      {"$SYS/+/uptime", "$SYS/broker/uptime", true},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(TopicMatches(c.pattern, c.topic), c.matches) << "pattern '" << c.pattern << "' topic '" << c.topic << "'";
  }
}

TEST(MqttServerUrl, ParsesSchemesHostsAndPorts) {
  struct Case {
    const char* url;
    const char* host;
    int port;
    bool tls;
  };
  const Case cases[] = {
      {"mqtt://127.0.0.1:1883", "127.0.0.1", 1883, false},
      {"mqtt://broker.lan", "broker.lan", 1883, false},
      {"mqtts://broker.lan", "broker.lan", 8883, true},
      {"mqtts://broker.lan:9999", "broker.lan", 9999, true},
      {"tcp://host:1", "host", 1, false},
      {"ssl://host", "host", 8883, true},
      {"mqtt://[::1]:1884", "::1", 1884, false},
      {"mqtt://[fe80::1]", "fe80::1", 1883, false},
      {"mqtt://host:65535/", "host", 65535, false},
  };
  for (const auto& c : cases) {
    auto parsed = detail::ParseServerUrl(c.url);
    ASSERT_TRUE(parsed.ok()) << c.url << ": " << parsed.status().ToString();
    EXPECT_EQ(parsed->host, c.host) << c.url;
    EXPECT_EQ(parsed->port, c.port) << c.url;
    EXPECT_EQ(parsed->tls, c.tls) << c.url;
  }
  EXPECT_EQ(detail::ParseServerUrl("mqtt://[::1]:1884")->ToString(), "[::1]:1884");
  EXPECT_EQ(detail::ParseServerUrl("mqtt://h")->ToString(), "h:1883");
}

TEST(MqttServerUrl, RejectsBadUrlsWithTheReason) {
  struct Case {
    const char* url;
    const char* reason;
  };
  const Case cases[] = {
      {"127.0.0.1:1883", "no scheme"},
      {"http://host", "unknown scheme 'http'"},
      {"mqtt://", "no host"},
      {"mqtt://:1883", "no host"},
      {"mqtt://host:", "empty port"},
      {"mqtt://host:0", "not a number in 1..65535"},
      {"mqtt://host:65536", "not a number in 1..65535"},
      {"mqtt://host:12ab", "not a number"},
      {"mqtt://host/path", "path"},
      {"mqtt://user:pw@host", "mqtt.user"},
      {"mqtt://[::1", "unterminated"},
      {"mqtt://::1:1883", "[addr]:port"},
  };
  for (const auto& c : cases) {
    auto parsed = detail::ParseServerUrl(c.url);
    ASSERT_FALSE(parsed.ok()) << c.url;
    EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument) << c.url;
    EXPECT_NE(parsed.status().message().find(c.reason), std::string::npos) << c.url << ": " << parsed.status().ToString();
    EXPECT_NE(parsed.status().message().find(c.url), std::string::npos) << "names the bad value";
  }
}

TEST(MqttBackoff, DoublesFromMinAndCapsAtMax) {
  EXPECT_EQ(detail::BackoffDelay(0, seconds(1), seconds(60)), seconds(1));
  EXPECT_EQ(detail::BackoffDelay(1, seconds(1), seconds(60)), seconds(2));
  EXPECT_EQ(detail::BackoffDelay(2, seconds(1), seconds(60)), seconds(4));
  EXPECT_EQ(detail::BackoffDelay(5, seconds(1), seconds(60)), seconds(32));
  EXPECT_EQ(detail::BackoffDelay(6, seconds(1), seconds(60)), seconds(60));
  EXPECT_EQ(detail::BackoffDelay(1000, seconds(1), seconds(60)), seconds(60));  // no overflow
  EXPECT_EQ(detail::BackoffDelay(1, seconds(5), seconds(7)), seconds(7));
  EXPECT_EQ(detail::BackoffDelay(0, seconds(0), seconds(0)), seconds(1));  // never a busy loop
}

TEST(MqttClientCreate, RejectsBadConfigurationWithTheKey) {
  struct Case {
    const char* what;
    std::function<void(config::MqttConfig&)> change;
    const char* key;
  };
  const Case cases[] = {
      {"bad url", [](auto& c) { c.server = "broker:1883"; }, "mqtt.server"},
      {"qos 3", [](auto& c) { c.qos = 3; }, "mqtt.qos"},
      {"keepalive 2s", [](auto& c) { c.keepalive = seconds(2); }, "mqtt.keepalive"},
      {"min delay 0", [](auto& c) { c.reconnect_min_delay = seconds(0); }, "mqtt.reconnect_min_delay"},
      {"max < min", [](auto& c) { c.reconnect_max_delay = seconds(0); }, "mqtt.reconnect_max_delay"},
      {"wildcard base topic", [](auto& c) { c.base_topic = "z2m/#"; }, "mqtt.base_topic"},
      {"empty base topic", [](auto& c) { c.base_topic = ""; }, "mqtt.base_topic"},
      {"missing CA file",
       [](auto& c) {
         c.server = "mqtts://host";
         c.tls.ca_file = "/nonexistent/ca.crt";
       },
       "mqtt.tls.ca_file"},
      {"cert without key",
       [](auto& c) {
         c.tls.enabled = true;
         c.tls.ca_file = "/etc/hostname";
         c.tls.cert_file = "/etc/hostname";
       },
       "cert_file and key_file"},
  };
  for (const auto& c : cases) {
    config::MqttConfig config;
    c.change(config);
    auto client = Client::Create(config, nullptr);
    ASSERT_FALSE(client.ok()) << c.what;
    EXPECT_NE(client.status().message().find(c.key), std::string::npos) << c.what << ": " << client.status().ToString();
  }
  config::MqttConfig good;
  auto client = Client::Create(good, nullptr);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_EQ((*client)->base_topic(), "zigbee2mqtt");
  EXPECT_FALSE((*client)->connected());
  EXPECT_EQ((*client)->health().state, HealthState::kFailed);
  EXPECT_EQ((*client)->health().message, "not started");
  (*client)->Stop();  // safe without Start()
}

}  // namespace
}  // namespace edged::mqtt
