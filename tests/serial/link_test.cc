// Real pseudo-terminals and real loopback TCP sockets: the same kernel paths a dongle and an SLZB-06 take.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pty.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "drivers/serial/link.h"

namespace edged::serial {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

struct Pty {
  int master = -1;
  std::string slave_path;
  Pty() {
    int slave = -1;
    char name[256] = {};
    if (::openpty(&master, &slave, name, nullptr, nullptr) == 0) {
      slave_path = name;
      ::close(slave);  // the link opens it by path, as it would a real tty
      ::fcntl(master, F_SETFL, O_NONBLOCK);
    }
  }
  ~Pty() { Close(); }
  void Close() {
    if (master >= 0) ::close(master);
    master = -1;
  }
};

std::string ReadSome(CoordinatorLink& link, std::size_t want) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
    auto ready = WaitReadable(link, 100ms);
    if (!ready.ok()) break;
    std::byte buf[256];
    auto n = link.Read(buf);
    if (!n.ok()) break;
    out.append(reinterpret_cast<const char*>(buf), *n);
  }
  return out;
}

std::span<const std::byte> Bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

TEST(SerialTty, ReadWriteHangupAndReopenThroughSymlink) {
  const fs::path dir = fs::temp_directory_path() / ("edged-serial-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path by_id = dir / "usb-Texas_Instruments_CC2652-if00";
  auto pty = std::make_unique<Pty>();
  ASSERT_GE(pty->master, 0);
  fs::create_symlink(pty->slave_path, by_id);

  auto link = MakeCoordinatorLink({by_id.string(), 115200, false});
  ASSERT_TRUE(link.ok());
  ASSERT_TRUE((*link)->Open().ok());
  EXPECT_NE((*link)->Describe().find(pty->slave_path), std::string::npos);

  ASSERT_EQ(::write(pty->master, "\xfe\x00\x21\x01\x20", 5), 5);
  EXPECT_EQ(ReadSome(**link, 5), std::string("\xfe\x00\x21\x01\x20", 5));
  ASSERT_TRUE((*link)->Write(Bytes("\xef"), 1000ms).ok());
  char c = 0;
  for (int i = 0; i < 100 && ::read(pty->master, &c, 1) != 1; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(c, '\xef');

  // The dongle goes away: detected at the next poll, not after a timeout.
  pty->Close();
  const auto t0 = std::chrono::steady_clock::now();
  Status st;
  for (int i = 0; i < 10 && st.ok(); ++i) {
    auto r = WaitReadable(**link, 1000ms);
    if (!r.ok()) { st = r.status(); break; }
    std::byte buf[16];
    auto n = (*link)->Read(buf);
    if (!n.ok()) st = n.status();
  }
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);
  EXPECT_FALSE((*link)->is_open());

  // Comes back as another pts: the symlink is re-resolved on reopen.
  pty = std::make_unique<Pty>();
  fs::remove(by_id);
  fs::create_symlink(pty->slave_path, by_id);
  ASSERT_TRUE((*link)->Open().ok());
  EXPECT_NE((*link)->Describe().find(pty->slave_path), std::string::npos);
  ASSERT_EQ(::write(pty->master, "ok", 2), 2);
  EXPECT_EQ(ReadSome(**link, 2), "ok");
  (*link)->Close();
  fs::remove_all(dir);
}

TEST(SerialTty, MissingDeviceAndBadOptions) {
  auto link = MakeCoordinatorLink({"/dev/serial/by-id/no-such-dongle", 115200, false});
  ASSERT_TRUE(link.ok());
  EXPECT_EQ((*link)->Open().code(), StatusCode::kUnavailable);
  EXPECT_EQ(MakeCoordinatorLink({"/dev/ttyACM0", 12345, false}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeCoordinatorLink({"ttyACM0", 115200, false}).status().code(), StatusCode::kInvalidArgument);
  for (const char* bad : {"tcp://", "tcp://host", "tcp://host:0", "tcp://host:99999", "tcp://:6638", "tcp://[::1]6638"}) {
    EXPECT_EQ(MakeCoordinatorLink({bad, 115200, false}).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  auto regular = MakeCoordinatorLink({"/etc/hostname", 115200, false});
  ASSERT_TRUE(regular.ok());
  EXPECT_FALSE((*regular)->Open().ok());  // not a tty
}

TEST(SerialTcp, ExchangeAndPeerClose) {
  const int srv = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(srv, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(srv, 1), 0);
  socklen_t len = sizeof addr;
  ::getsockname(srv, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);

  auto link = MakeCoordinatorLink({"tcp://127.0.0.1:" + std::to_string(port), 115200, false});
  ASSERT_TRUE(link.ok());
  ASSERT_TRUE((*link)->Open().ok());
  const int peer = ::accept(srv, nullptr, nullptr);
  ASSERT_GE(peer, 0);
  ASSERT_TRUE((*link)->Write(Bytes(std::string_view("\xfe\x00\x21\x01\x20", 5)), 1000ms).ok());
  char buf[8];
  EXPECT_EQ(::recv(peer, buf, sizeof buf, 0), 5);
  ASSERT_EQ(::send(peer, "xyz", 3, 0), 3);
  EXPECT_EQ(ReadSome(**link, 3), "xyz");
  ::close(peer);
  Status st;
  for (int i = 0; i < 10 && st.ok(); ++i) {
    auto r = WaitReadable(**link, 1000ms);
    if (!r.ok()) { st = r.status(); break; }
    std::byte b[16];
    auto n = (*link)->Read(b);
    if (!n.ok()) st = n.status();
  }
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  ::close(srv);
  // Nobody listens any more: reopen fails as Unavailable, for the backoff loop to retry.
  EXPECT_EQ((*link)->Open().code(), StatusCode::kUnavailable);
}

TEST(SerialBackoff, DoublesAndCaps) {
  Backoff b(100ms, 1000ms);
  EXPECT_EQ(b.Next(), 100ms);
  EXPECT_EQ(b.Next(), 200ms);
  EXPECT_EQ(b.Next(), 400ms);
  EXPECT_EQ(b.Next(), 800ms);
  EXPECT_EQ(b.Next(), 1000ms);
  EXPECT_EQ(b.Next(), 1000ms);
  b.Reset();
  EXPECT_EQ(b.Next(), 100ms);
}

}  // namespace
}  // namespace edged::serial
