// Capture against real inputs: vtest.avi (sampling, latest-wins, loop, end of file), an HTTP MJPEG
// server on 127.0.0.1 that this test starts, stops and restarts (the camera disappears and comes
// back), a server that sends garbage, a garbage file and a missing file.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include "detect/capture/capture.h"

namespace edged::detect {
namespace {

using namespace std::chrono_literals;

const std::string kVideo = std::string(EDGED_DATA_DIR) + "/video/vtest.avi";

// Serves multipart/x-mixed-replace JPEG frames (or garbage) to every client on 127.0.0.1:port.
class MjpegServer {
 public:
  explicit MjpegServer(bool garbage = false) : garbage_(garbage) {
    cv::VideoCapture cap(kVideo, cv::CAP_FFMPEG);
    cv::Mat bgr, small;
    for (int i = 0; i < 10 && cap.read(bgr); ++i) {
      cv::resize(bgr, small, cv::Size(320, 240));
      std::vector<uint8_t> jpeg;
      cv::imencode(".jpg", small, jpeg);
      jpegs_.push_back(std::move(jpeg));
    }
  }
  ~MjpegServer() { Stop(); }

  // Listens on `port` (0: any free port); returns the port.
  int Start(int port = 0) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    EXPECT_EQ(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << "bind port " << port;
    socklen_t len = sizeof addr;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    ::listen(listen_fd_, 8);
    running_ = true;
    acceptor_ = std::thread([this] { Accept(); });
    return ntohs(addr.sin_port);
  }

  // Closes the listener and every connection: the camera is gone.
  void Stop() {
    if (!running_.exchange(false)) return;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    std::vector<std::thread> clients;
    {
      std::lock_guard lock(mu_);
      for (int fd : client_fds_) ::shutdown(fd, SHUT_RDWR);
      clients.swap(clients_);
    }
    for (auto& t : clients) t.join();
    std::lock_guard lock(mu_);
    for (int fd : client_fds_) ::close(fd);
    client_fds_.clear();
  }

 private:
  void Accept() {
    while (running_) {
      const int fd = ::accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      std::lock_guard lock(mu_);
      client_fds_.push_back(fd);
      clients_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  bool Send(int fd, const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
      if (w <= 0) return false;
      p += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  void Serve(int fd) {
    char buf[2048];
    (void)::recv(fd, buf, sizeof buf, 0);  // the request; its content does not matter
    const std::string head =
        "HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\nCache-Control: no-cache\r\n\r\n";
    if (!Send(fd, head.data(), head.size())) return;
    std::mt19937 rng(7);
    for (size_t i = 0; running_; ++i) {
      if (garbage_) {
        std::vector<uint8_t> junk(4096);
        for (auto& b : junk) b = static_cast<uint8_t>(rng());
        if (!Send(fd, junk.data(), junk.size())) return;
      } else {
        const auto& jpeg = jpegs_[i % jpegs_.size()];
        const std::string part = "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                                 std::to_string(jpeg.size()) + "\r\n\r\n";
        if (!Send(fd, part.data(), part.size()) || !Send(fd, jpeg.data(), jpeg.size()) || !Send(fd, "\r\n", 2)) {
          return;
        }
      }
      std::this_thread::sleep_for(20ms);
    }
  }

  bool garbage_;
  std::vector<std::vector<uint8_t>> jpegs_;
  int listen_fd_ = -1;
  std::atomic<bool> running_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> client_fds_;
  std::vector<std::thread> clients_;
};

CaptureOptions FastOptions(double fps) {
  CaptureOptions o;
  o.camera = "test";
  o.fps = fps;
  o.realtime_files = false;
  o.backoff_initial = 50ms;
  o.backoff_max = 200ms;
  return o;
}

FrameSourceOptions ShortTimeouts() { return FrameSourceOptions{.open_timeout = 2000ms, .read_timeout = 1000ms}; }

template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

TEST(DetectCapture, RedactsPasswords) {
  EXPECT_EQ(RedactUrl("rtsp://admin:hunter2@10.0.0.5:554/stream1"), "rtsp://admin:***@10.0.0.5:554/stream1");
  EXPECT_EQ(RedactUrl("http://cam/video.mjpg?user=a&password=x1&fps=5"), "http://cam/video.mjpg?user=a&password=***&fps=5");
  EXPECT_EQ(RedactUrl("rtsp://10.0.0.5/live"), "rtsp://10.0.0.5/live");
  EXPECT_EQ(RedactUrl("rtsp://user@10.0.0.5/live"), "rtsp://user@10.0.0.5/live");
  EXPECT_EQ(RedactUrl("/videos/front.mp4"), "/videos/front.mp4");
}

TEST(DetectCapture, LumaMatchesI420) {
  cv::VideoCapture cap(kVideo, cv::CAP_FFMPEG);
  cv::Mat bgr, i420, ref;
  ASSERT_TRUE(cap.read(bgr));
  cv::Mat y = LumaFromBgr(bgr, &i420);
  cv::cvtColor(bgr, ref, cv::COLOR_BGR2YUV_I420);
  ASSERT_EQ(y.size(), bgr.size());
  EXPECT_EQ(cv::countNonZero(y != ref.rowRange(0, bgr.rows)), 0);
}

TEST(DetectCapture, FileSampledToFpsAndEnds) {
  // vtest.avi: 795 frames at 10 fps; sampling to 5 fps hands on every other frame. The consumer takes
  // nothing until the end, so all but the last delivered frame are dropped, and decoding never waits.
  Capture capture(MakeOpenCvFrameSource(kVideo), FastOptions(5));
  capture.Start();
  ASSERT_TRUE(WaitFor([&] { return capture.stats().ended; }, 60s));
  const CaptureStats s = capture.stats();
  EXPECT_EQ(s.decoded, 795u);
  EXPECT_EQ(s.delivered, 398u);
  EXPECT_EQ(s.skipped, 397u);
  EXPECT_EQ(s.dropped, 397u);
  EXPECT_EQ(s.reconnects, 0u);
  auto last = capture.Next(100ms);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->bgr.size(), cv::Size(768, 576));
  EXPECT_EQ(last->luma.size(), cv::Size(768, 576));
  EXPECT_EQ(last->luma.type(), CV_8UC1);
  EXPECT_EQ(last->sequence, 795u);
  EXPECT_NEAR(last->stream_time_s, 79.4, 1e-6);
  EXPECT_FALSE(capture.Next(50ms).has_value()) << "ended: nothing more";
}

TEST(DetectCapture, SlowConsumerGetsLatestAndFileLoops) {
  CaptureOptions o = FastOptions(0);  // every frame
  o.loop = true;
  Capture capture(MakeOpenCvFrameSource(kVideo), o);
  capture.Start();
  uint64_t previous = 0;
  for (int i = 0; i < 5; ++i) {
    auto f = capture.Next(5s);
    ASSERT_TRUE(f.has_value());
    EXPECT_GT(f->sequence, previous);
    previous = f->sequence;
    std::this_thread::sleep_for(100ms);  // a slow detector
  }
  ASSERT_TRUE(WaitFor([&] { return capture.stats().decoded > 800; }, 60s)) << "loops past the end";
  capture.Stop();
  const CaptureStats s = capture.stats();
  EXPECT_GT(s.dropped, 0u);
  EXPECT_EQ(s.delivered, s.taken + s.dropped + (capture.Next(0ms).has_value() ? 1 : 0));
  EXPECT_FALSE(s.ended);
  EXPECT_TRUE(s.last_error.empty()) << s.last_error;
}

TEST(DetectCapture, ReplayWaitsForTheConsumerAndStopsAtMaxFrames) {
  // Replays (the module's realtime=false, edged-detect) process every sampled frame: decoding waits for
  // a slow consumer instead of dropping. Looping keeps the file's clock running; max_frames ends it.
  CaptureOptions o = FastOptions(5);
  o.loop = true;
  o.wait_for_consumer = true;
  o.max_frames = 900;  // 795 frames, then 105 more of the second pass
  Capture capture(MakeOpenCvFrameSource(kVideo), o);
  capture.Start();
  std::vector<double> times;
  while (auto f = capture.Next(5s)) {
    times.push_back(f->stream_time_s);
    if (times.size() % 100 == 0) std::this_thread::sleep_for(200ms);  // a slow detector now and then
  }
  const CaptureStats s = capture.stats();
  EXPECT_TRUE(s.ended);
  EXPECT_EQ(s.decoded, 900u);
  EXPECT_EQ(s.delivered, 450u);
  EXPECT_EQ(s.taken, 450u);
  EXPECT_EQ(s.dropped, 0u);
  ASSERT_EQ(times.size(), 450u);
  for (size_t i = 1; i < times.size(); ++i) EXPECT_NEAR(times[i] - times[i - 1], 0.2, 1e-6) << "frame " << i;
}

TEST(DetectCapture, MissingFileIsAClearError) {
  Capture capture(MakeOpenCvFrameSource("/nonexistent/front_door.mp4"), FastOptions(5));
  capture.Start();
  ASSERT_TRUE(WaitFor([&] { return capture.stats().failures >= 2; }, 5s)) << "retries with backoff";
  const CaptureStats s = capture.stats();
  EXPECT_FALSE(s.up);
  EXPECT_NE(s.last_error.find("camera 'test'"), std::string::npos) << s.last_error;
  EXPECT_NE(s.last_error.find("/nonexistent/front_door.mp4"), std::string::npos) << s.last_error;
  EXPECT_NE(s.last_error.find("does not exist"), std::string::npos) << s.last_error;
  auto source = MakeOpenCvFrameSource("/nonexistent/front_door.mp4");
  EXPECT_EQ(source->Open().code(), StatusCode::kNotFound);
}

TEST(DetectCapture, GarbageFileIsAClearError) {
  const std::string path = ::testing::TempDir() + "/garbage_camera.mp4";
  {
    std::ofstream out(path, std::ios::binary);
    std::mt19937 rng(1);
    for (int i = 0; i < 200000; ++i) out.put(static_cast<char>(rng()));
  }
  auto source = MakeOpenCvFrameSource(path);
  Status st = source->Open();
  if (st.ok()) {
    // FFmpeg may accept the container and fail on the frames instead.
    auto grabbed = source->Grab();
    EXPECT_TRUE(!grabbed.ok() || !*grabbed);
  } else {
    EXPECT_NE(st.message().find(path), std::string_view::npos) << st.ToString();
    EXPECT_NE(st.message().find("not a video stream"), std::string_view::npos) << st.ToString();
  }
  Capture capture(MakeOpenCvFrameSource(path), FastOptions(5));
  capture.Start();
  ASSERT_TRUE(WaitFor([&] { return capture.stats().failures >= 1; }, 10s));
  EXPECT_EQ(capture.stats().delivered, 0u);
  EXPECT_NE(capture.stats().last_error.find(path), std::string::npos) << capture.stats().last_error;
  std::remove(path.c_str());
}

TEST(DetectCapture, GarbageStreamIsAClearError) {
  MjpegServer server(/*garbage=*/true);
  const int port = server.Start();
  const std::string url = "http://viewer:s3cret@127.0.0.1:" + std::to_string(port) + "/stream.mjpg";
  Capture capture(MakeOpenCvFrameSource(url, ShortTimeouts()), FastOptions(5));
  capture.Start();
  ASSERT_TRUE(WaitFor([&] { return capture.stats().failures >= 1; }, 15s));
  capture.Stop();
  const CaptureStats s = capture.stats();
  EXPECT_EQ(s.delivered, 0u);
  EXPECT_NE(s.last_error.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << s.last_error;
  EXPECT_EQ(s.last_error.find("s3cret"), std::string::npos) << "password must be redacted: " << s.last_error;
  EXPECT_NE(s.last_error.find("viewer:***@"), std::string::npos) << s.last_error;
}

TEST(DetectCapture, CameraThatDisappearsIsReconnected) {
  MjpegServer server;
  const int port = server.Start();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/stream.mjpg";
  Capture capture(MakeOpenCvFrameSource(url, ShortTimeouts()), FastOptions(10));
  capture.Start();
  ASSERT_TRUE(capture.Next(10s).has_value()) << capture.stats().last_error;
  EXPECT_TRUE(capture.stats().up);
  auto first = capture.Next(5s);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->bgr.size(), cv::Size(320, 240));

  server.Stop();  // the camera goes away
  ASSERT_TRUE(WaitFor([&] { return !capture.stats().up; }, 10s));
  ASSERT_TRUE(WaitFor([&] { return capture.stats().failures >= 2; }, 10s)) << "keeps retrying while it is gone";
  const std::string error = capture.stats().last_error;
  EXPECT_NE(error.find(url), std::string::npos) << error;

  ASSERT_EQ(server.Start(port), port);  // and comes back on the same address
  ASSERT_TRUE(WaitFor([&] { return capture.stats().up && capture.stats().reconnects >= 1; }, 10s))
      << capture.stats().last_error;
  while (capture.Next(0ms)) {
  }
  auto again = capture.Next(5s);
  ASSERT_TRUE(again.has_value());
  EXPECT_GT(again->sequence, first->sequence);
  const CaptureStats s = capture.stats();
  EXPECT_EQ(s.reconnects, 1u);
  EXPECT_TRUE(s.last_error.empty());
  capture.Stop();
}

}  // namespace
}  // namespace edged::detect
