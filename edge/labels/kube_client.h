// The one Kubernetes API call edged makes: a server-side apply of the node's labels,
//   PATCH /api/v1/nodes/<node>?fieldManager=<manager>&force=true
//   Content-Type: application/apply-patch+yaml   (the JSON body is valid YAML)
// With its own field manager, labels edged applied before and leaves out now are removed by the API
// server, and labels other managers own are never touched. RBAC: `patch` on `nodes`, nothing else.
// libcurl stays behind this header.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "base/status.h"
#include "edge/labels/labels.h"

namespace edged::labels {

struct KubeClientOptions {
  std::string api_server;  // "https://10.96.0.1:443"
  std::string node_name;
  std::string token_file;  // re-read on every request: projected service-account tokens rotate
  std::string ca_file;     // PEM bundle the API server's certificate chains to
  std::string field_manager = "edged";
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{15000};
};

struct ApplyOutcome {
  Status status;         // OK on 2xx
  int http_status = 0;   // 0 when no HTTP answer (connection refused, TLS failure, timeout, cancelled)
  bool retryable = false;  // connection errors, 409, 429, 5xx: worth retrying soon with backoff
  std::chrono::seconds retry_after{0};  // the server's Retry-After, when it sent one
};

class NodeLabelClient {
 public:
  // InvalidArgument when api_server or node_name is empty.
  static StatusOr<std::unique_ptr<NodeLabelClient>> Create(KubeClientOptions options);
  ~NodeLabelClient();
  NodeLabelClient(const NodeLabelClient&) = delete;
  NodeLabelClient& operator=(const NodeLabelClient&) = delete;

  // One apply of exactly `labels` (already prefixed) as this field manager. Blocks for at most the
  // request timeout, less when `cancel` becomes true. Not thread-safe: one caller at a time.
  ApplyOutcome Apply(const LabelMap& labels, const std::atomic<bool>* cancel = nullptr);

  // The request body Apply() sends; pure, for tests and logs.
  static std::string ApplyBody(const std::string& node_name, const LabelMap& labels);

 private:
  struct Impl;
  explicit NodeLabelClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edged::labels
