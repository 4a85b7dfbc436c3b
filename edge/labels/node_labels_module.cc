#include "edge/labels/node_labels_module.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "base/atomic_file.h"
#include "base/logging.h"
#include "edge/labels/kube_client.h"

namespace edged::labels {
namespace {

using Clock = std::chrono::steady_clock;

std::optional<std::string> GetEnv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

class NodeLabelsModuleImpl : public NodeLabelsModule {
 public:
  NodeLabelsModuleImpl(const config::LabelsConfig& config, inventory::InventorySource& inventory,
                       prometheus::Registry& registry, NodeLabelsOptions options,
                       std::unique_ptr<NodeLabelClient> client)
      : config_(config),
        inventory_(inventory),
        options_(std::move(options)),
        client_(std::move(client)),
        label_family_(prometheus::BuildGauge()
                          .Name("edged_node_label")
                          .Help("1 for every node label edged asserts (label: key, value: value).")
                          .Register(registry)),
        apply_family_(prometheus::BuildCounter()
                          .Name("edged_node_labels_apply_total")
                          .Help("Server-side applies of the node labels by result: success, retry "
                                "(409/429/5xx/connection; retried with backoff) or error.")
                          .Register(registry)),
        apply_success_(apply_family_.Add({{"result", "success"}})),
        apply_retry_(apply_family_.Add({{"result", "retry"}})),
        apply_error_(apply_family_.Add({{"result", "error"}})),
        last_success_(prometheus::BuildGauge()
                          .Name("edged_node_labels_last_success_timestamp_seconds")
                          .Help("Unix time of the last successful apply of the node labels (0: never).")
                          .Register(registry)
                          .Add({})) {}

  ~NodeLabelsModuleImpl() override { Stop(); }

  std::string_view name() const override { return "labels"; }
  bool kubernetes() const override { return client_ != nullptr; }

  Status Start() override {
    {
      std::lock_guard lock(mu_);
      if (running_) return FailedPreconditionError("labels: already started");
      running_ = true;
      stop_ = false;
      stop_flag_ = false;
      backoff_ = options_.backoff_initial;
      next_attempt_ = Clock::now();
    }
    Logger("labels")->info("node labels: {}{}",
                           client_ ? "server-side apply to the Kubernetes API" : "metrics only (not in Kubernetes)",
                           config_.nfd.enabled ? ", NFD feature file " + config_.nfd.path : "");
    thread_ = std::thread([this] { Run(); });
    // Subscribing after the thread exists: the first inventory may arrive synchronously.
    subscription_ = inventory_.Subscribe([this](std::shared_ptr<const inventory::Inventory> inv) { Update(*inv); });
    return OkStatus();
  }

  void Stop() override {
    {
      std::lock_guard lock(mu_);
      if (!running_) return;
    }
    inventory_.Unsubscribe(subscription_);
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      stop_flag_ = true;  // aborts an API request in flight (curl's progress callback reads it)
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mu_);
    running_ = false;
  }

  Health health() const override {
    std::lock_guard lock(mu_);
    if (!last_error_.empty()) return Health::Warning(last_error_);
    if (!have_inventory_) return Health::Warning("labels: waiting for the first hardware inventory");
    return Health::Ok();
  }

  LabelMap desired() const override {
    std::lock_guard lock(mu_);
    return desired_;
  }

  bool WaitForSuccesses(int count, std::chrono::milliseconds timeout) const override {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return successes_ >= count; });
  }

  bool WaitForAttempts(int count, std::chrono::milliseconds timeout) const override {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return attempts_ >= count; });
  }

 private:
  // On the inventory's thread: compute, and wake the worker when the labels changed.
  void Update(const inventory::Inventory& inv) {
    std::vector<std::string> problems;
    LabelMap next = SelectLabels(InventoryLabels(inv), config_, &problems);
    std::lock_guard lock(mu_);
    if (problems != label_problems_) {
      for (const std::string& p : problems) Logger("labels")->warn("{}", p);
      label_problems_ = problems;
    }
    have_inventory_ = true;
    if (next == desired_ && version_ > 0) return;
    desired_ = std::move(next);
    ++version_;
    UpdateLabelMetrics();
    // A change goes out at once unless the API server asked us to back off.
    next_attempt_ = std::max(Clock::now(), backoff_until_);
    cv_.notify_all();
  }

  // Under mu_: edged_node_label mirrors desired_ exactly.
  void UpdateLabelMetrics() {
    for (auto it = label_metrics_.begin(); it != label_metrics_.end();) {
      auto d = desired_.find(it->first);
      if (d == desired_.end() || d->second != it->second.first) {
        label_family_.Remove(it->second.second);
        it = label_metrics_.erase(it);
      } else {
        ++it;
      }
    }
    for (const auto& [key, value] : desired_) {
      if (label_metrics_.count(key) != 0) continue;
      prometheus::Gauge& g = label_family_.Add({{"label", key}, {"value", value}});
      g.Set(1);
      label_metrics_.emplace(key, std::make_pair(value, &g));
    }
  }

  void Run() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      const bool due = version_ > 0 && Clock::now() >= next_attempt_;
      if (!due) {
        if (version_ == 0) {
          cv_.wait(lock);
        } else {
          cv_.wait_until(lock, next_attempt_);
        }
        continue;
      }
      const LabelMap labels = desired_;
      lock.unlock();
      WriteNfd(labels);
      ApplyOutcome outcome;
      if (client_ != nullptr) outcome = client_->Apply(labels, &stop_flag_);
      lock.lock();
      if (stop_) break;
      Record(outcome);
    }
  }

  // Under mu_: the result of one attempt decides when the next one happens.
  void Record(const ApplyOutcome& outcome) {
    const auto now = Clock::now();
    if (client_ == nullptr) {
      next_attempt_ = now + config_.interval;  // only the NFD file to refresh
      cv_.notify_all();
      return;
    }
    ++attempts_;
    if (outcome.status.ok()) {
      apply_success_.Increment();
      last_success_.Set(static_cast<double>(std::chrono::duration_cast<std::chrono::seconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count()));
      if (!last_error_.empty()) Logger("labels")->info("node labels applied again after: {}", last_error_);
      last_error_.clear();
      ++successes_;
      backoff_ = options_.backoff_initial;
      backoff_until_ = now;
      // Re-assert every interval: restores labels removed by hand and survives a re-created node.
      next_attempt_ = now + config_.interval;
    } else {
      const std::string message(outcome.status.message());
      if (message != last_error_) Logger("labels")->warn("{}", message);  // once per distinct failure
      last_error_ = message;
      if (outcome.retryable) {
        apply_retry_.Increment();
        auto wait = std::max<std::chrono::milliseconds>(backoff_, outcome.retry_after);
        wait = std::min<std::chrono::milliseconds>(wait, options_.backoff_max);
        backoff_until_ = now + wait;
        next_attempt_ = backoff_until_;
        backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, options_.backoff_max);
      } else {
        // 401/403/404/400: a person must fix RBAC, the token or NODE_NAME; try again at the interval.
        apply_error_.Increment();
        next_attempt_ = now + config_.interval;
      }
    }
    cv_.notify_all();
  }

  void WriteNfd(const LabelMap& labels) {
    if (!config_.nfd.enabled) return;
    const auto expiry = std::chrono::system_clock::now() + config_.nfd.expiry;
    Status s = WriteFileAtomically(
        config_.nfd.path,
        RenderNfdFeatureFile(labels, std::chrono::duration_cast<std::chrono::seconds>(expiry.time_since_epoch()).count()));
    std::lock_guard lock(nfd_mu_);
    if (!s.ok() && s.message() != nfd_error_) {
      Logger("labels")->warn("labels: NFD feature file: {}; check labels.nfd.path and that the directory is "
                             "mounted writable", s.message());
    }
    nfd_error_ = s.ok() ? "" : std::string(s.message());
  }

  const config::LabelsConfig config_;
  inventory::InventorySource& inventory_;
  const NodeLabelsOptions options_;
  std::unique_ptr<NodeLabelClient> client_;

  prometheus::Family<prometheus::Gauge>& label_family_;
  prometheus::Family<prometheus::Counter>& apply_family_;
  prometheus::Counter& apply_success_;
  prometheus::Counter& apply_retry_;
  prometheus::Counter& apply_error_;
  prometheus::Gauge& last_success_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool running_ = false;
  bool stop_ = false;
  std::atomic<bool> stop_flag_{false};  // read by curl's progress callback without mu_
  int subscription_ = 0;
  std::thread thread_;
  bool have_inventory_ = false;
  LabelMap desired_;
  long version_ = 0;
  std::vector<std::string> label_problems_;
  std::map<std::string, std::pair<std::string, prometheus::Gauge*>> label_metrics_;
  Clock::time_point next_attempt_;
  Clock::time_point backoff_until_;
  std::chrono::milliseconds backoff_{1000};
  std::string last_error_;
  int attempts_ = 0;
  int successes_ = 0;
  std::mutex nfd_mu_;
  std::string nfd_error_;
};

// The scanner and the labels module as one daemon module.
class HardwareLabelsModule : public Module {
 public:
  HardwareLabelsModule(std::unique_ptr<inventory::InventoryScanner> scanner, std::unique_ptr<NodeLabelsModule> labels)
      : scanner_(std::move(scanner)), labels_(std::move(labels)) {}
  ~HardwareLabelsModule() override { Stop(); }

  std::string_view name() const override { return "labels"; }

  Status Start() override {
    RETURN_IF_ERROR(scanner_->Start());
    Status s = labels_->Start();
    if (!s.ok()) scanner_->Stop();
    return s;
  }

  void Stop() override {
    labels_->Stop();  // first: it is subscribed to the scanner
    scanner_->Stop();
  }

  Health health() const override {
    Health h = scanner_->health();
    return h.ok() ? labels_->health() : h;
  }

 private:
  std::unique_ptr<inventory::InventoryScanner> scanner_;
  std::unique_ptr<NodeLabelsModule> labels_;  // declared after: destroyed before the scanner
};

}  // namespace

std::unique_ptr<inventory::InventoryScanner> NewInventoryScanner(const config::LabelsConfig& config,
                                                                 prometheus::Registry& registry) {
  inventory::InventoryOptions o;
  o.proc_root = config.proc_root;
  o.sys_root = config.sys_root;
  o.dev_root = config.dev_root;
  o.interval = config.interval;
  return std::make_unique<inventory::InventoryScanner>(o, usb::NewLibusbEnumerator(config.sys_root),
                                                       gpu::NewDlopenCudaProbe(), registry);
}

StatusOr<std::unique_ptr<NodeLabelsModule>> NewNodeLabelsModule(const config::LabelsConfig& config,
                                                                 inventory::InventorySource& inventory,
                                                                 prometheus::Registry& registry,
                                                                 NodeLabelsOptions options) {
  if (!options.env) options.env = GetEnv;
  if (!config.prefix.empty()) {
    // Checked once here so a bad prefix fails at start-up, not silently per label.
    if (StatusOr<std::string> key = QualifiedKey(config.prefix, "hardware/usb"); !key.ok()) return key.status();
  }
  const config::KubernetesConfig& k = config.kubernetes;
  bool in_cluster;
  if (k.mode == "on") {
    in_cluster = true;
  } else if (k.mode == "off") {
    in_cluster = false;
  } else if (k.mode == "auto") {
    in_cluster = options.env("KUBERNETES_SERVICE_HOST").has_value();
  } else {
    return InvalidArgumentError(fmt::format("labels.kubernetes.mode '{}': expected auto, on or off", k.mode));
  }

  std::unique_ptr<NodeLabelClient> client;
  if (in_cluster) {
    KubeClientOptions o;
    o.api_server = k.api_server;
    if (o.api_server.empty()) {
      auto host = options.env("KUBERNETES_SERVICE_HOST");
      auto port = options.env("KUBERNETES_SERVICE_PORT");
      if (host) {
        // An IPv6 service address needs brackets in a URL.
        const bool v6 = host->find(':') != std::string::npos;
        o.api_server = fmt::format("https://{}{}{}:{}", v6 ? "[" : "", *host, v6 ? "]" : "", port.value_or("443"));
      }
    }
    o.node_name = k.node_name.empty() ? options.env("NODE_NAME").value_or("") : k.node_name;
    o.token_file = k.token_file;
    o.ca_file = k.ca_file;
    o.field_manager = k.field_manager;
    o.connect_timeout = options.connect_timeout;
    o.request_timeout = options.request_timeout;
    ASSIGN_OR_RETURN(client, NodeLabelClient::Create(std::move(o)));
  }
  return std::unique_ptr<NodeLabelsModule>(
      new NodeLabelsModuleImpl(config, inventory, registry, std::move(options), std::move(client)));
}

}  // namespace edged::labels

namespace edged::labels {

StatusOr<std::unique_ptr<Module>> NewHardwareLabelsModule(const config::LabelsConfig& config,
                                                          prometheus::Registry& registry) {
  std::unique_ptr<inventory::InventoryScanner> scanner = NewInventoryScanner(config, registry);
  ASSIGN_OR_RETURN(std::unique_ptr<NodeLabelsModule> labels, NewNodeLabelsModule(config, *scanner, registry));
  return std::unique_ptr<Module>(new HardwareLabelsModule(std::move(scanner), std::move(labels)));
}

}  // namespace edged::labels
