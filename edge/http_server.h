// The daemon's small HTTP server (civetweb): exact-path GET routes such as /metrics, /healthz, /readyz.
// Handlers run on civetweb's worker threads (a fixed, small pool) and must be thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "base/status.h"

namespace edged {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse()>;

  // Listens on address:port (port 0 picks a free one, see port()). Fails with a message naming the
  // address when it cannot bind (in use, permission).
  static StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& address, int port,
                                                     std::map<std::string, Handler> routes);
  ~HttpServer();  // stops listening and waits for in-flight requests
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

  struct Context;

 private:
  HttpServer() = default;
  std::unique_ptr<Context> context_;
  int port_ = 0;
};

}  // namespace edged
