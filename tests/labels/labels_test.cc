#include <curl/curl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <prometheus/registry.h>

#include "drivers/inventory/inventory.h"
#include "drivers/usb/fake_usb.h"
#include "edge/labels/kube_client.h"
#include "edge/labels/labels.h"
#include "edge/labels/node_labels_module.h"

namespace edged::labels {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;

const std::string kFixtures = EDGED_FIXTURES;
const std::string kSys = kFixtures + "/sys";
const std::string kProc = kFixtures + "/proc-nvidia";

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "edged-labels-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// tests/labels/fake_apiserver.py as a child process; see that file for what it checks.
class FakeApiServer {
 public:
  FakeApiServer(const TempDir& dir, std::string token_file, int port = 0)
      : dir_(dir / ""), token_file_(std::move(token_file)) {
    Start(port);
  }
  ~FakeApiServer() { Kill(); }

  void Start(int port) {
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      close(out[0]);
      close(out[1]);
      const std::string port_arg = std::to_string(port);
      execl(EDGED_PYTHON3, EDGED_PYTHON3, EDGED_FAKE_APISERVER, "--dir", dir_.c_str(), "--token-file",
            token_file_.c_str(), "--node", "node-1", "--port", port_arg.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(out[1]);
    std::string line;
    pollfd p{out[0], POLLIN, 0};
    auto deadline = std::chrono::steady_clock::now() + 15s;
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      if (poll(&p, 1, 100) <= 0) continue;
      char buf[64];
      ssize_t n = read(out[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    close(out[0]);
    ASSERT_EQ(line.rfind("LISTENING ", 0), 0u) << "fake API server did not start: '" << line << "'";
    port_ = std::stoi(line.substr(10));
  }

  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  std::string ca() const { return dir_ + "ca.crt"; }

  json State() { return json::parse(Call("GET", "/_test/state", "")); }
  void Fail(std::vector<int> codes) { Call("POST", "/_test/fail", json{{"codes", codes}}.dump()); }
  void Hang(int seconds) { Call("POST", "/_test/hang", json{{"seconds", seconds}}.dump()); }

 private:
  static size_t Collect(char* data, size_t size, size_t n, void* user) {
    static_cast<std::string*>(user)->append(data, size * n);
    return size * n;
  }
  std::string Call(const std::string& method, const std::string& path, const std::string& body) {
    std::string out;
    CURL* c = curl_easy_init();
    const std::string u = url() + path;
    curl_easy_setopt(c, CURLOPT_URL, u.c_str());
    curl_easy_setopt(c, CURLOPT_CAINFO, ca().c_str());
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    if (method == "POST") curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    CURLcode rc = curl_easy_perform(c);
    curl_easy_cleanup(c);
    EXPECT_EQ(rc, CURLE_OK) << curl_easy_strerror(rc);
    return out;
  }

  std::string dir_;
  std::string token_file_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// A port where nothing listens (bound, then closed) and a port that accepts TCP but never answers.
int UnusedPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

usb::UsbDevice Device(std::uint8_t bus, std::uint8_t address, std::uint16_t vid, std::uint16_t pid,
                      const std::string& port) {
  usb::UsbDevice d;
  d.bus = bus;
  d.address = address;
  d.vendor_id = vid;
  d.product_id = pid;
  d.port_path = port;
  usb::ReadSysfsStrings(kSys, d);
  return d;
}
usb::UsbDevice ZbDongleP() { return Device(1, 2, 0x10c4, 0xea60, "1-1"); }
usb::UsbDevice Keyboard() { return Device(2, 2, 0x046d, 0xc31c, "2-1"); }

class FakeCuda : public gpu::CudaProbe {
 public:
  StatusOr<gpu::CudaInfo> Probe() override {
    gpu::CudaInfo info;
    info.runtime_version = 12040;
    for (const char* bus : {"0000:01:00.0", "0000:41:00.0"}) {
      gpu::CudaDevice d;
      d.name = "NVIDIA GeForce RTX 3090";
      d.memory_bytes = 24576ull * 1024 * 1024;
      d.compute_major = 8;
      d.compute_minor = 6;
      d.pci_bus_id = bus;
      info.devices.push_back(d);
    }
    return info;
  }
};

inventory::InventoryOptions FixtureOptions() {
  inventory::InventoryOptions o;
  o.proc_root = kProc;
  o.sys_root = kSys;
  o.dev_root = "/nonexistent-dev";
  o.interval = 1h;  // only hotplug and explicit requests rescan during a test
  o.hotplug_settle = 10ms;
  return o;
}

TEST(LabelsRules, KeysAndValuesFollowKubernetes) {
  for (const char* ok : {"", "true", "8", "535.129.03", "NVIDIA-GeForce-RTX-3090", "a_b", "zstack"}) {
    EXPECT_TRUE(IsValidLabelValue(ok)) << ok;
  }
  for (const std::string& bad : std::vector<std::string>{"-a", "a-", "a b", "ä", ".x", std::string(64, 'a')}) {
    EXPECT_FALSE(IsValidLabelValue(bad)) << bad;
  }
  for (const char* ok : {"hardware/usb", "edged.io/hardware.zigbee.adapter", "usb", "a-b.c/d_e"}) {
    EXPECT_TRUE(IsValidLabelKey(ok)) << ok;
  }
  for (const char* bad : {"", "/usb", "edged.io/", "Edged.io/x", "a/b/c", "-a.io/x", "a..b/x"}) {
    EXPECT_FALSE(IsValidLabelKey(bad)) << bad;
  }
  EXPECT_EQ(SanitizeLabelValue("NVIDIA GeForce RTX 3090"), "NVIDIA-GeForce-RTX-3090");
  EXPECT_EQ(SanitizeLabelValue("  (Sonoff) ZBDongle-P / CC2652P!  "), "Sonoff-ZBDongle-P-CC2652P");
  EXPECT_EQ(SanitizeLabelValue("ÄÖÜ"), "");
  EXPECT_EQ(SanitizeLabelValue(std::string(100, 'x') + "-y").size(), 63u);
  EXPECT_TRUE(IsValidLabelValue(SanitizeLabelValue(std::string(62, 'x') + "--y")));
}

TEST(LabelsRules, PrefixesMakeValidKeys) {
  EXPECT_EQ(*QualifiedKey("", "hardware/usb"), "hardware/usb");
  EXPECT_EQ(*QualifiedKey("edged.io/", "hardware/zigbee.adapter"), "edged.io/hardware.zigbee.adapter");
  EXPECT_EQ(*QualifiedKey("lab-", "hardware/usb"), "lab-hardware/usb");
  EXPECT_EQ(QualifiedKey("Edged.IO/", "hardware/usb").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(QualifiedKey("a/b/", "hardware/usb").status().code(), StatusCode::kInvalidArgument);
}

TEST(LabelsFromInventory, EveryLabelIsAFunctionOfTheInventory) {
  usb::FakeUsbEnumerator bus({Keyboard(), ZbDongleP()});
  FakeCuda cuda;
  inventory::Inventory inv = inventory::ScanInventory(FixtureOptions(), &bus, &cuda);
  LabelMap want = {
      {"hardware/usb", "true"},
      {"hardware/zigbee", "true"},
      {"hardware/zigbee.adapter", "zstack"},
      {"hardware/zigbee.product", "Sonoff-ZBDongle-P"},
      {"hardware/zigbee.count", "1"},
      {"hardware/nvidia", "true"},
      {"hardware/nvidia.count", "2"},
      {"hardware/nvidia.product", "NVIDIA-GeForce-RTX-3090"},
      {"hardware/nvidia.memory_mib", "24576"},
      {"hardware/nvidia.compute.major", "8"},
      {"hardware/nvidia.compute.minor", "6"},
      {"hardware/nvidia.driver", "535.129.03"},
      {"storage/nas", "true"},
      {"storage/nas.nfs", "true"},
      {"storage/nas.cifs", "true"},
      {"storage/hdd", "true"},
      {"storage/ssd", "true"},
  };
  EXPECT_EQ(InventoryLabels(inv), want);
  EXPECT_TRUE(InventoryLabels(inventory::Inventory{}).empty());

  // Without CUDA the driver tree still says there are GPUs, but not how big they are.
  inventory::Inventory no_cuda = inventory::ScanInventory(FixtureOptions(), &bus, nullptr);
  LabelMap l = InventoryLabels(no_cuda);
  EXPECT_EQ(l.at("hardware/nvidia.count"), "2");
  EXPECT_EQ(l.count("hardware/nvidia.memory_mib"), 0u);
}

TEST(LabelsFromInventory, AllowListAndPrefix) {
  LabelMap all = {{"hardware/usb", "true"}, {"hardware/zigbee", "true"}, {"storage/nas", "true"},
                  {"hardware/nvidia.product", "bad value!"}};
  config::LabelsConfig c;
  c.prefix = "edged.io/";
  c.allow = {"hardware/zigbee", "storage/nas", "hardware/nvidia.product"};
  std::vector<std::string> problems;
  LabelMap got = SelectLabels(all, c, &problems);
  EXPECT_EQ(got, (LabelMap{{"edged.io/hardware.zigbee", "true"}, {"edged.io/storage.nas", "true"}}));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("bad value!"), std::string::npos);
}

TEST(LabelsNfd, FeatureFileHasExpiryAndOneLabelPerLine) {
  EXPECT_EQ(Rfc3339Utc(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(Rfc3339Utc(1767323045), "2026-01-02T03:04:05Z");
  EXPECT_EQ(RenderNfdFeatureFile({{"hardware/usb", "true"}, {"hardware/nvidia.count", "2"}}, 1767323045),
            "# +expiry-time=2026-01-02T03:04:05Z\n"
            "# Written by edged; rewritten on every inventory change.\n"
            "hardware/nvidia.count=2\n"
            "hardware/usb=true\n");
}

// ---- the real libcurl client against the HTTPS fake API server ----

struct ClientFixture {
  TempDir dir;
  std::string token_file = dir / "token";
  FakeApiServer server{dir, (WriteFile(token_file, "token-a\n"), token_file)};

  std::unique_ptr<NodeLabelClient> Client(std::string node = "node-1", std::string api = "") {
    KubeClientOptions o;
    o.api_server = api.empty() ? server.url() : api;
    o.node_name = std::move(node);
    o.token_file = token_file;
    o.ca_file = server.ca();
    o.connect_timeout = 2s;
    o.request_timeout = 5s;
    auto c = NodeLabelClient::Create(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(c).value();
  }
};

TEST(LabelsKubeClient, SendsAServerSideApplyAsItsOwnFieldManager) {
  ClientFixture f;
  auto client = f.Client();
  ApplyOutcome out = client->Apply({{"hardware/usb", "true"}, {"hardware/zigbee", "true"}});
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.http_status, 200);
  json state = f.server.State();
  EXPECT_EQ(state["labels"]["hardware/usb"], "true");
  EXPECT_EQ(state["managers"]["hardware/zigbee"], "edged");
  EXPECT_EQ(state["labels"]["kubernetes.io/hostname"], "node-1");
  json req = state["requests"][0];
  EXPECT_EQ(req["path"], "/api/v1/nodes/node-1");
  EXPECT_EQ(req["field_manager"], "edged");
  EXPECT_EQ(req["force"], "true");
  EXPECT_EQ(req["content_type"], "application/apply-patch+yaml");
  EXPECT_EQ(req["authorization"], "Bearer token-a");
}

TEST(LabelsKubeClient, ReReadsTheTokenOnEveryRequest) {
  ClientFixture f;
  auto client = f.Client();
  ASSERT_TRUE(client->Apply({{"hardware/usb", "true"}}).status.ok());
  WriteFile(f.token_file, "token-b");  // the kubelet rotated the projected token (and the server's key)
  ApplyOutcome out = client->Apply({{"hardware/usb", "true"}});
  EXPECT_TRUE(out.status.ok()) << out.status.ToString();
  json state = f.server.State();
  EXPECT_EQ(state["requests"][1]["authorization"], "Bearer token-b");
}

TEST(LabelsKubeClient, ClassifiesErrorAnswers) {
  ClientFixture f;
  auto client = f.Client();
  f.server.Fail({409, 429, 500, 503});
  for (int code : {409, 429, 500, 503}) {
    ApplyOutcome out = client->Apply({{"hardware/usb", "true"}});
    EXPECT_EQ(out.http_status, code);
    EXPECT_TRUE(out.retryable) << code;
    EXPECT_EQ(out.status.code(), StatusCode::kUnavailable) << out.status.ToString();
    EXPECT_NE(out.status.message().find("injected failure"), std::string::npos) << out.status.ToString();
  }

  WriteFile(f.token_file + ".other", "wrong");
  KubeClientOptions o;
  o.api_server = f.server.url();
  o.node_name = "node-1";
  o.token_file = f.token_file + ".other";
  o.ca_file = f.server.ca();
  auto wrong_token = std::move(NodeLabelClient::Create(o)).value();
  ApplyOutcome unauthorized = wrong_token->Apply({});
  EXPECT_EQ(unauthorized.http_status, 401);
  EXPECT_FALSE(unauthorized.retryable);
  EXPECT_EQ(unauthorized.status.code(), StatusCode::kPermissionDenied);

  ApplyOutcome missing_node = f.Client("node-2")->Apply({});
  EXPECT_EQ(missing_node.http_status, 404);
  EXPECT_EQ(missing_node.status.code(), StatusCode::kNotFound);
  EXPECT_NE(missing_node.status.message().find("NODE_NAME"), std::string::npos);

  o.token_file = f.token_file + ".missing";
  ApplyOutcome no_token = std::move(NodeLabelClient::Create(o)).value()->Apply({});
  EXPECT_TRUE(no_token.retryable);
  EXPECT_NE(no_token.status.message().find(".missing"), std::string::npos);

  // An untrusted certificate is a connection error, never silently accepted.
  o.token_file = f.token_file;
  o.ca_file = kFixtures + "/sys/bus/usb/devices/1-1/product";  // not a CA bundle
  ApplyOutcome bad_ca = std::move(NodeLabelClient::Create(o)).value()->Apply({});
  EXPECT_EQ(bad_ca.http_status, 0);
  EXPECT_FALSE(bad_ca.status.ok());
}

TEST(LabelsKubeClient, ServerDownIsARetryableConnectionError) {
  ClientFixture f;
  auto client = f.Client("node-1", "https://127.0.0.1:" + std::to_string(UnusedPort()));
  auto start = std::chrono::steady_clock::now();
  ApplyOutcome out = client->Apply({{"hardware/usb", "true"}});
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(out.http_status, 0);
  EXPECT_TRUE(out.retryable);
  EXPECT_EQ(out.status.code(), StatusCode::kUnavailable);
}

TEST(LabelsKubeClient, DroppedLabelsAreRemovedAndOtherManagersLabelsStay) {
  ClientFixture f;
  auto client = f.Client();
  ASSERT_TRUE(client->Apply({{"hardware/usb", "true"}, {"hardware/zigbee", "true"}}).status.ok());
  ASSERT_TRUE(client->Apply({{"hardware/usb", "true"}}).status.ok());
  json labels = f.server.State()["labels"];
  EXPECT_EQ(labels, json({{"kubernetes.io/hostname", "node-1"}, {"hardware/usb", "true"}}));
  ASSERT_TRUE(client->Apply({}).status.ok());
  EXPECT_EQ(f.server.State()["labels"], json({{"kubernetes.io/hostname", "node-1"}}));
}

TEST(LabelsKubeClient, RejectsIncompleteOptions) {
  EXPECT_EQ(NodeLabelClient::Create({}).status().code(), StatusCode::kInvalidArgument);
  KubeClientOptions o;
  o.api_server = "https://127.0.0.1:1";
  EXPECT_NE(NodeLabelClient::Create(o).status().message().find("NODE_NAME"), std::string::npos);
}

// ---- the module: inventory scanner + labels + client, end to end ----

std::map<std::string, std::string> NodeLabelMetrics(prometheus::Registry& registry) {
  std::map<std::string, std::string> out;
  for (const auto& family : registry.Collect()) {
    if (family.name != "edged_node_label") continue;
    for (const auto& m : family.metric) {
      std::string label, value;
      for (const auto& l : m.label) (l.name == "label" ? label : value) = l.value;
      out[label] = value;
    }
  }
  return out;
}

double Counter(prometheus::Registry& registry, const std::string& name, const std::string& result) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      if (result.empty() || (!m.label.empty() && m.label[0].value == result)) {
        return family.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
      }
    }
  }
  return -1;
}

struct ModuleFixture {
  TempDir dir;
  std::string token_file = dir / "token";
  prometheus::Registry registry;
  usb::FakeUsbEnumerator* bus = nullptr;
  std::unique_ptr<inventory::InventoryScanner> scanner;

  ModuleFixture() {
    WriteFile(token_file, "token-a");
    auto fake = std::make_unique<usb::FakeUsbEnumerator>(std::vector<usb::UsbDevice>{Keyboard(), ZbDongleP()});
    bus = fake.get();
    scanner = std::make_unique<inventory::InventoryScanner>(FixtureOptions(), std::move(fake),
                                                            std::make_unique<FakeCuda>(), registry);
    EXPECT_TRUE(scanner->Start().ok());
  }

  config::LabelsConfig Config(const std::string& api_server, const std::string& ca) {
    config::LabelsConfig c;
    c.prefix = "edged.io/";
    c.interval = std::chrono::seconds(3600);
    c.kubernetes.mode = "on";
    c.kubernetes.api_server = api_server;
    c.kubernetes.node_name = "node-1";
    c.kubernetes.token_file = token_file;
    c.kubernetes.ca_file = ca;
    return c;
  }

  std::unique_ptr<NodeLabelsModule> Module(const config::LabelsConfig& c) {
    NodeLabelsOptions o;
    o.env = [](const char*) { return std::optional<std::string>(); };
    o.backoff_initial = 20ms;
    o.backoff_max = 200ms;
    o.connect_timeout = 1s;
    o.request_timeout = 3s;
    auto m = NewNodeLabelsModule(c, *scanner, registry, o);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return std::move(m).value();
  }
};

TEST(LabelsModule, AppliesInventoryLabelsAndRemovesThoseThatDisappear) {
  ModuleFixture f;
  FakeApiServer server(f.dir, f.token_file);
  auto module = f.Module(f.Config(server.url(), server.ca()));
  EXPECT_TRUE(module->kubernetes());
  ASSERT_TRUE(module->Start().ok());
  ASSERT_TRUE(module->WaitForSuccesses(1, 10s));
  json labels = server.State()["labels"];
  EXPECT_EQ(labels["edged.io/hardware.zigbee"], "true");
  EXPECT_EQ(labels["edged.io/hardware.zigbee.adapter"], "zstack");
  EXPECT_EQ(labels["edged.io/hardware.nvidia.count"], "2");
  EXPECT_EQ(labels["edged.io/storage.nas"], "true");
  EXPECT_EQ(labels["kubernetes.io/hostname"], "node-1");
  EXPECT_EQ(NodeLabelMetrics(f.registry).at("edged.io/hardware.zigbee.adapter"), "zstack");
  EXPECT_TRUE(module->health().ok()) << module->health().message;
  EXPECT_GT(Counter(f.registry, "edged_node_labels_last_success_timestamp_seconds", ""), 1.7e9);

  // The dongle is pulled: the hotplug rescan drops the Zigbee labels, the next apply removes them.
  ASSERT_TRUE(f.bus->Unplug(1, 2));
  ASSERT_TRUE(module->WaitForSuccesses(2, 10s));
  labels = server.State()["labels"];
  EXPECT_FALSE(labels.contains("edged.io/hardware.zigbee"));
  EXPECT_FALSE(labels.contains("edged.io/hardware.zigbee.adapter"));
  EXPECT_EQ(labels["edged.io/hardware.usb"], "true");  // the keyboard is still there
  EXPECT_EQ(labels["kubernetes.io/hostname"], "node-1");  // another manager's label is untouched
  EXPECT_EQ(NodeLabelMetrics(f.registry).count("edged.io/hardware.zigbee"), 0u);
  EXPECT_EQ(Counter(f.registry, "edged_node_labels_apply_total", "success"), 2);
  module->Stop();
}

TEST(LabelsModule, RetriesErrorAnswersWithBackoff) {
  ModuleFixture f;
  FakeApiServer server(f.dir, f.token_file);
  server.Fail({503, 429, 409, 500});
  auto module = f.Module(f.Config(server.url(), server.ca()));
  ASSERT_TRUE(module->Start().ok());
  ASSERT_TRUE(module->WaitForSuccesses(1, 10s));
  EXPECT_EQ(Counter(f.registry, "edged_node_labels_apply_total", "retry"), 4);
  EXPECT_EQ(Counter(f.registry, "edged_node_labels_apply_total", "success"), 1);
  EXPECT_EQ(server.State()["requests"].size(), 5u);
  EXPECT_EQ(server.State()["labels"]["edged.io/hardware.usb"], "true");
  module->Stop();
}

TEST(LabelsModule, ServerDownNeverBlocksAndRecoversWhenItReturns) {
  ModuleFixture f;
  const int port = UnusedPort();
  // Certificates are made by the server; start it once to have them, then take it away.
  auto server = std::make_unique<FakeApiServer>(f.dir, f.token_file, port);
  const std::string url = server->url(), ca = server->ca();
  server->Kill();

  auto module = f.Module(f.Config(url, ca));
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(module->Start().ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 100ms);
  ASSERT_TRUE(module->WaitForAttempts(3, 10s));
  EXPECT_EQ(module->health().state, HealthState::kWarning);
  EXPECT_GE(Counter(f.registry, "edged_node_labels_apply_total", "retry"), 3);
  EXPECT_EQ(Counter(f.registry, "edged_node_labels_apply_total", "success"), 0);
  // Labels are known (and exported) even though they cannot be applied.
  EXPECT_EQ(NodeLabelMetrics(f.registry).at("edged.io/hardware.zigbee"), "true");

  server->Start(port);  // back on the same address: the capped backoff finds it within 200 ms
  ASSERT_TRUE(module->WaitForSuccesses(1, 10s));
  EXPECT_TRUE(module->health().ok());
  EXPECT_EQ(server->State()["labels"]["edged.io/hardware.zigbee"], "true");

  // A request the server holds for 30 s must not hold up Stop().
  const size_t before = server->State()["requests"].size();
  server->Hang(30);
  ASSERT_TRUE(f.bus->Unplug(1, 2));  // the inventory changes: a new apply starts and hangs
  for (int i = 0; i < 100 && server->State()["requests"].size() == before; ++i) std::this_thread::sleep_for(20ms);
  ASSERT_EQ(server->State()["requests"].size(), before + 1);
  start = std::chrono::steady_clock::now();
  module->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(LabelsModule, OutsideKubernetesLabelsAreMetricsAndAnNfdFile) {
  ModuleFixture f;
  config::LabelsConfig c = f.Config("", "");
  c.kubernetes.mode = "auto";  // and no KUBERNETES_SERVICE_HOST: systemd, not a pod
  c.allow = {"hardware/zigbee", "hardware/zigbee.adapter", "storage/nas"};
  c.nfd.enabled = true;
  c.nfd.path = f.dir / "features.d/edged";
  c.nfd.expiry = std::chrono::seconds(3600);
  auto module = f.Module(c);
  EXPECT_FALSE(module->kubernetes());
  ASSERT_TRUE(module->Start().ok());
  for (int i = 0; i < 250 && !fs::exists(c.nfd.path); ++i) std::this_thread::sleep_for(20ms);
  EXPECT_EQ(NodeLabelMetrics(f.registry),
            (std::map<std::string, std::string>{{"edged.io/hardware.zigbee", "true"},
                                                {"edged.io/hardware.zigbee.adapter", "zstack"},
                                                {"edged.io/storage.nas", "true"}}));
  const std::string nfd = ReadFile(c.nfd.path);
  ASSERT_EQ(nfd.rfind("# +expiry-time=20", 0), 0u) << nfd;
  EXPECT_NE(nfd.find("\nedged.io/hardware.zigbee.adapter=zstack\n"), std::string::npos) << nfd;
  EXPECT_NE(nfd.find("\nedged.io/storage.nas=true\n"), std::string::npos) << nfd;
  EXPECT_EQ(nfd.find("nvidia"), std::string::npos) << nfd;  // not in the allow-list
  EXPECT_EQ(Counter(f.registry, "edged_node_labels_apply_total", "success"), 0);
  module->Stop();
}

TEST(LabelsModule, FactoryRejectsConfigurationsThatCannotWork) {
  ModuleFixture f;
  prometheus::Registry registry;
  NodeLabelsOptions no_env;
  no_env.env = [](const char*) { return std::optional<std::string>(); };
  config::LabelsConfig c = f.Config("https://127.0.0.1:6443", "");
  c.kubernetes.node_name = "";  // and no NODE_NAME in the environment
  EXPECT_EQ(NewNodeLabelsModule(c, *f.scanner, registry, no_env).status().code(), StatusCode::kInvalidArgument);

  config::LabelsConfig bad_mode = f.Config("", "");
  bad_mode.kubernetes.mode = "sometimes";
  EXPECT_EQ(NewNodeLabelsModule(bad_mode, *f.scanner, registry, no_env).status().code(),
            StatusCode::kInvalidArgument);

  config::LabelsConfig bad_prefix = f.Config("", "");
  bad_prefix.kubernetes.mode = "off";
  bad_prefix.prefix = "Not A Domain/";
  EXPECT_EQ(NewNodeLabelsModule(bad_prefix, *f.scanner, registry, no_env).status().code(),
            StatusCode::kInvalidArgument);

  // In a pod: the API server and node name come from the environment.
  NodeLabelsOptions pod;
  pod.env = [](const char* name) -> std::optional<std::string> {
    if (std::string(name) == "KUBERNETES_SERVICE_HOST") return "10.96.0.1";
    if (std::string(name) == "KUBERNETES_SERVICE_PORT") return "443";
    if (std::string(name) == "NODE_NAME") return "node-1";
    return std::nullopt;
  };
  config::LabelsConfig in_pod;  // all defaults: mode auto
  auto m = NewNodeLabelsModule(in_pod, *f.scanner, registry, pod);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_TRUE((*m)->kubernetes());
}

}  // namespace
}  // namespace edged::labels

namespace edged::labels {
namespace {

// The real scanner (libusb, dlopen'd CUDA) on the fixture trees: whatever this machine's USB bus
// holds, the GPUs, mounts and disks come from the fixtures.
TEST(LabelsModule, RealInventoryScannerReadsTheConfiguredRoots) {
  prometheus::Registry registry;
  config::LabelsConfig c;
  c.proc_root = kProc;
  c.sys_root = kSys;
  c.dev_root = "/nonexistent-dev";
  auto scanner = NewInventoryScanner(c, registry);
  ASSERT_TRUE(scanner->Start().ok());
  ASSERT_TRUE(scanner->WaitForScans(1, 10s));
  auto inv = scanner->Current();
  ASSERT_NE(inv, nullptr);
  EXPECT_EQ(inv->gpu.gpus.size(), 2u);
  EXPECT_EQ(inv->gpu.driver_version, "535.129.03");
  EXPECT_EQ(inv->network_mounts.size(), 3u);
  EXPECT_EQ(inv->disks.size(), 3u);
  scanner->Stop();
}

TEST(LabelsModule, HardwareLabelsModuleOwnsScannerAndLabels) {
  prometheus::Registry registry;
  config::LabelsConfig c;
  c.proc_root = kProc;
  c.sys_root = kSys;
  c.kubernetes.mode = "off";
  auto module = NewHardwareLabelsModule(c, registry);
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  EXPECT_EQ((*module)->name(), "labels");
  ASSERT_TRUE((*module)->Start().ok());
  std::map<std::string, std::string> metrics;
  for (int i = 0; i < 250 && metrics.count("hardware/nvidia") == 0; ++i) {
    std::this_thread::sleep_for(20ms);
    metrics = NodeLabelMetrics(registry);
  }
  EXPECT_EQ(metrics["hardware/nvidia"], "true");
  EXPECT_EQ(metrics["storage/nas"], "true");
  EXPECT_TRUE((*module)->health().ok()) << (*module)->health().message;
  (*module)->Stop();
  (*module)->Stop();
}

}  // namespace
}  // namespace edged::labels
