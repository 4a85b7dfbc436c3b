// The edged daemon: starts the HTTP endpoints, the MQTT client and every enabled module, then serves
// signals on one event loop — SIGTERM/SIGINT stop everything within 5 s, SIGHUP reloads the config file
// (an invalid file is logged and the running config kept) — and keeps systemd informed.
#pragma once

#include <memory>
#include <string>

#include "config/config.h"

namespace edged {

class Daemon {
 public:
  // `config` is the already validated content of `config_path`, which SIGHUP re-reads.
  Daemon(std::string config_path, config::Config config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Runs until SIGTERM/SIGINT or RequestStop(). Returns the process exit code: 0 after a clean stop,
  // 1 when the daemon could not start (e.g. the HTTP port is taken).
  int Run();

  // Thread-safe; makes Run() stop as if SIGTERM had arrived.
  void RequestStop();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace edged
