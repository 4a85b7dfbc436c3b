#include "tests/support/mqtt_test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>
#include <mosquitto.h>

namespace edged::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kMosquittoBinary = "/usr/sbin/mosquitto";

std::string ReadFileOr(const std::filesystem::path& path, std::string fallback) {
  std::ifstream in(path);
  if (!in) return fallback;
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

Status WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) return ErrnoStatus("write " + path.string(), errno);
  return OkStatus();
}

std::string Tail(const std::string& text, size_t max = 2000) {
  return text.size() <= max ? text : "..." + text.substr(text.size() - max);
}

bool AcceptsConnections(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

void InitMosquittoOnce() {
  // Not thread-safe in libmosquitto; edged's Client does the same once (init is reference-counted).
  static std::once_flag once;
  std::call_once(once, [] { mosquitto_lib_init(); });
}

std::string CurrentUserName() {
  passwd* entry = ::getpwuid(::geteuid());
  return entry != nullptr ? entry->pw_name : "root";
}

}  // namespace

// ---------------------------------------------------------------------------------------------------

std::uint16_t FreeTcpPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("FreeTcpPort: socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error(std::string("FreeTcpPort: bind 127.0.0.1:0: ") + std::strerror(err));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

TempDir::TempDir(std::string_view prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = fmt::format("{}/{}-XXXXXX", base != nullptr && *base != '\0' ? base : "/tmp", prefix);
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error(fmt::format("TempDir: mkdtemp {}: {}", pattern, std::strerror(errno)));
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

// ---------------------------------------------------------------------------------------------------

StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(std::vector<std::string> argv,
                                                        std::filesystem::path log_file) {
  if (argv.empty()) return InvalidArgumentError("Subprocess::Start: empty argv");
  // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (auto& arg : argv) args.push_back(arg.data());
  args.push_back(nullptr);
  std::string log_path = log_file.empty() ? "/dev/null" : log_file.string();
  const pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) return ErrnoStatus("fork for " + argv[0], errno);
  if (pid == 0) {
    // Die with the test process, even when it crashes.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (log_fd >= 0) {
      ::dup2(log_fd, STDOUT_FILENO);
      ::dup2(log_fd, STDERR_FILENO);
    }
    int null_fd = ::open("/dev/null", O_RDONLY);
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    // The test's sockets must not live on in the child: a client's connection inherited by a
    // broker would stay open after the client closed it.
    ::close_range(3, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  return std::unique_ptr<Subprocess>(new Subprocess(pid));
}

Subprocess::~Subprocess() { Kill(); }

bool Subprocess::running() {
  if (exit_code_) return false;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return r == 0;
}

void Subprocess::Signal(int signal_number) const {
  if (!exit_code_) ::kill(pid_, signal_number);
}

StatusOr<int> Subprocess::Wait(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (running()) {
    if (Clock::now() >= deadline) {
      return DeadlineExceededError(fmt::format("process {} still running after {} ms", pid_, timeout.count()));
    }
    std::this_thread::sleep_for(milliseconds(5));
  }
  if (!exit_code_) return InternalError(fmt::format("waitpid {}: {}", pid_, std::strerror(errno)));
  return *exit_code_;
}

void Subprocess::Kill() {
  if (exit_code_) return;
  ::kill(pid_, SIGKILL);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_code_ = 128 + SIGKILL;
}

Status RunCommand(std::vector<std::string> argv, milliseconds timeout) {
  TempDir dir("edged-cmd");
  auto log = dir.path() / "output.log";
  std::string command;
  for (const auto& arg : argv) command += (command.empty() ? "" : " ") + arg;
  ASSIGN_OR_RETURN(auto process, Subprocess::Start(std::move(argv), log));
  auto code = process->Wait(timeout);
  if (!code.ok()) return code.status().WithContext(command);
  if (*code != 0) {
    return InternalError(fmt::format("'{}' exited with {}: {}", command, *code, Tail(ReadFileOr(log, ""))));
  }
  return OkStatus();
}

// ---------------------------------------------------------------------------------------------------

StatusOr<std::unique_ptr<MosquittoBroker>> MosquittoBroker::Start(BrokerOptions options) {
  if (options.port == 0) options.port = FreeTcpPort();
  std::unique_ptr<MosquittoBroker> broker(new MosquittoBroker(std::move(options)));
  RETURN_IF_ERROR(broker->Prepare());
  RETURN_IF_ERROR(broker->Launch());
  return broker;
}

MosquittoBroker::~MosquittoBroker() { Kill(); }

std::string MosquittoBroker::url() const {
  return fmt::format("{}://127.0.0.1:{}", options_.tls ? "mqtts" : "mqtt", options_.port);
}

std::filesystem::path MosquittoBroker::ca_file() const { return options_.tls ? dir() / "ca.crt" : ""; }
std::filesystem::path MosquittoBroker::client_cert_file() const { return options_.tls ? dir() / "client.crt" : ""; }
std::filesystem::path MosquittoBroker::client_key_file() const { return options_.tls ? dir() / "client.key" : ""; }

config::MqttConfig MosquittoBroker::ClientConfig(std::string client_id) const {
  config::MqttConfig config;
  config.server = url();
  config.client_id = std::move(client_id);
  config.user = options_.user;
  config.password = options_.password;
  config.reconnect_min_delay = std::chrono::seconds(1);
  config.reconnect_max_delay = std::chrono::seconds(4);
  if (options_.tls) {
    config.tls.enabled = true;
    config.tls.ca_file = ca_file().string();
    config.tls.cert_file = client_cert_file().string();
    config.tls.key_file = client_key_file().string();
  }
  return config;
}

Status MosquittoBroker::Prepare() {
  const auto& d = dir();
  std::string conf = fmt::format(
      "# generated by edged's MosquittoBroker test helper\n"
      "listener {} 127.0.0.1\n"
      "user {}\n"
      "log_dest stderr\n"
      "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n"
      "log_timestamp true\n",
      options_.port, CurrentUserName());
  if (options_.persistence) {
    conf += fmt::format("persistence true\npersistence_location {}/\n", d.string());
  } else {
    conf += "persistence false\n";
  }
  if (options_.user.empty()) {
    conf += "allow_anonymous true\n";
  } else {
    RETURN_IF_ERROR(WriteFile(d / "passwd", ""));
    RETURN_IF_ERROR(RunCommand({"mosquitto_passwd", "-b", (d / "passwd").string(), options_.user, options_.password}));
    conf += fmt::format("allow_anonymous false\npassword_file {}\n", (d / "passwd").string());
  }
  if (options_.tls) {
    const std::string ec = "ec_paramgen_curve:prime256v1";
    auto p = [&](const char* name) { return (d / name).string(); };
    RETURN_IF_ERROR(RunCommand({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", ec, "-nodes", "-keyout",
                                p("ca.key"), "-out", p("ca.crt"), "-days", "2", "-subj", "/CN=edged test CA"}));
    RETURN_IF_ERROR(WriteFile(d / "server.ext",
                              "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
                              "extendedKeyUsage=serverAuth\n"));
    RETURN_IF_ERROR(WriteFile(d / "client.ext", "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"));
    for (const char* who : {"server", "client"}) {
      std::string name = who;
      RETURN_IF_ERROR(RunCommand({"openssl", "req", "-newkey", "ec", "-pkeyopt", ec, "-nodes", "-keyout",
                                  p((name + ".key").c_str()), "-out", p((name + ".csr").c_str()), "-subj",
                                  name == "server" ? "/CN=localhost" : "/CN=edged-test-client"}));
      RETURN_IF_ERROR(RunCommand({"openssl", "x509", "-req", "-in", p((name + ".csr").c_str()), "-CA", p("ca.crt"),
                                  "-CAkey", p("ca.key"), "-CAcreateserial", "-days", "2", "-extfile",
                                  p((name + ".ext").c_str()), "-out", p((name + ".crt").c_str())}));
    }
    conf += fmt::format("cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate {}\n", p("ca.crt"), p("server.crt"),
                        p("server.key"), options_.require_client_certificate ? "true" : "false");
  }
  return WriteFile(d / "mosquitto.conf", conf);
}

Status MosquittoBroker::Launch() {
  ASSIGN_OR_RETURN(process_, Subprocess::Start({kMosquittoBinary, "-c", (dir() / "mosquitto.conf").string()},
                                               dir() / "mosquitto.log"));
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  while (Clock::now() < deadline) {
    if (!process_->running()) {
      return UnavailableError(fmt::format("mosquitto on 127.0.0.1:{} exited at start-up: {}", options_.port,
                                          Tail(log())));
    }
    if (AcceptsConnections(options_.port)) return OkStatus();
    std::this_thread::sleep_for(milliseconds(10));
  }
  return DeadlineExceededError(
      fmt::format("mosquitto did not accept connections on 127.0.0.1:{} within 5 s: {}", options_.port, Tail(log())));
}

void MosquittoBroker::Pause() {
  if (process_) process_->Signal(SIGSTOP);
}

void MosquittoBroker::Resume() {
  if (process_) process_->Signal(SIGCONT);
}

Status MosquittoBroker::Stop() {
  if (!process_) return OkStatus();
  process_->Signal(SIGCONT);  // a paused broker would not act on SIGTERM
  process_->Signal(SIGTERM);
  auto code = process_->Wait(std::chrono::seconds(5));
  if (!code.ok()) {
    process_->Kill();
    process_.reset();
    return code.status().WithContext("mosquitto ignored SIGTERM; killed it");
  }
  process_.reset();
  return OkStatus();
}

void MosquittoBroker::Kill() {
  if (process_) process_->Kill();
  process_.reset();
}

Status MosquittoBroker::Restart() {
  RETURN_IF_ERROR(Stop());
  return Launch();
}

bool MosquittoBroker::running() { return process_ && process_->running(); }

std::string MosquittoBroker::log() const { return ReadFileOr(dir() / "mosquitto.log", "(no log)"); }

// ---------------------------------------------------------------------------------------------------

std::function<bool(const mqtt::Message&)> PayloadIs(std::string payload) {
  return [payload = std::move(payload)](const mqtt::Message& m) { return m.payload == payload; };
}

nlohmann::json PayloadJson(const mqtt::Message& m) { return nlohmann::json::parse(m.payload, nullptr, false); }

nlohmann::json PayloadJson(const std::optional<mqtt::Message>& m) { return m ? PayloadJson(*m) : nlohmann::json(); }

std::function<bool(const mqtt::Message&)> PayloadContains(std::string text) {
  return [text = std::move(text)](const mqtt::Message& m) { return m.payload.find(text) != std::string::npos; };
}

std::map<std::string, std::string> RetainedMessages(const MosquittoBroker& broker, const std::string& pattern,
                                                    milliseconds wait) {
  std::map<std::string, std::string> out;
  auto probe = MqttProbe::Connect(broker, {pattern});
  if (!probe.ok()) return out;
  std::this_thread::sleep_for(wait);
  for (const auto& m : (*probe)->Messages(pattern)) out[m.topic] = m.payload;
  return out;
}

struct MqttProbe::State {
  mosquitto* mosq = nullptr;
  bool loop_started = false;
  mutable std::mutex mu;
  std::condition_variable cv;
  int connack = -1;  // -1 until the CONNACK arrived
  int subacks = 0;
  std::vector<int> published_mids;
  std::vector<mqtt::Message> messages;

  ~State() {
    if (mosq == nullptr) return;
    mosquitto_disconnect(mosq);
    if (loop_started) mosquitto_loop_stop(mosq, false);
    mosquitto_destroy(mosq);
  }

  // libmosquitto callbacks, on the probe's network thread.
  static void OnConnect(mosquitto*, void* self, int rc) {
    auto* state = static_cast<State*>(self);
    std::lock_guard lock(state->mu);
    state->connack = rc;
    state->cv.notify_all();
  }
  static void OnSubscribe(mosquitto*, void* self, int, int, const int*) {
    auto* state = static_cast<State*>(self);
    std::lock_guard lock(state->mu);
    ++state->subacks;
    state->cv.notify_all();
  }
  static void OnPublish(mosquitto*, void* self, int mid) {
    auto* state = static_cast<State*>(self);
    std::lock_guard lock(state->mu);
    state->published_mids.push_back(mid);
    state->cv.notify_all();
  }
  static void OnMessage(mosquitto*, void* self, const mosquitto_message* raw) {
    auto* state = static_cast<State*>(self);
    mqtt::Message message{raw->topic,
                          raw->payloadlen > 0 ? std::string(static_cast<const char*>(raw->payload),
                                                            static_cast<size_t>(raw->payloadlen))
                                              : std::string(),
                          raw->qos, raw->retain};
    std::lock_guard lock(state->mu);
    state->messages.push_back(std::move(message));
    state->cv.notify_all();
  }
};

MqttProbe::MqttProbe() : state_(std::make_unique<State>()) {}
MqttProbe::~MqttProbe() = default;

StatusOr<std::unique_ptr<MqttProbe>> MqttProbe::Connect(const MosquittoBroker& broker,
                                                       std::vector<std::string> patterns) {
  InitMosquittoOnce();
  std::unique_ptr<MqttProbe> probe(new MqttProbe());
  State& st = *probe->state_;
  std::string id = fmt::format("probe_{}_{}", ::getpid(), Clock::now().time_since_epoch().count() % 1000000000);
  st.mosq = mosquitto_new(id.c_str(), true, &st);
  if (st.mosq == nullptr) return ErrnoStatus("MqttProbe: mosquitto_new", errno);
  mosquitto* m = st.mosq;
  mosquitto_connect_callback_set(m, &State::OnConnect);
  mosquitto_subscribe_callback_set(m, &State::OnSubscribe);
  mosquitto_publish_callback_set(m, &State::OnPublish);
  mosquitto_message_callback_set(m, &State::OnMessage);
  const auto& options = broker.options();
  if (!options.user.empty()) mosquitto_username_pw_set(m, options.user.c_str(), options.password.c_str());
  if (options.tls) {
    int rc = mosquitto_tls_set(m, broker.ca_file().c_str(), nullptr, broker.client_cert_file().c_str(),
                               broker.client_key_file().c_str(), nullptr);
    if (rc != MOSQ_ERR_SUCCESS) return InternalError(fmt::format("MqttProbe: tls_set: {}", mosquitto_strerror(rc)));
  }
  int rc = mosquitto_connect(m, "127.0.0.1", broker.port(), 30);
  if (rc != MOSQ_ERR_SUCCESS) {
    return UnavailableError(fmt::format("MqttProbe: connect to 127.0.0.1:{}: {}", broker.port(),
                                        rc == MOSQ_ERR_ERRNO ? std::strerror(errno) : mosquitto_strerror(rc)));
  }
  rc = mosquitto_loop_start(m);
  if (rc != MOSQ_ERR_SUCCESS) return InternalError(fmt::format("MqttProbe: loop_start: {}", mosquitto_strerror(rc)));
  st.loop_started = true;

  std::unique_lock lock(st.mu);
  if (!st.cv.wait_for(lock, std::chrono::seconds(5), [&] { return st.connack >= 0; })) {
    return DeadlineExceededError(fmt::format("MqttProbe: no CONNACK from 127.0.0.1:{} within 5 s", broker.port()));
  }
  if (st.connack != 0) {
    return UnavailableError(fmt::format("MqttProbe: broker refused: {}", mosquitto_connack_string(st.connack)));
  }
  lock.unlock();
  for (const auto& pattern : patterns) {
    rc = mosquitto_subscribe(m, nullptr, pattern.c_str(), 1);
    if (rc != MOSQ_ERR_SUCCESS) {
      return InvalidArgumentError(fmt::format("MqttProbe: subscribe '{}': {}", pattern, mosquitto_strerror(rc)));
    }
  }
  lock.lock();
  if (!st.cv.wait_for(lock, std::chrono::seconds(5), [&] { return st.subacks >= static_cast<int>(patterns.size()); })) {
    return DeadlineExceededError("MqttProbe: subscriptions not acknowledged within 5 s");
  }
  lock.unlock();
  return probe;
}

std::optional<mqtt::Message> MqttProbe::WaitFor(std::string_view topic,
                                               std::function<bool(const mqtt::Message&)> predicate,
                                               milliseconds timeout) {
  std::optional<mqtt::Message> found;
  std::unique_lock lock(state_->mu);
  state_->cv.wait_for(lock, timeout, [&] {
    for (const auto& m : state_->messages) {
      if (mqtt::TopicMatches(topic, m.topic) && (!predicate || predicate(m))) {
        found = m;
        return true;
      }
    }
    return false;
  });
  return found;
}

std::vector<mqtt::Message> MqttProbe::WaitForCount(std::string_view topic, size_t count, milliseconds timeout) {
  std::vector<mqtt::Message> matched;
  std::unique_lock lock(state_->mu);
  state_->cv.wait_for(lock, timeout, [&] {
    matched.clear();
    for (const auto& m : state_->messages) {
      if (mqtt::TopicMatches(topic, m.topic)) matched.push_back(m);
    }
    return matched.size() >= count;
  });
  return matched;
}

std::vector<mqtt::Message> MqttProbe::Messages(std::string_view topic) const {
  std::vector<mqtt::Message> matched;
  std::lock_guard lock(state_->mu);
  for (const auto& m : state_->messages) {
    if (mqtt::TopicMatches(topic, m.topic)) matched.push_back(m);
  }
  return matched;
}

void MqttProbe::Clear() {
  std::lock_guard lock(state_->mu);
  state_->messages.clear();
}

std::string MqttProbe::Dump() const {
  std::string out = "probe received:\n";
  std::lock_guard lock(state_->mu);
  for (const auto& m : state_->messages) {
    out += fmt::format("  {} {}{}\n", m.topic, m.payload, m.retain ? " (retained)" : "");
  }
  return out;
}

Status MqttProbe::Publish(const std::string& topic, const std::string& payload, int qos, bool retain) {
  int mid = 0;
  int rc = mosquitto_publish(state_->mosq, &mid, topic.c_str(), static_cast<int>(payload.size()), payload.data(), qos,
                             retain);
  if (rc != MOSQ_ERR_SUCCESS) {
    return UnavailableError(fmt::format("MqttProbe: publish '{}': {}", topic, mosquitto_strerror(rc)));
  }
  if (qos == 0) return OkStatus();
  std::unique_lock lock(state_->mu);
  bool done = state_->cv.wait_for(lock, std::chrono::seconds(5), [&] {
    const auto& mids = state_->published_mids;
    return std::find(mids.begin(), mids.end(), mid) != mids.end();
  });
  if (!done) return DeadlineExceededError(fmt::format("MqttProbe: publish '{}' not acknowledged within 5 s", topic));
  return OkStatus();
}

}  // namespace edged::test
