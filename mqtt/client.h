// The MQTT client every module publishes through: one connection to the broker (libmosquitto behind a
// pimpl), with last will, automatic reconnect with capped exponential backoff, retained messages
// re-published after each reconnect, and a bounded queue for QoS>=1 messages published while the broker
// is away. Publishing never blocks on the broker.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/module.h"
#include "base/status.h"
#include "config/config.h"

namespace prometheus {
class Registry;
}

namespace edged::mqtt {

struct Message {
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retain = false;
};

// The will: published by the broker for us when the connection is lost without a clean disconnect.
// zigbee2mqtt uses <base>/bridge/state with {"state":"offline"}; Client::Create defaults to that.
struct Will {
  std::string topic;
  std::string offline_payload;  // published by the broker on an unclean loss, and by us on Stop()
  std::string online_payload;   // published (retained) after every successful connect
};

class Client {
 public:
  using Handler = std::function<void(const Message&)>;

  // Validates the configuration (URL, TLS files, credentials) and registers the client's metrics
  // (edged_mqtt_connected, _reconnects_total, _messages_received_total, _messages_sent_total,
  // _queue_depth, _queue_dropped_total) in `registry` when given. Does not connect yet.
  static StatusOr<std::unique_ptr<Client>> Create(const config::MqttConfig& config,
                                                    prometheus::Registry* registry);
  static StatusOr<std::unique_ptr<Client>> Create(const config::MqttConfig& config, Will will,
                                                    prometheus::Registry* registry);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts the network thread; connecting and reconnecting happen there. Returns at once. The first
  // attempt is immediate; after a failure or a lost connection the delay doubles from
  // reconnect_min_delay up to reconnect_max_delay, and resets after a successful connect.
  // FailedPrecondition when called twice or after Stop() (create a new Client instead).
  Status Start();
  // Sends what is queued, publishes the will's offline payload (waiting up to 1 s for the broker's
  // acknowledgement), disconnects cleanly and joins the network thread (≤ 2 s, broker present or
  // not). Idempotent; safe without Start(). Never call it from a Handler or OnConnected callback.
  void Stop();

  // Thread-safe, never blocks on the network. retain=true messages are remembered per topic (an empty
  // retained payload clears the topic and forgets it) and re-published after every reconnect. QoS>=1
  // messages published while disconnected are queued (bounded by queue_limit; the oldest is dropped and
  // counted); QoS 0 messages published while disconnected are dropped and counted.
  // After a reconnect the order is: online state, subscriptions, retained values (newest per topic;
  // a retained value published while disconnected is sent once, from the retained set), then the
  // queue in publish order. Messages from one thread keep their order. An invalid topic (empty,
  // containing + or #, bad UTF-8) is logged and dropped. Safe to call before Start().
  void Publish(std::string topic, std::string payload, int qos = 1, bool retain = false);

  // Adds a subscription (MQTT wildcards + and # allowed), kept across reconnects. Handlers run on the
  // network thread, in arrival order, and must not block; hand heavy work to your own queue.
  // Handlers may call Publish() and Subscribe(). Every handler whose pattern matches a message gets
  // it; with overlapping patterns the broker may also deliver the message twice. Safe before Start().
  // OwnMessages::kSkip asks the broker not to send back what this client publishes (MQTT 5 "no local"):
  // a bridge subscribed to its own base topic would otherwise read every state it sends. It is a
  // saving, not a filter: a 3.1.1-only broker, or an overlapping pattern without it, still echoes them.
  enum class OwnMessages { kReceive, kSkip };
  void Subscribe(std::string pattern, int qos, Handler handler, OwnMessages own = OwnMessages::kReceive);

  // Called on the network thread after every successful (re)connect, after subscriptions and retained
  // messages were re-sent.
  void OnConnected(std::function<void()> callback);

  bool connected() const;
  // ok when connected; failed with the last error while not, e.g.
  // "broker 127.0.0.1:1883 unreachable: Connection refused; retrying in 4s",
  // "broker h:1883 refused the connection: Not authorized. Check mqtt.user ...".
  Health health() const;
  const std::string& base_topic() const;

  class Impl;

 private:
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// True when `topic` matches the MQTT subscription `pattern` (+ one level, # the rest).
bool TopicMatches(std::string_view pattern, std::string_view topic);

}  // namespace edged::mqtt
