// Shared test helpers for everything that talks MQTT (CMake target `edged_test_support`):
//   MosquittoBroker — a real /usr/sbin/mosquitto on a free 127.0.0.1 port, optionally with TLS
//                     (certificates made by openssl at test time) and username/password;
//   MqttProbe       — an independent subscriber (libmosquitto directly, not edged's Client) that
//                     records what reached the broker and waits for it;
//   Subprocess      — fork/exec of a helper program (e.g. the edged daemon) that can be SIGKILLed;
//   TempDir, FreeTcpPort.
// Every child process dies with the test (PR_SET_PDEATHSIG) and sees none of the test's file
// descriptors, so a crashed test leaves no broker behind and no socket half-open.
//
//   auto broker = edged::test::MosquittoBroker::Start();
//   ASSERT_TRUE(broker.ok()) << broker.status().ToString();
//   auto probe = edged::test::MqttProbe::Connect(**broker, {"zigbee2mqtt/#"});
//   ASSERT_TRUE(probe.ok()) << probe.status().ToString();
//   auto client = edged::mqtt::Client::Create((*broker)->ClientConfig("edged_test"), nullptr);
//   ...
//   auto msg = (*probe)->WaitFor("zigbee2mqtt/bridge/state", edged::test::PayloadIs(R"({"state":"online"})"));
//   ASSERT_TRUE(msg.has_value()) << (*probe)->Dump();
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"
#include "config/config.h"
#include "mqtt/client.h"

namespace edged::test {

using std::chrono::milliseconds;

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it back, close it).
std::uint16_t FreeTcpPort();

// A fresh directory under $TMPDIR (default /tmp), removed with everything in it on destruction.
// Throws std::runtime_error when it cannot be created (the test then fails with that message).
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "edged-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A child process: fork + exec of argv[0] (a path, or a name looked up in PATH), stdout and stderr
// appended to `log_file` (or /dev/null when empty). The destructor SIGKILLs and reaps it.
class Subprocess {
 public:
  static StatusOr<std::unique_ptr<Subprocess>> Start(std::vector<std::string> argv,
                                                     std::filesystem::path log_file = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();                         // reaps it when it has exited
  void Signal(int signal_number) const;   // kill(pid, sig); no-op once reaped
  // Waits for the exit; the exit code, or 128+signal when killed. DeadlineExceeded on timeout.
  StatusOr<int> Wait(milliseconds timeout);
  void Kill();  // SIGKILL and reap

 private:
  explicit Subprocess(pid_t pid) : pid_(pid) {}
  pid_t pid_;
  std::optional<int> exit_code_;
};

// Runs a command to completion (openssl, mosquitto_passwd, ...); an error with its output when the
// exit code is not 0 or it runs longer than `timeout`.
Status RunCommand(std::vector<std::string> argv, milliseconds timeout = milliseconds(20000));

struct BrokerOptions {
  std::uint16_t port = 0;  // 0: FreeTcpPort()
  // A TLS listener; CA, server (SAN 127.0.0.1 + localhost) and client certificates are made with
  // openssl into the broker's temp dir. ClientConfig() then points at the CA and client cert/key.
  bool tls = false;
  bool require_client_certificate = false;  // mutual TLS (only with tls)
  // Non-empty: anonymous clients are refused; this user/password (mosquitto_passwd) is required.
  std::string user;
  std::string password;
  bool persistence = false;  // off: a restarted broker has forgotten every retained message
};

// A real mosquitto broker listening on 127.0.0.1 only, with its config, certificates and log in a
// temp dir. Start() returns once the broker accepts TCP connections.
class MosquittoBroker {
 public:
  static StatusOr<std::unique_ptr<MosquittoBroker>> Start(BrokerOptions options = {});
  ~MosquittoBroker();  // kills the broker, removes the temp dir
  MosquittoBroker(const MosquittoBroker&) = delete;
  MosquittoBroker& operator=(const MosquittoBroker&) = delete;

  std::uint16_t port() const { return options_.port; }
  const BrokerOptions& options() const { return options_; }
  // "mqtt://127.0.0.1:PORT", or "mqtts://127.0.0.1:PORT" with TLS.
  std::string url() const;
  // Defaults plus what this broker needs: server, base_topic "zigbee2mqtt", user/password, TLS
  // (CA file, client certificate and key), reconnect delays 1..4 s.
  config::MqttConfig ClientConfig(std::string client_id) const;

  // Certificate files (empty paths without TLS).
  std::filesystem::path ca_file() const;
  std::filesystem::path client_cert_file() const;
  std::filesystem::path client_key_file() const;
  const std::filesystem::path& dir() const { return dir_.path(); }

  Status Stop();     // SIGTERM: a clean shutdown, then waits (SIGKILL after 5 s)
  void Kill();       // SIGKILL: clients see the connection drop, no clean shutdown
  Status Restart();  // stops if running, then starts again on the SAME port with the same config
  // SIGSTOP / SIGCONT: a hung broker whose TCP connections stay open (keepalive tests).
  void Pause();
  void Resume();
  bool running();
  std::string log() const;  // the broker's log so far, for failure messages

 private:
  explicit MosquittoBroker(BrokerOptions options) : options_(std::move(options)), dir_("edged-mosquitto") {}
  Status Prepare();  // config file, certificates, password file
  Status Launch();   // start the process and wait until it accepts connections

  BrokerOptions options_;
  TempDir dir_;
  std::unique_ptr<Subprocess> process_;
};

// The payload as JSON; discarded JSON (is_discarded()) when it is not JSON, null when there is no message.
nlohmann::json PayloadJson(const mqtt::Message& m);
nlohmann::json PayloadJson(const std::optional<mqtt::Message>& m);

// Matchers for MqttProbe::WaitFor.
std::function<bool(const mqtt::Message&)> PayloadIs(std::string payload);
std::function<bool(const mqtt::Message&)> PayloadContains(std::string text);

// An independent MQTT subscriber (libmosquitto's own thread, clean session, unique client id) that
// records every message it receives, in arrival order. Thread-safe.
class MqttProbe {
 public:
  // Connects to `broker` (with its TLS/credentials) and subscribes to `patterns` at QoS 1. Returns
  // once the broker acknowledged every subscription, so nothing published afterwards is missed;
  // retained messages matching the patterns arrive right away.
  static StatusOr<std::unique_ptr<MqttProbe>> Connect(const MosquittoBroker& broker,
                                                      std::vector<std::string> patterns = {"#"});
  ~MqttProbe();
  MqttProbe(const MqttProbe&) = delete;
  MqttProbe& operator=(const MqttProbe&) = delete;

  // The first message received (since Connect() or Clear()) whose topic matches `topic` (an MQTT
  // pattern, so wildcards work) and that satisfies `predicate` (any, when empty); waits for it up
  // to `timeout`. nullopt on timeout.
  std::optional<mqtt::Message> WaitFor(std::string_view topic,
                                       std::function<bool(const mqtt::Message&)> predicate = {},
                                       milliseconds timeout = milliseconds(5000));
  // Waits until at least `count` messages match `topic`; returns all that matched, in order (fewer
  // than `count` on timeout).
  std::vector<mqtt::Message> WaitForCount(std::string_view topic, size_t count,
                                          milliseconds timeout = milliseconds(5000));
  // Messages received so far whose topic matches `topic`, in arrival order.
  std::vector<mqtt::Message> Messages(std::string_view topic = "#") const;
  void Clear();
  // Every message so far, one "topic payload" line each: for assertion messages.
  std::string Dump() const;

  // Publishes and, for QoS 1/2, waits for the broker's acknowledgement (up to 5 s).
  Status Publish(const std::string& topic, const std::string& payload, int qos = 1, bool retain = false);

 private:
  struct State;  // libmosquitto handle and what its thread records; defined in the .cc
  MqttProbe();
  std::unique_ptr<State> state_;
};

// What the broker retains under `pattern`, topic → payload: a fresh probe subscribes and collects for
// `wait` (retained messages arrive right after the subscription).
std::map<std::string, std::string> RetainedMessages(const MosquittoBroker& broker, const std::string& pattern,
                                                    milliseconds wait = milliseconds(700));

}  // namespace edged::test
