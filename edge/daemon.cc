#include "edge/daemon.h"

#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <malloc.h>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include "base/logging.h"
#include "config/loader.h"
#include "edge/http_server.h"
#include "edge/module_context.h"
#include "edge/process_metrics.h"
#include "edge/systemd_notifier.h"
#include "mqtt/client.h"

namespace edged {
namespace {

constexpr auto kStopDeadline = std::chrono::seconds(5);
constexpr auto kStatusInterval = std::chrono::seconds(5);

LogFormat ParseLogFormat(const std::string& format) { return format == "json" ? LogFormat::kJson : LogFormat::kText; }

// Ends the process when stopping takes longer than the deadline: a module stuck on a dead peer must not
// keep systemd or the kubelet waiting for the SIGKILL timeout.
class StopDeadline {
 public:
  explicit StopDeadline(std::chrono::seconds deadline) : thread_([this, deadline] {
    std::unique_lock lock(mutex_);
    if (!done_cv_.wait_for(lock, deadline, [this] { return done_; })) {
      Logger("edged")->critical("modules did not stop within {}s ({}); exiting anyway", deadline.count(), stage_);
      Logger("edged")->flush();
      std::_Exit(2);
    }
  }) {}
  ~StopDeadline() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    done_cv_.notify_one();
    thread_.join();
  }
  void Stage(std::string stage) {
    std::lock_guard lock(mutex_);
    stage_ = std::move(stage);
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::string stage_ = "starting to stop";
  std::thread thread_;
};

}  // namespace

// One start of the MQTT client and the modules with one configuration. A reload that changes module
// configuration stops the generation and starts a new one; metrics of the old one go with its registry.
struct Generation {
  struct Slot {
    std::string name;
    std::unique_ptr<Module> module;
    Status start_status;  // a module that could not start reports this as its health
  };
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<mqtt::Client> mqtt;
  std::vector<Slot> modules;
};

class Daemon::Impl {
 public:
  Impl(std::string config_path, config::Config config)
      : config_path_(std::move(config_path)), config_(std::move(config)), signals_(io_), status_timer_(io_),
        watchdog_timer_(io_) {}

  int Run();
  void RequestStop() {
    asio::post(io_, [this] { Shutdown("stop requested"); });
  }

 private:
  Status StartHttp();
  std::unique_ptr<Generation> StartGeneration(const config::Config& config);
  void StopGeneration(std::unique_ptr<Generation> generation, StopDeadline* deadline);
  void WaitForSignal();
  void Reload();
  void Shutdown(std::string_view why);
  void ScheduleStatus();
  void ScheduleWatchdog(std::chrono::microseconds interval);

  // Readiness of the current generation: name → health.
  std::vector<std::pair<std::string, Health>> ModuleHealth() const;
  HttpResponse Metrics() const;
  HttpResponse Ready() const;

  std::string config_path_;
  config::Config config_;
  asio::io_context io_;
  asio::signal_set signals_;
  asio::steady_timer status_timer_;
  asio::steady_timer watchdog_timer_;
  SystemdNotifier systemd_;
  std::shared_ptr<spdlog::logger> log_ = Logger("edged");
  ModuleRegistry factories_;

  std::shared_ptr<prometheus::Collectable> process_metrics_ = MakeProcessCollector();
  std::shared_ptr<prometheus::Collectable> build_info_ = MakeBuildInfoCollector();
  mutable std::mutex generation_mutex_;  // guards generation_ against the HTTP threads
  std::unique_ptr<Generation> generation_;
  std::unique_ptr<HttpServer> http_;
  std::string last_status_;
  bool stopping_ = false;
};

Status Daemon::Impl::StartHttp() {
  std::map<std::string, HttpServer::Handler> routes;
  routes["/metrics"] = [this] { return Metrics(); };
  routes["/healthz"] = [] { return HttpResponse{200, "text/plain; charset=utf-8", "ok\n"}; };
  routes["/readyz"] = [this] { return Ready(); };
  ASSIGN_OR_RETURN(http_, HttpServer::Start(config_.http.address, config_.http.port, std::move(routes)));
  log_->info("serving /metrics, /healthz and /readyz on http://{}:{}", config_.http.address, http_->port());
  return OkStatus();
}

std::unique_ptr<Generation> Daemon::Impl::StartGeneration(const config::Config& config) {
  auto generation = std::make_unique<Generation>();
  auto client = mqtt::Client::Create(config.mqtt, generation->registry.get());
  if (!client.ok()) {
    // The loader validated the section, so this is an environment problem (unreadable CA file...).
    log_->error("mqtt: {}", client.status().message());
    return generation;
  }
  generation->mqtt = std::move(client).value();
  if (Status started = generation->mqtt->Start(); !started.ok()) log_->error("mqtt: {}", started.message());

  ModuleContext context{config, *generation->mqtt, *generation->registry, config.state_dir};
  for (const std::string& name : EnabledModules(config)) {
    Generation::Slot slot{name, nullptr, OkStatus()};
    auto module = factories_.Create(name, context);
    if (!module.ok()) {
      slot.start_status = module.status();
    } else {
      slot.module = std::move(module).value();
      slot.start_status = slot.module->Start();
    }
    if (!slot.start_status.ok()) {
      log_->error("{}: cannot start: {}; the daemon runs on without it", name, slot.start_status.message());
    } else {
      log_->info("{}: started", name);
    }
    generation->modules.push_back(std::move(slot));
  }
  return generation;
}

void Daemon::Impl::StopGeneration(std::unique_ptr<Generation> generation, StopDeadline* deadline) {
  if (!generation) return;
  for (auto it = generation->modules.rbegin(); it != generation->modules.rend(); ++it) {
    if (!it->module) continue;
    if (deadline) deadline->Stage("stopping " + it->name);
    it->module->Stop();
    log_->info("{}: stopped", it->name);
  }
  generation->modules.clear();  // modules may still reference the client
  if (generation->mqtt) {
    if (deadline) deadline->Stage("stopping mqtt");
    generation->mqtt->Stop();
  }
}

std::vector<std::pair<std::string, Health>> Daemon::Impl::ModuleHealth() const {
  std::vector<std::pair<std::string, Health>> result;
  std::lock_guard lock(generation_mutex_);
  if (!generation_) return result;
  result.emplace_back("mqtt", generation_->mqtt ? generation_->mqtt->health()
                                                : Health::Failed("the MQTT client could not be created"));
  for (const auto& slot : generation_->modules) {
    if (!slot.start_status.ok()) {
      result.emplace_back(slot.name, Health::Failed(std::string(slot.start_status.message())));
    } else {
      result.emplace_back(slot.name, slot.module->health());
    }
  }
  return result;
}

HttpResponse Daemon::Impl::Metrics() const {
  std::vector<prometheus::MetricFamily> families = build_info_->Collect();
  for (auto& family : process_metrics_->Collect()) families.push_back(std::move(family));

  prometheus::MetricFamily up{"edged_module_up", "Whether a module is running (1) or failed (0).",
                              prometheus::MetricType::Gauge, {}};
  prometheus::MetricFamily healthy{"edged_module_healthy",
                                   "Module health: 1 ok, 0.5 warning (degraded), 0 failed.",
                                   prometheus::MetricType::Gauge, {}};
  for (const auto& [name, health] : ModuleHealth()) {
    prometheus::ClientMetric metric;
    metric.label = {{"module", name}};
    metric.gauge.value = health.state == HealthState::kFailed ? 0 : 1;
    up.metric.push_back(metric);
    metric.gauge.value = health.state == HealthState::kOk ? 1 : health.state == HealthState::kWarning ? 0.5 : 0;
    healthy.metric.push_back(metric);
  }
  families.push_back(std::move(up));
  families.push_back(std::move(healthy));

  std::shared_ptr<prometheus::Registry> registry;
  {
    std::lock_guard lock(generation_mutex_);
    if (generation_) registry = generation_->registry;
  }
  if (registry) {
    for (auto& family : registry->Collect()) families.push_back(std::move(family));
  }
  return {200, "text/plain; version=0.0.4; charset=utf-8", prometheus::TextSerializer().Serialize(families)};
}

HttpResponse Daemon::Impl::Ready() const {
  nlohmann::json body = {{"ready", true}, {"modules", nlohmann::json::object()}};
  for (const auto& [name, health] : ModuleHealth()) {
    nlohmann::json entry = {{"state", HealthStateName(health.state)}};
    if (!health.message.empty()) entry["message"] = health.message;
    // A warning (degraded but working) keeps the node ready; only a failed module does not.
    if (health.state == HealthState::kFailed) body["ready"] = false;
    body["modules"][name] = std::move(entry);
  }
  if (body["modules"].empty()) body["ready"] = false;  // still starting or already stopping
  const bool ready = body["ready"].get<bool>();
  return {ready ? 200 : 503, "application/json", body.dump() + "\n"};
}

void Daemon::Impl::WaitForSignal() {
  signals_.async_wait([this](const asio::error_code& error, int signal_number) {
    if (error) return;
    if (signal_number == SIGHUP) {
      Reload();
      WaitForSignal();
      return;
    }
    Shutdown(signal_number == SIGINT ? "SIGINT" : "SIGTERM");
  });
}

void Daemon::Impl::Reload() {
  systemd_.Reloading();
  log_->info("SIGHUP: reloading {}", config_path_);
  auto loaded = config::LoadConfigFile(config_path_);
  if (!loaded.ok()) {
    log_->error("reload rejected, keeping the running configuration:\n{}", loaded.status().message());
    systemd_.Ready();
    return;
  }
  config::Config next = std::move(loaded).value();
  if (next.logging != config_.logging) {
    if (Status s = ConfigureLogging(next.logging.level, ParseLogFormat(next.logging.format)); !s.ok()) {
      log_->error("logging: {}", s.message());
    }
  }
  if (next.http != config_.http || next.state_dir != config_.state_dir) {
    log_->warn("http and state_dir changes take effect at the next restart");
    next.http = config_.http;
    next.state_dir = config_.state_dir;
  }
  std::vector<std::string> changed;
  if (next.mqtt != config_.mqtt) changed.push_back("mqtt");
  if (next.zigbee != config_.zigbee) changed.push_back("zigbee");
  if (next.cameras != config_.cameras) changed.push_back("cameras");
  if (next.storage != config_.storage) changed.push_back("storage");
  if (next.labels != config_.labels) changed.push_back("labels");
  config_ = std::move(next);
  if (!changed.empty()) {
    log_->info("reload: {} changed; restarting modules", fmt::join(changed, ", "));
    std::unique_ptr<Generation> old;
    {
      std::lock_guard lock(generation_mutex_);
      old = std::move(generation_);
    }
    StopGeneration(std::move(old), nullptr);
    auto fresh = StartGeneration(config_);
    std::lock_guard lock(generation_mutex_);
    generation_ = std::move(fresh);
  } else {
    log_->info("reload: no module configuration changed");
  }
  systemd_.Ready();
}

void Daemon::Impl::Shutdown(std::string_view why) {
  if (stopping_) return;
  stopping_ = true;
  log_->info("{}: stopping", why);
  systemd_.Stopping();
  StopDeadline deadline(kStopDeadline);
  // civetweb needs about 2 s to stop its listener; do that alongside the modules, not after them.
  std::thread http_stopper([server = std::move(http_)]() mutable { server.reset(); });
  std::unique_ptr<Generation> old;
  {
    std::lock_guard lock(generation_mutex_);
    old = std::move(generation_);
  }
  StopGeneration(std::move(old), &deadline);
  deadline.Stage("stopping the HTTP server");
  http_stopper.join();
  signals_.cancel();
  status_timer_.cancel();
  watchdog_timer_.cancel();
  io_.stop();
}

void Daemon::Impl::ScheduleStatus() {
  status_timer_.expires_after(kStatusInterval);
  status_timer_.async_wait([this](const asio::error_code& error) {
    if (error) return;
    std::vector<std::string> not_ok;
    const auto health = ModuleHealth();
    for (const auto& [name, h] : health) {
      if (!h.ok()) not_ok.push_back(fmt::format("{}{}{}", name, " ", HealthStateName(h.state)));
    }
    std::string status = not_ok.empty() ? fmt::format("{}{}", health.size(), " modules ok")
                                        : fmt::format("{}{}", "degraded: ", fmt::join(not_ok, ", "));
    if (status != last_status_) {
      systemd_.Status(status);
      last_status_ = status;
    }
    // Bursts (200 interviews, a re-announce of every discovery config) free megabytes that glibc keeps
    // in its arenas; hand the free pages back so resident memory follows the live heap (< 1 ms).
    malloc_trim(0);
    ScheduleStatus();
  });
}

void Daemon::Impl::ScheduleWatchdog(std::chrono::microseconds interval) {
  // Pinged from the event loop itself, so a wedged loop stops the pings and systemd restarts us.
  watchdog_timer_.expires_after(interval);
  watchdog_timer_.async_wait([this, interval](const asio::error_code& error) {
    if (error) return;
    systemd_.WatchdogPing();
    ScheduleWatchdog(interval);
  });
}

int Daemon::Impl::Run() {
  if (Status s = RegisterBuiltinModules(factories_); !s.ok()) {
    log_->critical("{}", s.message());
    return 1;
  }
  if (Status s = StartHttp(); !s.ok()) {
    log_->critical("{}", s.message());
    return 1;
  }
  // Signals are handled by the event loop, never in async-signal context.
  signals_.add(SIGTERM);
  signals_.add(SIGINT);
  signals_.add(SIGHUP);
  std::signal(SIGPIPE, SIG_IGN);  // a peer closing a socket is an error value, not a process exit
  {
    auto generation = StartGeneration(config_);
    std::lock_guard lock(generation_mutex_);
    generation_ = std::move(generation);
  }
  WaitForSignal();
  ScheduleStatus();
  if (auto interval = systemd_.WatchdogPingInterval()) {
    systemd_.WatchdogPing();
    ScheduleWatchdog(*interval);
  }
  systemd_.Ready();
  systemd_.Status("started");
  log_->info("edged {} ready (resident memory {:.1f} MB)", EdgedVersion(), ResidentMemoryBytes() / 1e6);
  io_.run();
  log_->info("stopped");
  return 0;
}

Daemon::Daemon(std::string config_path, config::Config config)
    : impl_(std::make_unique<Impl>(std::move(config_path), std::move(config))) {}
Daemon::~Daemon() = default;
int Daemon::Run() { return impl_->Run(); }
void Daemon::RequestStop() { impl_->RequestStop(); }

}  // namespace edged
