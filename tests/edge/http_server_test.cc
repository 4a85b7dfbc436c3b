// The daemon's HTTP server on a real loopback socket: exact-path routes, status codes, unknown paths,
// a port already taken.
#include "edge/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

namespace edged {
namespace {

// A minimal HTTP/1.0 GET over a socket: returns the raw response ("" when the connect fails).
std::string Get(int port, const std::string& path, const std::string& method = "GET") {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "";
  }
  std::string request = method + " " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  EXPECT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) response.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  return response;
}

std::map<std::string, HttpServer::Handler> Routes() {
  return {{"/healthz", [] { return HttpResponse{200, "text/plain", "ok\n"}; }},
          {"/readyz", [] { return HttpResponse{503, "application/json", "{\"ready\":false}\n"}; }},
          {"/boom", []() -> HttpResponse { throw std::runtime_error("handler failed"); }}};
}

TEST(EdgeHttpServer, ServesExactRoutesWithTheirStatus) {
  auto server = HttpServer::Start("127.0.0.1", 0, Routes());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const int port = (*server)->port();
  ASSERT_GT(port, 0);

  std::string healthz = Get(port, "/healthz");
  EXPECT_NE(healthz.find("HTTP/1.1 200"), std::string::npos) << healthz;
  EXPECT_NE(healthz.find("\r\n\r\nok\n"), std::string::npos) << healthz;

  std::string readyz = Get(port, "/readyz");
  EXPECT_NE(readyz.find("HTTP/1.1 503"), std::string::npos) << readyz;
  EXPECT_NE(readyz.find("Content-Type: application/json"), std::string::npos) << readyz;

  EXPECT_NE(Get(port, "/healthz/extra").find(" 404"), std::string::npos);
  EXPECT_NE(Get(port, "/nothing").find(" 404"), std::string::npos);
}

TEST(EdgeHttpServer, HandlerExceptionBecomes500AndServerLivesOn) {
  auto server = HttpServer::Start("127.0.0.1", 0, Routes());
  ASSERT_TRUE(server.ok());
  EXPECT_NE(Get((*server)->port(), "/boom").find("HTTP/1.1 500"), std::string::npos);
  EXPECT_NE(Get((*server)->port(), "/healthz").find("HTTP/1.1 200"), std::string::npos);
}

TEST(EdgeHttpServer, RejectsOtherMethods) {
  auto server = HttpServer::Start("127.0.0.1", 0, Routes());
  ASSERT_TRUE(server.ok());
  EXPECT_NE(Get((*server)->port(), "/healthz", "POST").find("HTTP/1.1 405"), std::string::npos);
}

TEST(EdgeHttpServer, PortInUseIsAClearError) {
  auto first = HttpServer::Start("127.0.0.1", 0, Routes());
  ASSERT_TRUE(first.ok());
  auto second = HttpServer::Start("127.0.0.1", (*first)->port(), Routes());
  ASSERT_FALSE(second.ok());
  EXPECT_NE(std::string(second.status().message()).find("cannot listen on 127.0.0.1:"), std::string::npos)
      << second.status().ToString();
}

TEST(EdgeHttpServer, StopsListeningWhenDestroyed) {
  int port = 0;
  {
    auto server = HttpServer::Start("127.0.0.1", 0, Routes());
    ASSERT_TRUE(server.ok());
    port = (*server)->port();
  }
  EXPECT_EQ(Get(port, "/healthz"), "");
}

}  // namespace
}  // namespace edged
