// edged::mqtt::Client over libmosquitto.
//
// Threading: one network thread owns the mosquitto handle; no other thread calls into libmosquitto
// for it. Publish()/Subscribe() only append to `pending_` under a mutex and poke an eventfd, so they
// never wait on the broker. The network thread runs its own poll() over the broker socket and the
// eventfd (libmosquitto's external-loop API) instead of mosquitto_loop_start(), because it needs to
// (a) wake up on our own queue, (b) see why a connect failed (errno, CONNACK code, TLS error) for
// health(), (c) apply our own capped exponential backoff, and (d) stop within 2 s even while a connect
// hangs — mosquitto_loop_forever() reconnects with a blocking connect() that cannot be interrupted.
#include "mqtt/client.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "base/logging.h"
#include "mqtt/client_internal.h"

namespace edged::mqtt {

namespace detail {

std::string ServerAddress::ToString() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

StatusOr<ServerAddress> ParseServerUrl(std::string_view url) {
  auto bad = [&](std::string_view why) {
    return InvalidArgumentError(fmt::format(
        "mqtt.server '{}': {}; expected mqtt://host[:port] or mqtts://host[:port]", url, why));
  };
  ServerAddress address;
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return bad("no scheme");
  std::string_view scheme = url.substr(0, scheme_end);
  if (scheme == "mqtt" || scheme == "tcp") {
    address.tls = false;
    address.port = 1883;
  } else if (scheme == "mqtts" || scheme == "ssl" || scheme == "tls") {
    address.tls = true;
    address.port = 8883;
  } else {
    return bad(fmt::format("unknown scheme '{}'", scheme));
  }
  std::string_view rest = url.substr(scheme_end + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) return bad("a path is not allowed");
  if (rest.find('@') != std::string_view::npos) return bad("put credentials in mqtt.user/mqtt.password");
  std::string_view host = rest;
  std::string_view port;
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    if (close == std::string_view::npos) return bad("unterminated '[' in an IPv6 address");
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return bad("unexpected text after ']'");
      port = after.substr(1);
      if (port.empty()) return bad("empty port");
    }
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (port.empty()) return bad("empty port");
    if (host.find(':') != std::string_view::npos) return bad("write an IPv6 address as [addr]:port");
  }
  if (host.empty()) return bad("no host");
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value < 1 || value > 65535) {
      return bad(fmt::format("port '{}' is not a number in 1..65535", port));
    }
    address.port = static_cast<std::uint16_t>(value);
  }
  address.host = std::string(host);
  return address;
}

std::chrono::seconds BackoffDelay(int failures, std::chrono::seconds min, std::chrono::seconds max) {
  if (min < std::chrono::seconds(1)) min = std::chrono::seconds(1);
  if (max < min) max = min;
  std::chrono::seconds delay = min;
  for (int i = 0; i < failures && delay < max; ++i) delay *= 2;
  return std::min(delay, max);
}

}  // namespace detail

bool TopicMatches(std::string_view pattern, std::string_view topic) {
  // MQTT 3.1.1 §4.7.2: a wildcard at the first level does not match topics starting with '$'.
  if (!topic.empty() && topic.front() == '$' && !pattern.empty() &&
      (pattern.front() == '+' || pattern.front() == '#')) {
    return false;
  }
  constexpr auto npos = std::string_view::npos;
  while (true) {
    const size_t p_slash = pattern.find('/');
    const std::string_view p_level = pattern.substr(0, p_slash);
    if (p_level == "#") return p_slash == npos;  // '#' is only valid last, and matches what is left
    const size_t t_slash = topic.find('/');
    if (p_level != "+" && p_level != topic.substr(0, t_slash)) return false;
    if (p_slash == npos) return t_slash == npos;          // pattern ended: topic must end too
    if (t_slash == npos) return pattern.substr(p_slash + 1) == "#";  // "a/#" also matches "a"
    pattern.remove_prefix(p_slash + 1);
    topic.remove_prefix(t_slash + 1);
  }
}

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

// No CONNACK within this time: give up on the attempt (a port that accepts TCP but speaks no MQTT, a
// TLS/plain mismatch, or a broker that hangs) and back off.
constexpr seconds kConnectTimeout{10};
// Stop(): how long to wait for the broker to acknowledge the offline state, then for the DISCONNECT
// to be written. Together well under the 2 s the Module contract allows.
constexpr milliseconds kOfflineAckTimeout{1000};
constexpr milliseconds kDisconnectTimeout{400};
// The longest poll() while connected; libmosquitto's keepalive needs a regular loop_misc() call.
constexpr int kPollMillis = 1000;
// The longest mosquitto_loop() while connecting, which bounds how long Stop() waits then.
constexpr int kConnectLoopMillis = 100;

void InitMosquittoOnce() {
  // libmosquitto's process-wide init (OpenSSL, random seed) must run once before mosquitto_new();
  // it is reference-counted but not thread-safe, hence the once flag. Never cleaned up: other
  // clients (tests' probes) may still use the library.
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

struct MosquittoDeleter {
  void operator()(mosquitto* handle) const { mosquitto_destroy(handle); }
};
using MosquittoPtr = std::unique_ptr<mosquitto, MosquittoDeleter>;

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) : fd_(fd) {}
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string MosquittoError(int rc, int saved_errno) {
  if (rc == MOSQ_ERR_ERRNO) return saved_errno != 0 ? std::strerror(saved_errno) : "system error";
  return mosquitto_strerror(rc);
}

std::string DefaultClientId() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "edged";
  return std::string("edged_") + host;
}

Status CheckReadable(const std::string& path, std::string_view key) {
  if (path.empty()) return OkStatus();
  if (::access(path.c_str(), R_OK) != 0) {
    return ErrnoStatus(fmt::format("mqtt.tls.{}: cannot read '{}'", key, path), errno);
  }
  return OkStatus();
}

struct Subscription {
  std::string pattern;
  int qos = 0;
  Client::Handler handler;
  Client::OwnMessages own = Client::OwnMessages::kReceive;
};

// What one topic filter is subscribed with; a broker keeps one subscription per filter and client.
struct FilterOptions {
  int qos = 0;
  bool no_local = true;  // only while every subscription to the filter skips its own messages
};

}  // namespace

class Client::Impl {
 public:
  Impl(config::MqttConfig config, Will will, detail::ServerAddress address, bool tls,
       prometheus::Registry* registry)
      : config_(std::move(config)),
        will_(std::move(will)),
        address_(std::move(address)),
        tls_(tls),
        client_id_(config_.client_id.empty() ? DefaultClientId() : config_.client_id),
        log_(Logger("mqtt")) {
    if (registry == nullptr) {
      own_registry_ = std::make_unique<prometheus::Registry>();
      registry = own_registry_.get();
    }
    connected_gauge_ = &prometheus::BuildGauge()
                            .Name("edged_mqtt_connected")
                            .Help("1 while the MQTT client is connected to the broker")
                            .Register(*registry)
                            .Add({});
    reconnects_ = &prometheus::BuildCounter()
                       .Name("edged_mqtt_reconnects_total")
                       .Help("Successful reconnects to the MQTT broker after a lost connection")
                       .Register(*registry)
                       .Add({});
    received_ = &prometheus::BuildCounter()
                     .Name("edged_mqtt_messages_received_total")
                     .Help("MQTT messages received on our subscriptions")
                     .Register(*registry)
                     .Add({});
    sent_ = &prometheus::BuildCounter()
                 .Name("edged_mqtt_messages_sent_total")
                 .Help("MQTT messages sent (QoS 0 written, QoS 1/2 acknowledged by the broker)")
                 .Register(*registry)
                 .Add({});
    queue_depth_ = &prometheus::BuildGauge()
                        .Name("edged_mqtt_queue_depth")
                        .Help("Messages waiting to be handed to the broker connection")
                        .Register(*registry)
                        .Add({});
    auto& dropped = prometheus::BuildCounter()
                        .Name("edged_mqtt_queue_dropped_total")
                        .Help("Messages dropped: reason=overflow (queue_limit reached, oldest dropped), "
                              "reason=offline (QoS 0 published while disconnected)")
                        .Register(*registry);
    dropped_overflow_ = &dropped.Add({{"reason", "overflow"}});
    dropped_offline_ = &dropped.Add({{"reason", "offline"}});
  }

  ~Impl() { Stop(); }

  Status Init() {
    InitMosquittoOnce();
    int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0) return ErrnoStatus("mqtt: eventfd", errno);
    wake_fd_ = std::make_unique<UniqueFd>(fd);

    mosq_.reset(mosquitto_new(client_id_.c_str(), /*clean_session=*/true, this));
    if (!mosq_) return ErrnoStatus("mqtt: mosquitto_new", errno);
    mosquitto* m = mosq_.get();
    // We run our own loop on one thread; this keeps libmosquitto from writing to the socket from
    // inside mosquitto_publish(), so every write happens in loop_write() where errors are handled.
    mosquitto_threaded_set(m, true);
    // MQTT 5 for "no local" subscriptions (see Subscribe); a broker that only speaks 3.1.1 makes the
    // session fall back (RunSession).
    mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    // State updates are small and go out one at a time: Nagle would hold each behind the previous
    // one's acknowledgement.
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_callback_set(m, &Impl::OnConnectThunk);
    mosquitto_disconnect_callback_set(m, &Impl::OnDisconnectThunk);
    mosquitto_publish_callback_set(m, &Impl::OnPublishThunk);
    mosquitto_message_callback_set(m, &Impl::OnMessageThunk);
    mosquitto_log_callback_set(m, &Impl::OnLogThunk);

    if (!config_.user.empty()) {
      int rc = mosquitto_username_pw_set(m, config_.user.c_str(),
                                         config_.password.empty() ? nullptr : config_.password.c_str());
      if (rc != MOSQ_ERR_SUCCESS) {
        return InvalidArgumentError(fmt::format("mqtt.user: {}", mosquitto_strerror(rc)));
      }
    }
    if (!will_.topic.empty()) {
      int rc = mosquitto_will_set(m, will_.topic.c_str(), static_cast<int>(will_.offline_payload.size()),
                                  will_.offline_payload.data(), 1, true);
      if (rc != MOSQ_ERR_SUCCESS) {
        return InvalidArgumentError(
            fmt::format("mqtt: last-will topic '{}': {}", will_.topic, mosquitto_strerror(rc)));
      }
    }
    if (tls_) RETURN_IF_ERROR(SetUpTls());
    return OkStatus();
  }

  Status Start() {
    std::lock_guard lock(mu_);
    if (thread_.joinable() || stop_) {
      return FailedPreconditionError("mqtt: Start() called twice, or after Stop(); create a new Client");
    }
    started_ = true;
    last_error_ = fmt::format("connecting to broker {}", address_.ToString());
    thread_ = std::thread([this] { Run(); });
    return OkStatus();
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    Wake();
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mu_);
    connected_ = false;
    connected_gauge_->Set(0);
    last_error_ = "stopped";
  }

  void Publish(std::string topic, std::string payload, int qos, bool retain) {
    qos = std::clamp(qos, 0, 2);
    if (mosquitto_pub_topic_check(topic.c_str()) != MOSQ_ERR_SUCCESS ||
        mosquitto_validate_utf8(topic.c_str(), static_cast<int>(topic.size())) != MOSQ_ERR_SUCCESS) {
      log_->error("not publishing to invalid topic '{}': a topic must be non-empty UTF-8 without + or #",
                  topic);
      return;
    }
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      if (retain) {
        if (payload.empty()) {
          retained_.erase(topic);
        } else {
          retained_[topic] = Message{topic, payload, qos, true};
        }
      }
      if (!connected_) {
        // A retained value is re-published from `retained_` after the reconnect, newest value only;
        // queueing it too would send it twice. A retained clear must reach the broker, so it queues.
        if (retain && !payload.empty()) return;
        if (qos == 0 && !retain) {
          dropped_offline_->Increment();
          return;
        }
      }
      // Only the first message after a drain needs to wake the network thread: it drains all.
      wake = pending_.empty();
      EnqueueLocked(Message{std::move(topic), std::move(payload), qos, retain});
    }
    if (wake) Wake();
  }

  void Subscribe(std::string pattern, int qos, Handler handler, OwnMessages own) {
    qos = std::clamp(qos, 0, 2);
    if (mosquitto_sub_topic_check(pattern.c_str()) != MOSQ_ERR_SUCCESS) {
      log_->error("not subscribing to invalid pattern '{}': '+' and '#' must fill a whole level, '#' last",
                  pattern);
      return;
    }
    {
      std::lock_guard lock(mu_);
      subscriptions_.push_back(
          std::make_shared<const Subscription>(Subscription{pattern, qos, std::move(handler), own}));
      // While disconnected the next connect subscribes to everything in `subscriptions_`.
      if (!connected_) return;
      // Subscriptions never count against queue_limit and are never dropped. The filter's options
      // cover every subscription to it, as the broker replaces a filter's earlier subscription.
      new_subscriptions_.emplace_back(pattern, FilterOptionsLocked(pattern));
    }
    Wake();
  }

  void OnConnected(std::function<void()> callback) {
    std::lock_guard lock(mu_);
    on_connected_.push_back(std::make_shared<const std::function<void()>>(std::move(callback)));
  }

  bool connected() const {
    std::lock_guard lock(mu_);
    return connected_;
  }

  Health health() const {
    std::lock_guard lock(mu_);
    if (connected_) return Health::Ok();
    if (!started_) return Health::Failed("not started");
    return Health::Failed(last_error_);
  }

  const std::string& base_topic() const { return config_.base_topic; }

 private:
  // ---- called with mu_ held ----
  FilterOptions FilterOptionsLocked(const std::string& pattern) const {
    FilterOptions filter;
    for (const auto& s : subscriptions_) {
      if (s->pattern != pattern) continue;
      filter.qos = std::max(filter.qos, s->qos);
      filter.no_local = filter.no_local && s->own == OwnMessages::kSkip;
    }
    return filter;
  }

  void EnqueueLocked(Message message) {
    // The bound is for the time the broker is away; while connected the network thread drains the
    // queue at once, so even queue_limit 0 (no offline queue) still publishes.
    if (!connected_ && pending_.size() >= config_.queue_limit) {
      dropped_overflow_->Increment();
      if (config_.queue_limit == 0) return;
      pending_.pop_front();
      if (!overflow_logged_) {
        overflow_logged_ = true;
        log_->warn("MQTT queue full ({} messages, mqtt.queue_limit) while the broker is away; dropping the "
                   "oldest messages",
                   config_.queue_limit);
      }
    }
    pending_.push_back(std::move(message));
    queue_depth_->Set(static_cast<double>(pending_.size()));
  }

  // ---- any thread ----
  void Wake() {
    if (!wake_fd_) return;
    uint64_t one = 1;
    // EAGAIN means the counter is already non-zero: the thread is woken anyway.
    [[maybe_unused]] ssize_t n = ::write(wake_fd_->get(), &one, sizeof one);
  }

  bool StopRequested() {
    std::lock_guard lock(mu_);
    return stop_;
  }

  // ---- network thread only below ----
  void Run() {
    int failures = 0;  // failed attempts since the last successful connect
    while (!StopRequested()) {
      bool reached_broker = RunSession();
      if (StopRequested()) break;
      if (reached_broker) failures = 0;
      if (std::exchange(retry_now_, false)) continue;
      seconds delay = detail::BackoffDelay(failures, config_.reconnect_min_delay, config_.reconnect_max_delay);
      ++failures;
      ReportFailure(delay);
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, delay, [this] { return stop_; });
    }
  }

  // One connection: connect, serve until lost or stopped. Returns whether CONNACK accepted us.
  bool RunSession() {
    mosquitto* m = mosq_.get();
    connack_seen_ = false;
    connack_code_ = 0;
    disconnect_errno_ = 0;
    last_lib_error_.clear();
    errno = 0;
    int rc = mosquitto_connect_async(m, address_.host.c_str(), address_.port, static_cast<int>(config_.keepalive.count()));
    if (rc != MOSQ_ERR_SUCCESS) {
      failure_ = DescribeConnectError(rc, errno);
      return false;
    }
    const auto deadline = Clock::now() + kConnectTimeout;
    while (!connack_seen_) {
      if (StopRequested()) {
        mosquitto_disconnect(m);
        return false;
      }
      errno = 0;
      rc = mosquitto_loop(m, kConnectLoopMillis, 1);
      int loop_errno = errno;
      if (connack_seen_) break;
      if (rc != MOSQ_ERR_SUCCESS) {
        failure_ = DescribeConnectError(rc, disconnect_errno_ != 0 ? disconnect_errno_ : loop_errno);
        return false;
      }
      if (Clock::now() > deadline) {
        failure_ = fmt::format("did not answer the MQTT CONNECT within {}s (is it an MQTT port, and "
                               "does mqtts:// match the broker's TLS setting?)",
                               kConnectTimeout.count());
        mosquitto_disconnect(m);
        return false;
      }
    }
    if (connack_code_ != 0) {
      const bool v5 = protocol_ == MQTT_PROTOCOL_V5;
      // A broker from before MQTT 5 refuses a v5 CONNECT with a 3.1.1 CONNACK that libmosquitto reports
      // as this reason code.
      if (v5 && connack_code_ == MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION) return FallBackToV311();
      std::string reason = v5 ? mosquitto_reason_string(connack_code_) : mosquitto_connack_string(connack_code_);
      if (!reason.empty() && reason.back() == '.') reason.pop_back();  // 3.1.1's strings end in one
      failure_ = fmt::format("refused the connection: {}", reason);
      if (connack_code_ == (v5 ? MQTT_RC_BAD_USERNAME_OR_PASSWORD : 4) ||
          connack_code_ == (v5 ? MQTT_RC_NOT_AUTHORIZED : 5)) {
        failure_ += ". Check mqtt.user and mqtt.password (or EDGED_MQTT_PASSWORD / mqtt.password_file)";
      } else if (connack_code_ == (v5 ? MQTT_RC_CLIENTID_NOT_VALID : 2)) {
        failure_ += fmt::format(". Check mqtt.client_id ('{}')", client_id_);
      }
      return false;
    }

    SessionUp();
    while (true) {
      if (StopRequested()) {
        CloseCleanly();
        return true;
      }
      SendPending();
      errno = 0;
      rc = Step(kPollMillis);
      if (rc != MOSQ_ERR_SUCCESS) {
        int err = disconnect_errno_ != 0 ? disconnect_errno_ : errno;
        failure_ = fmt::format("connection lost: {}", MosquittoError(rc, err));
        SessionDown();
        return true;
      }
    }
  }

  // Retries at once with MQTT 3.1.1 and keeps it for this client's life.
  bool FallBackToV311() {
    log_->info("broker {} does not speak MQTT 5; using 3.1.1 (its subscriptions then also receive what it "
               "publishes itself)", address_.ToString());
    protocol_ = MQTT_PROTOCOL_V311;
    mosquitto_int_option(mosq_.get(), MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_disconnect(mosq_.get());
    retry_now_ = true;
    return false;
  }

  std::string DescribeConnectError(int rc, int err) {
    switch (rc) {
      case MOSQ_ERR_ERRNO:
        return fmt::format("unreachable: {}", MosquittoError(rc, err));
      case MOSQ_ERR_EAI:
        return fmt::format("unreachable: cannot resolve host '{}'", address_.host);
      case MOSQ_ERR_TLS:
        return fmt::format("TLS handshake failed: {}; check mqtt.tls.ca_file, cert_file, key_file and "
                           "that the broker speaks TLS on this port",
                           last_lib_error_.empty() ? MosquittoError(rc, err) : last_lib_error_);
      case MOSQ_ERR_CONN_LOST:
        return "closed the connection before answering CONNECT (a TLS port needs mqtts:// or "
               "mqtt.tls.enabled; or the broker rejects this client)";
      default:
        return fmt::format("unreachable: {}", MosquittoError(rc, err));
    }
  }

  // poll() over the broker socket and our eventfd, then let libmosquitto read, write and keep alive.
  int Step(int timeout_ms) {
    mosquitto* m = mosq_.get();
    int sock = mosquitto_socket(m);
    if (sock < 0) return MOSQ_ERR_NO_CONN;
    pollfd fds[2] = {{sock, static_cast<short>(POLLIN | (mosquitto_want_write(m) ? POLLOUT : 0)), 0},
                     {wake_fd_->get(), POLLIN, 0}};
    int n = ::poll(fds, 2, timeout_ms);
    if (n < 0 && errno != EINTR) return MOSQ_ERR_ERRNO;
    if (n > 0 && (fds[1].revents & POLLIN)) {
      uint64_t value;
      [[maybe_unused]] ssize_t r = ::read(wake_fd_->get(), &value, sizeof value);
    }
    if (n > 0 && (fds[0].revents & (POLLIN | POLLERR | POLLHUP))) {
      int rc = mosquitto_loop_read(m, 1);
      if (rc != MOSQ_ERR_SUCCESS) return rc;
    }
    if (n > 0 && (fds[0].revents & POLLOUT) && mosquitto_socket(m) >= 0) {
      int rc = mosquitto_loop_write(m, 1);
      if (rc != MOSQ_ERR_SUCCESS) return rc;
    }
    return mosquitto_loop_misc(m);
  }

  void PublishNow(const Message& message, int* mid = nullptr) {
    int rc = mosquitto_publish(mosq_.get(), mid, message.topic.c_str(), static_cast<int>(message.payload.size()),
                               message.payload.data(), message.qos, message.retain);
    if (rc != MOSQ_ERR_SUCCESS) {
      log_->error("publishing to '{}' failed: {}", message.topic, mosquitto_strerror(rc));
    }
  }

  void SubscribeNow(const std::string& pattern, const FilterOptions& filter) {
    int rc = protocol_ == MQTT_PROTOCOL_V5
                 ? mosquitto_subscribe_v5(mosq_.get(), nullptr, pattern.c_str(), filter.qos,
                                          filter.no_local ? MQTT_SUB_OPT_NO_LOCAL : 0, nullptr)
                 : mosquitto_subscribe(mosq_.get(), nullptr, pattern.c_str(), filter.qos);
    if (rc != MOSQ_ERR_SUCCESS) {
      log_->error("subscribing to '{}' failed: {}", pattern, mosquitto_strerror(rc));
    }
  }

  void SendPending() {
    std::deque<Message> messages;
    std::vector<std::pair<std::string, FilterOptions>> subscriptions;
    {
      std::lock_guard lock(mu_);
      if (pending_.empty() && new_subscriptions_.empty()) return;
      messages.swap(pending_);
      subscriptions.swap(new_subscriptions_);
      queue_depth_->Set(0);
    }
    for (const auto& [pattern, filter] : subscriptions) SubscribeNow(pattern, filter);
    for (const Message& message : messages) PublishNow(message);
  }

  // The order after every connect: online state, subscriptions, retained values, then the queue (so
  // queued messages keep their order), then the OnConnected callbacks.
  void SessionUp() {
    std::deque<Message> queued;
    std::map<std::string, FilterOptions> patterns;
    std::vector<Message> retained;
    std::vector<std::shared_ptr<const std::function<void()>>> callbacks;
    {
      std::lock_guard lock(mu_);
      connected_ = true;
      overflow_logged_ = false;
      last_error_.clear();
      queued.swap(pending_);
      new_subscriptions_.clear();  // covered by `patterns`
      queue_depth_->Set(0);
      for (const auto& s : subscriptions_) patterns.try_emplace(s->pattern, FilterOptionsLocked(s->pattern));
      for (const auto& [topic, message] : retained_) retained.push_back(message);
      callbacks = on_connected_;
    }
    connected_gauge_->Set(1);
    if (ever_connected_) reconnects_->Increment();
    ever_connected_ = true;
    last_reported_failure_.clear();
    log_->info("connected to broker {} as '{}'", address_.ToString(), client_id_);

    if (!will_.topic.empty()) PublishNow(Message{will_.topic, will_.online_payload, 1, true});
    for (const auto& [pattern, filter] : patterns) SubscribeNow(pattern, filter);
    for (const Message& message : retained) PublishNow(message);
    for (const Message& message : queued) PublishNow(message);
    for (const auto& callback : callbacks) {
      try {
        (*callback)();
      } catch (const std::exception& e) {
        log_->error("an OnConnected callback threw: {}", e.what());
      }
    }
  }

  void SessionDown() {
    std::lock_guard lock(mu_);
    connected_ = false;
    connected_gauge_->Set(0);
  }

  // Stop() while connected: queued messages, then the offline state (waiting for its PUBACK so it is
  // really stored), then a clean DISCONNECT so the broker does not also fire the will.
  void CloseCleanly() {
    mosquitto* m = mosq_.get();
    SendPending();
    offline_acked_ = will_.topic.empty();
    offline_mid_ = -1;
    if (!will_.topic.empty()) PublishNow(Message{will_.topic, will_.offline_payload, 1, true}, &offline_mid_);
    auto deadline = Clock::now() + kOfflineAckTimeout;
    while (!offline_acked_ && Clock::now() < deadline) {
      if (Step(RemainingMillis(deadline)) != MOSQ_ERR_SUCCESS) break;
    }
    mosquitto_disconnect(m);
    deadline = Clock::now() + kDisconnectTimeout;
    while (mosquitto_socket(m) >= 0 && Clock::now() < deadline) {
      if (Step(RemainingMillis(deadline)) != MOSQ_ERR_SUCCESS) break;
    }
    SessionDown();
    log_->info("disconnected from broker {}", address_.ToString());
  }

  static int RemainingMillis(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    return static_cast<int>(std::clamp<long long>(left, 0, kPollMillis));
  }

  void ReportFailure(seconds delay) {
    std::string message = fmt::format("broker {} {}; retrying in {}s", address_.ToString(), failure_, delay.count());
    {
      std::lock_guard lock(mu_);
      last_error_ = message;
    }
    // One warning per distinct failure, not one per retry.
    if (failure_ != last_reported_failure_) {
      log_->warn("{}", message);
      last_reported_failure_ = failure_;
    } else {
      log_->debug("{}", message);
    }
  }

  // ---- libmosquitto callbacks: all run on the network thread, inside mosquitto_loop*() ----
  static void OnConnectThunk(mosquitto*, void* self, int rc) {
    auto* impl = static_cast<Impl*>(self);
    impl->connack_seen_ = true;
    impl->connack_code_ = rc;
  }
  static void OnDisconnectThunk(mosquitto*, void* self, int /*rc*/) {
    // Keep errno from the failed read/write before anything else can overwrite it.
    static_cast<Impl*>(self)->disconnect_errno_ = errno;
  }
  static void OnPublishThunk(mosquitto*, void* self, int mid) {
    auto* impl = static_cast<Impl*>(self);
    impl->sent_->Increment();
    if (mid == impl->offline_mid_) impl->offline_acked_ = true;
  }
  static void OnLogThunk(mosquitto*, void* self, int level, const char* text) {
    auto* impl = static_cast<Impl*>(self);
    if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING)) impl->last_lib_error_ = text;
    impl->log_->trace("libmosquitto: {}", text);
  }
  static void OnMessageThunk(mosquitto*, void* self, const mosquitto_message* raw) {
    static_cast<Impl*>(self)->Dispatch(raw);
  }

  void Dispatch(const mosquitto_message* raw) {
    received_->Increment();
    Message message{raw->topic ? raw->topic : "",
                    raw->payloadlen > 0 ? std::string(static_cast<const char*>(raw->payload),
                                                      static_cast<size_t>(raw->payloadlen))
                                        : std::string(),
                    raw->qos, raw->retain};
    std::vector<std::shared_ptr<const Subscription>> subscriptions;
    {
      std::lock_guard lock(mu_);
      subscriptions = subscriptions_;
    }
    for (const auto& s : subscriptions) {
      if (!TopicMatches(s->pattern, message.topic)) continue;
      try {
        s->handler(message);
      } catch (const std::exception& e) {
        log_->error("handler for '{}' threw on topic '{}': {}", s->pattern, message.topic, e.what());
      }
    }
  }

  Status SetUpTls() {
    const auto& tls = config_.tls;
    RETURN_IF_ERROR(CheckReadable(tls.ca_file, "ca_file"));
    RETURN_IF_ERROR(CheckReadable(tls.cert_file, "cert_file"));
    RETURN_IF_ERROR(CheckReadable(tls.key_file, "key_file"));
    if (tls.cert_file.empty() != tls.key_file.empty()) {
      return InvalidArgumentError("mqtt.tls: cert_file and key_file go together; set both or neither");
    }
    mosquitto* m = mosq_.get();
    if (tls.ca_file.empty()) mosquitto_int_option(m, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
    int rc = mosquitto_tls_set(m, tls.ca_file.empty() ? nullptr : tls.ca_file.c_str(),
                               tls.ca_file.empty() ? "/etc/ssl/certs" : nullptr,
                               tls.cert_file.empty() ? nullptr : tls.cert_file.c_str(),
                               tls.key_file.empty() ? nullptr : tls.key_file.c_str(), nullptr);
    if (rc != MOSQ_ERR_SUCCESS) {
      return InvalidArgumentError(fmt::format("mqtt.tls: {}", mosquitto_strerror(rc)));
    }
    if (tls.insecure) mosquitto_tls_insecure_set(m, true);
    return OkStatus();
  }

  const config::MqttConfig config_;
  const Will will_;
  const detail::ServerAddress address_;
  const bool tls_;
  const std::string client_id_;
  std::shared_ptr<spdlog::logger> log_;

  std::unique_ptr<prometheus::Registry> own_registry_;  // when the caller gave none
  prometheus::Gauge* connected_gauge_;
  prometheus::Counter* reconnects_;
  prometheus::Counter* received_;
  prometheus::Counter* sent_;
  prometheus::Gauge* queue_depth_;
  prometheus::Counter* dropped_overflow_;
  prometheus::Counter* dropped_offline_;

  MosquittoPtr mosq_;
  std::unique_ptr<UniqueFd> wake_fd_;
  std::thread thread_;

  mutable std::mutex mu_;  // guards everything below up to the network-thread-only block
  std::condition_variable cv_;
  bool started_ = false;
  bool stop_ = false;
  bool connected_ = false;
  bool overflow_logged_ = false;
  std::string last_error_;
  std::deque<Message> pending_;  // bounded by queue_limit
  std::vector<std::pair<std::string, FilterOptions>> new_subscriptions_;  // made while connected, not yet sent
  std::map<std::string, Message> retained_;
  std::vector<std::shared_ptr<const Subscription>> subscriptions_;
  std::vector<std::shared_ptr<const std::function<void()>>> on_connected_;

  // Network thread only.
  bool connack_seen_ = false;
  int connack_code_ = 0;
  int protocol_ = MQTT_PROTOCOL_V5;  // network thread only after Start()
  bool retry_now_ = false;           // network thread only
  int disconnect_errno_ = 0;
  std::string last_lib_error_;
  std::string failure_;
  std::string last_reported_failure_;
  bool ever_connected_ = false;
  int offline_mid_ = -1;
  bool offline_acked_ = false;
};

StatusOr<std::unique_ptr<Client>> Client::Create(const config::MqttConfig& config, prometheus::Registry* registry) {
  Will will{config.base_topic + "/bridge/state", R"({"state":"offline"})", R"({"state":"online"})"};
  return Create(config, std::move(will), registry);
}

StatusOr<std::unique_ptr<Client>> Client::Create(const config::MqttConfig& config, Will will,
                                                 prometheus::Registry* registry) {
  ASSIGN_OR_RETURN(detail::ServerAddress address, detail::ParseServerUrl(config.server));
  if (config.qos < 0 || config.qos > 2) {
    return InvalidArgumentError(fmt::format("mqtt.qos: {} is not 0, 1 or 2", config.qos));
  }
  auto keepalive = config.keepalive.count();
  if (keepalive != 0 && (keepalive < 5 || keepalive > 65535)) {
    return InvalidArgumentError(fmt::format("mqtt.keepalive: {}s; expected 0 (off) or 5..65535 s", keepalive));
  }
  if (config.reconnect_min_delay.count() < 1 || config.reconnect_max_delay < config.reconnect_min_delay) {
    return InvalidArgumentError(fmt::format(
        "mqtt.reconnect_min_delay ({}s) must be >= 1s and <= mqtt.reconnect_max_delay ({}s)",
        config.reconnect_min_delay.count(), config.reconnect_max_delay.count()));
  }
  if (config.base_topic.empty() || mosquitto_pub_topic_check(config.base_topic.c_str()) != MOSQ_ERR_SUCCESS) {
    return InvalidArgumentError(
        fmt::format("mqtt.base_topic '{}': must be a non-empty topic without + or #", config.base_topic));
  }
  if (!will.topic.empty() && mosquitto_pub_topic_check(will.topic.c_str()) != MOSQ_ERR_SUCCESS) {
    return InvalidArgumentError(fmt::format("mqtt: last-will topic '{}' is not a valid topic", will.topic));
  }
  bool tls = address.tls || config.tls.enabled;
  auto impl = std::make_unique<Impl>(config, std::move(will), std::move(address), tls, registry);
  RETURN_IF_ERROR(impl->Init());
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Status Client::Start() { return impl_->Start(); }
void Client::Stop() { impl_->Stop(); }
void Client::Publish(std::string topic, std::string payload, int qos, bool retain) {
  impl_->Publish(std::move(topic), std::move(payload), qos, retain);
}
void Client::Subscribe(std::string pattern, int qos, Handler handler, OwnMessages own) {
  impl_->Subscribe(std::move(pattern), qos, std::move(handler), own);
}
void Client::OnConnected(std::function<void()> callback) { impl_->OnConnected(std::move(callback)); }
bool Client::connected() const { return impl_->connected(); }
Health Client::health() const { return impl_->health(); }
const std::string& Client::base_topic() const { return impl_->base_topic(); }

}  // namespace edged::mqtt
