#include "edge/http_server.h"

#include <civetweb.h>

#include <cstring>
#include <vector>

#include <fmt/format.h>

namespace edged {

struct HttpServer::Context {
  std::map<std::string, Handler> routes;
  mg_context* civet = nullptr;
  std::vector<std::unique_ptr<std::string>> route_names;  // stable storage for civetweb's cbdata
};

namespace {

int HandleRequest(mg_connection* connection, void* cbdata) {
  const auto* handler = static_cast<const HttpServer::Handler*>(cbdata);
  const mg_request_info* request = mg_get_request_info(connection);
  HttpResponse response;
  if (std::strcmp(request->request_method, "GET") != 0 && std::strcmp(request->request_method, "HEAD") != 0) {
    response = {405, "text/plain; charset=utf-8", "only GET and HEAD are supported\n"};
  } else {
    try {
      response = (*handler)();
    } catch (const std::exception& e) {
      response = {500, "text/plain; charset=utf-8", fmt::format("{}{}{}", "internal error: ", e.what(), "\n")};
    }
  }
  mg_printf(connection,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
            "Connection: close\r\n\r\n",
            response.status, mg_get_response_code_text(connection, response.status),
            response.content_type.c_str(), response.body.size());
  if (std::strcmp(request->request_method, "HEAD") != 0) {
    mg_write(connection, response.body.data(), response.body.size());
  }
  return response.status;
}

// civetweb logs through this callback; keep its chatter out of our stderr unless it is an error.
int SilenceLog(const mg_connection*, const char*) { return 1; }

}  // namespace

StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& address, int port,
                                                        std::map<std::string, Handler> routes) {
  static_cast<void>(mg_init_library(0));
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->context_ = std::make_unique<Context>();
  server->context_->routes = std::move(routes);

  const std::string listen = fmt::format("{}{}{}", address.find(':') != std::string::npos ? "[" + address + "]" : address, ":", port);
  // A small fixed pool: scrapes and probes are cheap, and every idle thread costs resident memory.
  const char* options[] = {"listening_ports", listen.c_str(), "num_threads", "4", "request_timeout_ms", "10000",
                           "enable_keep_alive", "no", nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = SilenceLog;
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.configuration_options = options;
  mg_error_data error{};
  unsigned error_code = 0;
  error.code = &error_code;
  char error_text[256] = {0};
  error.text = error_text;
  error.text_buffer_size = sizeof error_text;
  server->context_->civet = mg_start2(&init, &error);
  if (server->context_->civet == nullptr) {
    return UnavailableError(fmt::format("{}{}{}{}{}", "HTTP server cannot listen on ", listen, ": ", error_text[0] ? error_text : "unknown error", "; choose another http.address/http.port or free the port"));
  }
  for (auto& [path, handler] : server->context_->routes) {
    mg_set_request_handler(server->context_->civet, (path + "$").c_str(), HandleRequest, &handler);
  }
  mg_server_port ports[4] = {};
  int count = mg_get_server_ports(server->context_->civet, 4, ports);
  server->port_ = count > 0 ? ports[0].port : port;
  return server;
}

HttpServer::~HttpServer() {
  if (context_ && context_->civet) mg_stop(context_->civet);
}

}  // namespace edged
