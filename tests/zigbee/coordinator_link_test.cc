// ZnpCoordinator's link state when a write, not a read, finds the link gone. A real TCP link to a
// listener on loopback carries the bytes; the wrapper below makes one write fail the way a tty write
// fails when the stick is pulled (Unavailable, link closed) while the reader has not seen the hang-up:
// the reader polls a quiet pipe instead of the socket. No real device can be made to fail in that
// order on purpose (it is a race on a pulled stick), so this is the one stand-in.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "drivers/serial/link.h"
#include "drivers/zigbee/znp/coordinator.h"

namespace edged::zigbee::znp {
namespace {

using namespace std::chrono_literals;

class FailingWriteLink final : public serial::CoordinatorLink {
 public:
  FailingWriteLink(std::unique_ptr<serial::CoordinatorLink> real, std::atomic<bool>& fail_next_write)
      : real_(std::move(real)), fail_next_write_(fail_next_write) {
    if (::pipe2(quiet_, O_CLOEXEC) != 0) quiet_[0] = quiet_[1] = -1;
  }
  ~FailingWriteLink() override {
    for (int fd : quiet_) {
      if (fd >= 0) ::close(fd);
    }
  }
  FailingWriteLink(const FailingWriteLink&) = delete;
  FailingWriteLink& operator=(const FailingWriteLink&) = delete;
  Status Open() override { return real_->Open(); }
  void Close() override { real_->Close(); }
  bool is_open() const override { return real_->is_open(); }
  int fd() const override { return real_->is_open() ? quiet_[0] : -1; }
  StatusOr<std::size_t> Read(std::span<std::byte> buffer) override { return real_->Read(buffer); }
  Status Write(std::span<const std::byte> bytes, std::chrono::milliseconds timeout) override {
    if (fail_next_write_.exchange(false)) {
      real_->Close();
      return UnavailableError("write: Input/output error (errno 5)");
    }
    return real_->Write(bytes, timeout);
  }
  std::string Describe() const override { return real_->Describe(); }

 private:
  std::unique_ptr<serial::CoordinatorLink> real_;
  std::atomic<bool>& fail_next_write_;
  int quiet_[2] = {-1, -1};  // never written: the reader's poll sees nothing, as before a hang-up shows
};

template <typename Predicate>
bool Eventually(Predicate predicate, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST(ZnpCoordinatorLink, AWriteThatFindsTheLinkGoneReportsItDown) {
  int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof addr;
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &length), 0);
  auto real = serial::MakeCoordinatorLink({"tcp://127.0.0.1:" + std::to_string(ntohs(addr.sin_port))});
  ASSERT_TRUE(real.ok()) << real.status().ToString();
  std::atomic<bool> fail_next_write{false};
  ZnpCoordinator coordinator(std::make_unique<FailingWriteLink>(std::move(*real), fail_next_write), 500ms, 50ms,
                             200ms);
  std::atomic<int> ups{0}, downs{0};
  coordinator.SetHandlers([](const Message&) {}, [&](bool up, const Status&) { ++(up ? ups : downs); }, nullptr);
  coordinator.Start();
  ASSERT_TRUE(Eventually([&] { return ups.load() == 1; }, 3s));

  fail_next_write = true;
  EXPECT_FALSE(coordinator.Post(Subsystem::kSYS, "resetReq", {{"type", 1u}}).ok());
  // The reader reports the loss once, even though no read failed, and then reconnects.
  EXPECT_TRUE(Eventually([&] { return downs.load() == 1; }, 2s)) << "the link loss was never reported";
  EXPECT_TRUE(Eventually([&] { return ups.load() == 2; }, 3s));
  EXPECT_EQ(downs.load(), 1);
  coordinator.Stop();
  ::close(listener);
}

}  // namespace
}  // namespace edged::zigbee::znp
