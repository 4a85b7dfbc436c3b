// A camera that disappears and comes back: an HTTP MJPEG server on loopback is stopped and restarted on
// the same port; the cameras module notices, reports it, reconnects and counts the reconnect.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <prometheus/registry.h>

#include "base/module.h"
#include "detect/pipeline/camera_module.h"
#include "tests/support/mqtt_test_support.h"

namespace edged::detect {
namespace {

using std::chrono::milliseconds;

// Serves multipart/x-mixed-replace JPEG frames (an "IP camera") to one client at a time, 10 per second.
class MjpegServer {
 public:
  explicit MjpegServer(std::uint16_t port) : port_(port) {
    cv::Mat img(240, 320, CV_8UC3, cv::Scalar(60, 90, 120));
    std::vector<uchar> buf;
    cv::imencode(".jpg", img, buf);
    jpeg_.assign(buf.begin(), buf.end());
  }
  ~MjpegServer() { Stop(); }

  bool Start() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(listen_fd_, 4) != 0) {
      ::close(listen_fd_);
      listen_fd_ = -1;
      return false;
    }
    running_ = true;
    thread_ = std::thread([this] { Serve(); });
    return true;
  }

  void Stop() {
    running_ = false;
    if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
    if (int fd = client_fd_.exchange(-1); fd >= 0) ::shutdown(fd, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) ::close(listen_fd_);
    listen_fd_ = -1;
  }

 private:
  void Serve() {
    while (running_) {
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      client_fd_ = fd;
      char request[2048];
      (void)::recv(fd, request, sizeof(request), 0);
      const std::string header =
          "HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\nCache-Control: no-cache\r\n\r\n";
      bool ok = ::send(fd, header.data(), header.size(), MSG_NOSIGNAL) > 0;
      while (ok && running_) {
        const std::string part = "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + std::to_string(jpeg_.size()) +
                                 "\r\n\r\n" + jpeg_ + "\r\n";
        ok = ::send(fd, part.data(), part.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(part.size());
        std::this_thread::sleep_for(milliseconds(100));
      }
      client_fd_.exchange(-1);
      ::close(fd);
    }
  }

  std::uint16_t port_;
  std::string jpeg_;
  int listen_fd_ = -1;
  std::atomic<int> client_fd_{-1};
  std::atomic<bool> running_{false};
  std::thread thread_;
};

double Value(prometheus::Registry& registry, const std::string& name) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name || family.metric.empty()) continue;
    const auto& m = family.metric.front();
    return family.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
  }
  return -1;
}

bool WaitUntil(const std::function<bool()>& condition, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(milliseconds(50));
  }
  return condition();
}

TEST(DetectPipelineReconnect, HttpCameraStoppedAndRestartedIsReconnectedAndCounted) {
  auto broker = test::MosquittoBroker::Start();
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  auto client = mqtt::Client::Create((*broker)->ClientConfig("edged_cameras_reconnect"), nullptr);
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->Start().ok());

  const std::uint16_t port = test::FreeTcpPort();
  auto server = std::make_unique<MjpegServer>(port);
  ASSERT_TRUE(server->Start());

  config::CamerasConfig cams;
  cams.detector.device = "cpu";
  config::CameraConfig cam;
  cam.input = "http://127.0.0.1:" + std::to_string(port) + "/stream.mjpg";
  cam.fps = 5;
  cams.streams["door"] = cam;
  test::TempDir state("edged-cameras-reconnect");
  prometheus::Registry registry;
  auto module = CreateCamerasModule(cams, **client, registry, state.path(), {});
  ASSERT_TRUE(module.ok()) << module.status().ToString();
  ASSERT_TRUE((*module)->Start().ok());

  ASSERT_TRUE(WaitUntil([&] { return Value(registry, "edged_camera_up") == 1; }, milliseconds(20000)))
      << (*module)->health().message;
  EXPECT_TRUE((*module)->health().ok()) << (*module)->health().message;
  EXPECT_EQ(Value(registry, "edged_camera_reconnects_total"), 0);

  server->Stop();  // the camera goes away
  ASSERT_TRUE(WaitUntil([&] { return !(*module)->health().ok(); }, milliseconds(15000)));
  EXPECT_EQ(Value(registry, "edged_camera_up"), 0);
  EXPECT_NE((*module)->health().message.find("door"), std::string::npos) << (*module)->health().message;

  server = std::make_unique<MjpegServer>(port);  // and comes back on the same address
  ASSERT_TRUE(server->Start());
  ASSERT_TRUE(WaitUntil([&] { return (*module)->health().ok() && Value(registry, "edged_camera_up") == 1; },
                        milliseconds(40000)))
      << (*module)->health().message;
  EXPECT_EQ(Value(registry, "edged_camera_reconnects_total"), 1);  // failed attempts in between do not count

  const auto t0 = std::chrono::steady_clock::now();
  (*module)->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(6));
  server->Stop();
  (*client)->Stop();
}

}  // namespace
}  // namespace edged::detect
