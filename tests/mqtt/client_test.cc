// edged::mqtt::Client against a real mosquitto on a free loopback port: round trips, the last will
// after SIGKILL, reconnect with the queue and retained re-publish after a broker restart, queue
// overflow, TLS with a client certificate, a wrong password, and Stop() with the broker gone.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include "mqtt/client.h"
#include "tests/support/mqtt_test_support.h"

namespace edged::mqtt {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test::MosquittoBroker;
using test::MqttProbe;
using test::PayloadIs;
using Clock = std::chrono::steady_clock;

constexpr const char* kOnline = R"({"state":"online"})";
constexpr const char* kOffline = R"({"state":"offline"})";

template <typename Predicate>
bool WaitUntil(Predicate predicate, milliseconds timeout = milliseconds(5000)) {
  const auto deadline = Clock::now() + timeout;
  while (!predicate()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

// The value of one series in `registry` (NaN when absent).
double Metric(prometheus::Registry& registry, const std::string& name, const std::map<std::string, std::string>& labels = {}) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      bool match = true;
      for (const auto& [key, value] : labels) {
        bool found = false;
        for (const auto& label : metric.label) found = found || (label.name == key && label.value == value);
        match = match && found;
      }
      if (!match) continue;
      return family.type == prometheus::MetricType::Gauge ? metric.gauge.value : metric.counter.value;
    }
  }
  return std::nan("");
}

// Messages a Client handler received, waitable.
class Inbox {
 public:
  Client::Handler Handler() {
    return [this](const Message& m) {
      std::lock_guard lock(mu_);
      messages_.push_back(m);
      cv_.notify_all();
    };
  }
  bool WaitForCount(size_t count, milliseconds timeout = milliseconds(5000)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return messages_.size() >= count; });
  }
  std::vector<Message> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Message> messages_;
};

std::unique_ptr<MosquittoBroker> StartBroker(test::BrokerOptions options = {}) {
  auto broker = MosquittoBroker::Start(std::move(options));
  if (!broker.ok()) {
    ADD_FAILURE() << broker.status().ToString();
    return nullptr;
  }
  return std::move(broker).value();
}

std::unique_ptr<MqttProbe> Probe(const MosquittoBroker& broker, std::vector<std::string> patterns) {
  auto probe = MqttProbe::Connect(broker, std::move(patterns));
  if (!probe.ok()) {
    ADD_FAILURE() << probe.status().ToString() << "\n" << broker.log();
    return nullptr;
  }
  return std::move(probe).value();
}

std::unique_ptr<Client> MakeClient(const config::MqttConfig& config, prometheus::Registry* registry = nullptr) {
  auto client = Client::Create(config, registry);
  if (!client.ok()) {
    ADD_FAILURE() << client.status().ToString();
    return nullptr;
  }
  return std::move(client).value();
}

// A client of `server` (a LoopbackListener's), started; for the tests whose peer is not mosquitto.
std::unique_ptr<Client> StartClientAt(const std::string& server, const std::string& client_id) {
  config::MqttConfig config;
  config.server = server;
  config.client_id = client_id;
  auto client = MakeClient(config);
  if (client && !client->Start().ok()) {
    ADD_FAILURE() << "Start() failed";
    return nullptr;
  }
  return client;
}

std::vector<std::string> Payloads(const std::vector<Message>& messages) {
  std::vector<std::string> out;
  for (const auto& m : messages) out.push_back(m.payload);
  return out;
}

// A TCP socket listening on a port of the loopback address that the kernel picked; closed on scope exit.
class LoopbackListener {
 public:
  LoopbackListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof addr;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 8) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1: " << std::strerror(errno);
      return;
    }
    port_ = ntohs(addr.sin_port);
  }
  ~LoopbackListener() {
    if (fd_ >= 0) ::close(fd_);
  }
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;
  int fd() const { return fd_; }
  std::string server() const { return "mqtt://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(MqttClient, ConnectsAnnouncesOnlineRoundTripsAndGoesOfflineOnStop) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  auto probe = Probe(*broker, {"zigbee2mqtt/#"});
  ASSERT_TRUE(probe);
  prometheus::Registry registry;
  auto client = MakeClient(broker->ClientConfig("edged_roundtrip"), &registry);
  ASSERT_TRUE(client);
  Inbox inbox;
  client->Subscribe("zigbee2mqtt/+/set", 1, inbox.Handler());
  int connected_callbacks = 0;
  client->OnConnected([&] { ++connected_callbacks; });
  ASSERT_TRUE(client->Start().ok());

  auto online = probe->WaitFor("zigbee2mqtt/bridge/state", PayloadIs(kOnline));
  ASSERT_TRUE(online) << probe->Dump();
  EXPECT_EQ(online->qos, 1);
  ASSERT_TRUE(WaitUntil([&] { return client->connected(); }));
  EXPECT_TRUE(client->health().ok());
  EXPECT_EQ(connected_callbacks, 1);
  EXPECT_EQ(Metric(registry, "edged_mqtt_connected"), 1);

  // Broker → client: the handler sees the message on a '+' subscription.
  ASSERT_TRUE(probe->Publish("zigbee2mqtt/lamp/set", R"({"state":"ON"})").ok());
  ASSERT_TRUE(inbox.WaitForCount(1));
  EXPECT_EQ(inbox.messages()[0].topic, "zigbee2mqtt/lamp/set");
  EXPECT_EQ(inbox.messages()[0].payload, R"({"state":"ON"})");
  ASSERT_TRUE(probe->Publish("zigbee2mqtt/lamp/get", "{}").ok());  // not matched: no dispatch

  // Client → broker, QoS 0 and 1, retained.
  client->Publish("zigbee2mqtt/lamp", R"({"state":"ON","brightness":254})", 1, true);
  client->Publish("zigbee2mqtt/lamp/qos0", "x", 0);
  auto lamp = probe->WaitFor("zigbee2mqtt/lamp", PayloadIs(R"({"state":"ON","brightness":254})"));
  ASSERT_TRUE(lamp) << probe->Dump();
  ASSERT_TRUE(probe->WaitFor("zigbee2mqtt/lamp/qos0", PayloadIs("x"))) << probe->Dump();
  EXPECT_EQ(inbox.messages().size(), 1u);
  EXPECT_GE(Metric(registry, "edged_mqtt_messages_received_total"), 1);
  ASSERT_TRUE(WaitUntil([&] { return Metric(registry, "edged_mqtt_messages_sent_total") >= 3; }))
      << Metric(registry, "edged_mqtt_messages_sent_total");  // online + lamp + qos0

  // A retained message reaches a subscriber that arrives later.
  auto late = Probe(*broker, {"zigbee2mqtt/lamp"});
  ASSERT_TRUE(late);
  auto retained = late->WaitFor("zigbee2mqtt/lamp");
  ASSERT_TRUE(retained);
  EXPECT_TRUE(retained->retain);

  // Stop(): offline is published, retained, and no will fires on top of it.
  probe->Clear();
  auto start = Clock::now();
  client->Stop();
  EXPECT_LT(Clock::now() - start, seconds(2));
  auto offline = probe->WaitFor("zigbee2mqtt/bridge/state", PayloadIs(kOffline));
  ASSERT_TRUE(offline) << probe->Dump();
  EXPECT_FALSE(client->connected());
  EXPECT_EQ(client->health().state, HealthState::kFailed);
  EXPECT_EQ(Metric(registry, "edged_mqtt_connected"), 0);
  auto after = Probe(*broker, {"zigbee2mqtt/bridge/state"});
  ASSERT_TRUE(after);
  auto state = after->WaitFor("zigbee2mqtt/bridge/state");
  ASSERT_TRUE(state);
  EXPECT_EQ(state->payload, kOffline);
  EXPECT_TRUE(state->retain);
}

TEST(MqttClient, LastWillIsPublishedWhenTheProcessIsKilled) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  auto probe = Probe(*broker, {"lwt_test/bridge/state"});
  ASSERT_TRUE(probe);
  auto process = test::Subprocess::Start({MQTT_CLIENT_PROCESS, broker->url(), "edged_lwt", "lwt_test"},
                                         broker->dir() / "client_process.log");
  ASSERT_TRUE(process.ok()) << process.status().ToString();
  ASSERT_TRUE(probe->WaitFor("lwt_test/bridge/state", PayloadIs(kOnline))) << probe->Dump();

  (*process)->Signal(SIGKILL);
  ASSERT_TRUE((*process)->Wait(milliseconds(2000)).ok());
  auto will = probe->WaitFor("lwt_test/bridge/state", PayloadIs(kOffline));
  ASSERT_TRUE(will) << probe->Dump() << broker->log();

  // The will is retained: a newcomer learns the bridge is offline.
  auto newcomer = Probe(*broker, {"lwt_test/bridge/state"});
  ASSERT_TRUE(newcomer);
  auto state = newcomer->WaitFor("lwt_test/bridge/state");
  ASSERT_TRUE(state);
  EXPECT_EQ(state->payload, kOffline);
  EXPECT_TRUE(state->retain);
}

TEST(MqttClient, ReconnectsAfterBrokerRestartDeliversQueueInOrderAndRepublishesRetained) {
  auto broker = StartBroker();  // no persistence: the restarted broker has forgotten everything
  ASSERT_TRUE(broker);
  prometheus::Registry registry;
  auto client = MakeClient(broker->ClientConfig("edged_restart"), &registry);
  ASSERT_TRUE(client);
  Inbox inbox;
  client->Subscribe("cmd/#", 1, inbox.Handler());
  ASSERT_TRUE(client->Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return client->connected(); })) << client->health().message;
  client->Publish("state/retained", "v1", 1, true);
  client->Publish("state/cleared", "old", 1, true);
  {
    auto probe = Probe(*broker, {"state/#"});
    ASSERT_TRUE(probe);
    ASSERT_TRUE(probe->WaitFor("state/retained", PayloadIs("v1")));
  }

  broker->Kill();
  ASSERT_TRUE(WaitUntil([&] { return !client->connected(); }));
  for (int i = 1; i <= 5; ++i) client->Publish("queued", std::to_string(i), 1);
  client->Publish("queued/qos0", "lost", 0);  // QoS 0 while away: dropped and counted
  client->Publish("state/retained", "v2", 1, true);
  client->Publish("state/cleared", "", 1, true);  // clears and forgets it
  EXPECT_EQ(Metric(registry, "edged_mqtt_queue_depth"), 6);  // 5 queued + the clear
  EXPECT_EQ(Metric(registry, "edged_mqtt_queue_dropped_total", {{"reason", "offline"}}), 1);
  EXPECT_EQ(client->health().state, HealthState::kFailed);

  // The first retry (1 s after the loss) fails; the next comes 2 s later. Restart the broker and
  // subscribe in that gap, so the probe is there before the client returns.
  ASSERT_TRUE(WaitUntil([&] { return client->health().message.find("retrying in 2s") != std::string::npos; }))
      << client->health().message;
  EXPECT_NE(client->health().message.find("unreachable: Connection refused"), std::string::npos)
      << client->health().message;
  ASSERT_TRUE(broker->Restart().ok()) << broker->log();
  auto probe = Probe(*broker, {"queued/#", "zigbee2mqtt/bridge/state"});
  ASSERT_TRUE(probe);
  ASSERT_FALSE(client->connected()) << "the client came back before the probe subscribed; timing assumption broken";

  auto queued = probe->WaitForCount("queued", 5, milliseconds(6000));
  EXPECT_EQ(Payloads(queued), (std::vector<std::string>{"1", "2", "3", "4", "5"})) << probe->Dump();
  ASSERT_TRUE(probe->WaitFor("zigbee2mqtt/bridge/state", PayloadIs(kOnline))) << probe->Dump();
  ASSERT_TRUE(WaitUntil([&] { return client->connected(); }));
  EXPECT_TRUE(client->health().ok());
  EXPECT_EQ(Metric(registry, "edged_mqtt_reconnects_total"), 1);
  EXPECT_EQ(Metric(registry, "edged_mqtt_connected"), 1);
  EXPECT_EQ(Metric(registry, "edged_mqtt_queue_depth"), 0);
  EXPECT_TRUE(probe->Messages("queued/qos0").empty());

  // Only the client's re-publish can explain a retained value on a broker without persistence.
  auto fresh = Probe(*broker, {"state/#"});
  ASSERT_TRUE(fresh);
  auto retained = fresh->WaitFor("state/retained");
  ASSERT_TRUE(retained) << fresh->Dump();
  EXPECT_EQ(retained->payload, "v2");
  EXPECT_TRUE(retained->retain);
  // The clear was forgotten, not re-published as "old" (the clear itself may still arrive live).
  std::this_thread::sleep_for(milliseconds(200));
  for (const auto& m : fresh->Messages("state/cleared")) EXPECT_EQ(m.payload, "") << fresh->Dump();

  // Subscriptions were renewed on the new broker.
  ASSERT_TRUE(fresh->Publish("cmd/lamp", "on").ok());
  ASSERT_TRUE(inbox.WaitForCount(1)) << "subscription not renewed after reconnect";
  EXPECT_EQ(inbox.messages()[0].payload, "on");
  client->Stop();
}

TEST(MqttClient, QueueOverflowDropsTheOldestAndCounts) {
  const auto port = test::FreeTcpPort();  // nothing listens here yet
  prometheus::Registry registry;
  config::MqttConfig config;
  config.server = "mqtt://127.0.0.1:" + std::to_string(port);
  config.client_id = "edged_overflow";
  config.queue_limit = 3;
  auto client = MakeClient(config, &registry);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Start().ok());
  const std::string expected_health =
      "broker 127.0.0.1:" + std::to_string(port) + " unreachable: Connection refused; retrying in 1s";
  ASSERT_TRUE(WaitUntil([&] { return client->health().message == expected_health; })) << client->health().message;

  for (int i = 1; i <= 5; ++i) client->Publish("q", std::to_string(i), 1);
  EXPECT_EQ(Metric(registry, "edged_mqtt_queue_depth"), 3);
  EXPECT_EQ(Metric(registry, "edged_mqtt_queue_dropped_total", {{"reason", "overflow"}}), 2);

  ASSERT_TRUE(WaitUntil([&] { return client->health().message.find("retrying in 2s") != std::string::npos; }))
      << client->health().message;
  test::BrokerOptions options;
  options.port = port;
  auto broker = StartBroker(options);
  ASSERT_TRUE(broker);
  auto probe = Probe(*broker, {"q"});
  ASSERT_TRUE(probe);
  ASSERT_TRUE(WaitUntil([&] { return client->connected(); }, milliseconds(5000))) << client->health().message;
  client->Publish("q", "end", 1);  // order is kept, so once "end" is there everything before it is
  auto received = probe->WaitForCount("q", 4);
  EXPECT_EQ(Payloads(received), (std::vector<std::string>{"3", "4", "5", "end"})) << probe->Dump();
  EXPECT_EQ(Metric(registry, "edged_mqtt_queue_depth"), 0);
  EXPECT_EQ(Metric(registry, "edged_mqtt_reconnects_total"), 0) << "the first connect is not a reconnect";

  // The limit is for the time the broker is away: a burst while connected is not cut.
  for (int i = 0; i < 20; ++i) client->Publish("q", "burst" + std::to_string(i), 1);
  EXPECT_EQ(probe->WaitForCount("q", 24).size(), 24u) << probe->Dump();
  EXPECT_EQ(Metric(registry, "edged_mqtt_queue_dropped_total", {{"reason", "overflow"}}), 2);
}

TEST(MqttClient, ConnectsOverTlsWithClientCertificate) {
  test::BrokerOptions options;
  options.tls = true;
  options.require_client_certificate = true;
  auto broker = StartBroker(options);
  ASSERT_TRUE(broker);
  auto probe = Probe(*broker, {"zigbee2mqtt/#"});
  ASSERT_TRUE(probe);
  auto config = broker->ClientConfig("edged_tls");
  ASSERT_EQ(config.server.rfind("mqtts://", 0), 0u);
  auto client = MakeClient(config);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Start().ok());
  ASSERT_TRUE(probe->WaitFor("zigbee2mqtt/bridge/state", PayloadIs(kOnline))) << probe->Dump() << broker->log();
  client->Publish("zigbee2mqtt/secure", "hello", 1);
  ASSERT_TRUE(probe->WaitFor("zigbee2mqtt/secure", PayloadIs("hello")));
  client->Stop();

  // A CA that did not sign the server certificate: the handshake fails and health says why.
  auto wrong_ca = broker->ClientConfig("edged_tls_wrong_ca");
  wrong_ca.tls.ca_file = broker->client_cert_file().string();
  auto bad = MakeClient(wrong_ca);
  ASSERT_TRUE(bad);
  ASSERT_TRUE(bad->Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return bad->health().message.find("TLS handshake failed") != std::string::npos; }))
      << bad->health().message;
  EXPECT_NE(bad->health().message.find("certificate verify failed"), std::string::npos) << bad->health().message;
  EXPECT_FALSE(bad->connected());
}

TEST(MqttClient, WrongPasswordGivesAClearHealthMessage) {
  test::BrokerOptions options;
  options.user = "edged";
  options.password = "s3cret";
  auto broker = StartBroker(options);
  ASSERT_TRUE(broker);
  auto config = broker->ClientConfig("edged_wrong_password");
  config.password = "wrong";
  auto client = MakeClient(config);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return client->health().message.find("refused") != std::string::npos; }))
      << client->health().message;
  const std::string message = client->health().message;
  EXPECT_EQ(client->health().state, HealthState::kFailed);
  EXPECT_NE(message.find("broker 127.0.0.1:" + std::to_string(broker->port())), std::string::npos) << message;
  EXPECT_NE(message.find("Not authorized"), std::string::npos) << message;  // MQTT 5 reason code 0x87
  EXPECT_NE(message.find("mqtt.password"), std::string::npos) << message;
  EXPECT_NE(message.find("retrying in"), std::string::npos) << message;
  EXPECT_FALSE(client->connected());
  client->Stop();

  auto good = MakeClient(broker->ClientConfig("edged_right_password"));
  ASSERT_TRUE(good);
  ASSERT_TRUE(good->Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return good->connected(); })) << good->health().message;
}

TEST(MqttClient, StopsWithinTwoSecondsWhenTheBrokerIsGone) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  auto client = MakeClient(broker->ClientConfig("edged_stop_gone"));
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return client->connected(); }));
  broker->Kill();
  client->Publish("pending", "x", 1);
  auto start = Clock::now();
  client->Stop();
  EXPECT_LT(Clock::now() - start, seconds(2));
  EXPECT_FALSE(client->connected());
}

TEST(MqttClient, SkipsItsOwnMessagesOnlyOnSubscriptionsThatAskForIt) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  auto client = MakeClient(broker->ClientConfig("edged_no_local"));
  ASSERT_TRUE(client);
  Inbox skipping;
  Inbox receiving;
  client->Subscribe("own/#", 1, skipping.Handler(), Client::OwnMessages::kSkip);
  client->Subscribe("mirror/#", 1, receiving.Handler());
  ASSERT_TRUE(client->Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return client->connected(); }));
  auto probe = Probe(*broker, {"own/#"});
  ASSERT_TRUE(probe);

  client->Publish("own/mine", "1");
  client->Publish("mirror/mine", "2");
  ASSERT_TRUE(probe->WaitFor("own/mine")) << probe->Dump();  // it did reach the broker
  ASSERT_TRUE(probe->Publish("own/theirs", "3").ok());
  ASSERT_TRUE(skipping.WaitForCount(1));
  ASSERT_TRUE(receiving.WaitForCount(1));
  std::this_thread::sleep_for(milliseconds(200));  // time for an echo that should not come
  ASSERT_EQ(skipping.messages().size(), 1u);
  EXPECT_EQ(skipping.messages()[0].topic, "own/theirs");
  ASSERT_EQ(receiving.messages().size(), 1u);
  EXPECT_EQ(receiving.messages()[0].topic, "mirror/mine");
}

// mosquitto 2 speaks MQTT 5, and no broker from before it is installed here, so a few lines stand in
// for one: like mosquitto 1.5 it refuses a v5 CONNECT with a 3.1.1 CONNACK "unacceptable protocol
// version" and accepts a 3.1.1 CONNECT.
TEST(MqttClient, FallsBackToMqtt311WhenTheBrokerPredatesMqtt5) {
  LoopbackListener listener;
  ASSERT_GE(listener.fd(), 0);
  std::mutex mu;
  std::vector<int> levels;  // the protocol level of each CONNECT
  std::vector<int> open_connections;
  std::thread broker([&] {
    for (int attempt = 0; attempt < 2; ++attempt) {
      int connection = ::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC);
      if (connection < 0) return;
      unsigned char connect[256];
      // Fixed header (2 bytes for a short CONNECT), then "\0\4MQTT" and the level byte.
      ssize_t n = ::recv(connection, connect, sizeof connect, 0);
      const int level = n >= 9 ? connect[8] : -1;
      const unsigned char refused[] = {0x20, 0x02, 0x00, 0x01};
      const unsigned char accepted[] = {0x20, 0x02, 0x00, 0x00};
      {
        std::lock_guard lock(mu);
        levels.push_back(level);
      }
      if (level == 4) {
        ASSERT_EQ(::send(connection, accepted, sizeof accepted, MSG_NOSIGNAL), 4);
        std::lock_guard lock(mu);
        open_connections.push_back(connection);
      } else {
        ASSERT_EQ(::send(connection, refused, sizeof refused, MSG_NOSIGNAL), 4);
        ::close(connection);
      }
    }
  });
  auto client = StartClientAt(listener.server(), "edged_v311");
  ASSERT_TRUE(client);
  EXPECT_TRUE(WaitUntil([&] { return client->connected(); }, milliseconds(3000))) << client->health().message;
  client->Stop();
  ::shutdown(listener.fd(), SHUT_RDWR);  // ends a pending accept
  broker.join();
  for (int connection : open_connections) ::close(connection);
  EXPECT_EQ(levels, (std::vector<int>{5, 4}));
}

TEST(MqttClient, StopsWithinTwoSecondsWhileAConnectHangs) {
  // A socket that listens but never accepts: TCP connects (into the backlog), no CONNACK ever comes.
  LoopbackListener listener;
  ASSERT_GE(listener.fd(), 0);
  auto client = StartClientAt(listener.server(), "edged_stop_hang");
  ASSERT_TRUE(client);
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_FALSE(client->connected());
  EXPECT_NE(client->health().message.find("connecting to broker"), std::string::npos) << client->health().message;
  auto start = Clock::now();
  client->Stop();
  EXPECT_LT(Clock::now() - start, seconds(2));
}

TEST(MqttClient, DetectsAHungBrokerByKeepaliveWithoutBlockingPublish) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  auto config = broker->ClientConfig("edged_keepalive");
  config.keepalive = seconds(5);
  auto client = MakeClient(config);
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return client->connected(); }));
  broker->Pause();  // TCP stays open, nothing answers
  auto start = Clock::now();
  for (int i = 0; i < 1000; ++i) client->Publish("hung/" + std::to_string(i % 10), std::string(100, 'x'), 1);
  EXPECT_LT(Clock::now() - start, milliseconds(500)) << "Publish waited on the broker";
  // No PINGRESP within a keepalive after the PINGREQ: lost within 2 x keepalive.
  ASSERT_TRUE(WaitUntil([&] { return !client->connected(); }, seconds(12))) << client->health().message;
  EXPECT_NE(client->health().message.find("connection lost"), std::string::npos) << client->health().message;
  start = Clock::now();
  client->Stop();
  EXPECT_LT(Clock::now() - start, seconds(2));
  broker->Resume();
}

TEST(MqttClient, PublishIsThreadSafeAndKeepsEachThreadsOrder) {
  auto broker = StartBroker();
  ASSERT_TRUE(broker);
  auto probe = Probe(*broker, {"load/#"});
  ASSERT_TRUE(probe);
  auto client = MakeClient(broker->ClientConfig("edged_threads"));
  ASSERT_TRUE(client);
  ASSERT_TRUE(client->Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return client->connected(); }));
  constexpr int kThreads = 4, kPerThread = 250;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) client->Publish("load/" + std::to_string(t), std::to_string(i), 1);
    });
  }
  for (auto& thread : threads) thread.join();
  auto all = probe->WaitForCount("load/#", kThreads * kPerThread, milliseconds(10000));
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  for (int t = 0; t < kThreads; ++t) {
    auto mine = probe->Messages("load/" + std::to_string(t));
    ASSERT_EQ(mine.size(), static_cast<size_t>(kPerThread));
    for (int i = 0; i < kPerThread; ++i) ASSERT_EQ(mine[i].payload, std::to_string(i)) << "thread " << t;
  }
  client->Stop();
}

}  // namespace
}  // namespace edged::mqtt
