#include "edge/labels/kube_client.h"

#include <curl/curl.h>
#include <dlfcn.h>

#include <type_traits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/atomic_file.h"

namespace edged::labels {
namespace {

constexpr size_t kMaxBody = 64 * 1024;  // Status objects are small; never buffer a runaway answer

struct Response {
  std::string body;
  std::chrono::seconds retry_after{0};
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<Response*>(user);
  size_t len = size * n;
  if (r->body.size() < kMaxBody) r->body.append(data, std::min(len, kMaxBody - r->body.size()));
  return len;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* r = static_cast<Response*>(user);
  std::string line(data, size * n);
  constexpr std::string_view kRetryAfter = "retry-after:";
  if (line.size() > kRetryAfter.size()) {
    std::string head = line.substr(0, kRetryAfter.size());
    for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (head == kRetryAfter) {
      try {
        r->retry_after = std::chrono::seconds(std::stol(line.substr(kRetryAfter.size())));
      } catch (const std::exception&) {
        // An HTTP-date form is legal but rare from the API server; our own backoff applies then.
      }
    }
  }
  return size * n;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  const auto* cancel = static_cast<const std::atomic<bool>*>(user);
  return cancel != nullptr && cancel->load() ? 1 : 0;  // non-zero aborts the transfer
}

// The message of a Kubernetes Status object, or the start of the body.
std::string ServerMessage(const std::string& body) {
  try {
    nlohmann::json j = nlohmann::json::parse(body);
    if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
  } catch (const nlohmann::json::exception&) {
  }
  return body.substr(0, 200);
}

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// libcurl is loaded on first use instead of linked: with its TLS, LDAP, Kerberos and SSH dependencies
// it maps ~4 MB into the process, and only a node inside Kubernetes ever talks to the API server.
// (The headers are used for types and constants only.)
class CurlLibrary {
 public:
  static StatusOr<const CurlLibrary*> Get() {
    static const CurlLibrary library;  // loaded once, kept for the life of the process
    if (!library.error_.empty()) return UnavailableError(library.error_);
    return &library;
  }

  CURLcode (*global_init)(long) = nullptr;
  void (*global_cleanup)() = nullptr;
  CURL* (*easy_init)() = nullptr;
  void (*easy_cleanup)(CURL*) = nullptr;
  void (*easy_reset)(CURL*) = nullptr;
  CURLcode (*easy_setopt)(CURL*, CURLoption, ...) = nullptr;
  CURLcode (*easy_perform)(CURL*) = nullptr;
  CURLcode (*easy_getinfo)(CURL*, CURLINFO, ...) = nullptr;
  const char* (*easy_strerror)(CURLcode) = nullptr;
  curl_slist* (*slist_append)(curl_slist*, const char*) = nullptr;
  void (*slist_free_all)(curl_slist*) = nullptr;

 private:
  CurlLibrary() {
    void* handle = ::dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      error_ = fmt::format("kubernetes: cannot load libcurl.so.4 ({}); install libcurl4", ::dlerror());
      return;
    }
    bool ok = true;
    auto load = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(handle, name));
      ok = ok && fn != nullptr;
    };
    load(global_init, "curl_global_init");
    load(global_cleanup, "curl_global_cleanup");
    load(easy_init, "curl_easy_init");
    load(easy_cleanup, "curl_easy_cleanup");
    load(easy_reset, "curl_easy_reset");
    load(easy_setopt, "curl_easy_setopt");
    load(easy_perform, "curl_easy_perform");
    load(easy_getinfo, "curl_easy_getinfo");
    load(easy_strerror, "curl_easy_strerror");
    load(slist_append, "curl_slist_append");
    load(slist_free_all, "curl_slist_free_all");
    if (!ok) error_ = "kubernetes: libcurl.so.4 lacks a curl_easy function; install a current libcurl4";
  }
  std::string error_;
};

struct CurlSlist {
  explicit CurlSlist(const CurlLibrary& api) : api(api) {}
  ~CurlSlist() { api.slist_free_all(list); }
  void Add(const std::string& s) { list = api.slist_append(list, s.c_str()); }
  const CurlLibrary& api;
  curl_slist* list = nullptr;
};

}  // namespace

struct NodeLabelClient::Impl {
  KubeClientOptions options;
  const CurlLibrary* api = nullptr;
  CURL* curl = nullptr;
  ~Impl() {
    if (curl != nullptr) api->easy_cleanup(curl);
    if (api != nullptr) api->global_cleanup();  // reference-counted; thread-safe in current curl
  }
};

NodeLabelClient::NodeLabelClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NodeLabelClient::~NodeLabelClient() = default;

StatusOr<std::unique_ptr<NodeLabelClient>> NodeLabelClient::Create(KubeClientOptions options) {
  if (options.api_server.empty()) {
    return InvalidArgumentError("kubernetes: no API server; set labels.kubernetes.api_server or run in a pod "
                                "(KUBERNETES_SERVICE_HOST)");
  }
  if (options.node_name.empty()) {
    return InvalidArgumentError("kubernetes: no node name; set labels.kubernetes.node_name or NODE_NAME from "
                                "the downward API (fieldRef spec.nodeName)");
  }
  while (!options.api_server.empty() && options.api_server.back() == '/') options.api_server.pop_back();
  ASSIGN_OR_RETURN(const CurlLibrary* api, CurlLibrary::Get());
  if (api->global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return InternalError("curl_global_init failed");
  auto impl = std::make_unique<Impl>();
  impl->api = api;
  impl->options = std::move(options);
  impl->curl = api->easy_init();
  if (impl->curl == nullptr) return InternalError("curl_easy_init failed");
  return std::unique_ptr<NodeLabelClient>(new NodeLabelClient(std::move(impl)));
}

std::string NodeLabelClient::ApplyBody(const std::string& node_name, const LabelMap& labels) {
  nlohmann::json body = {{"apiVersion", "v1"},
                         {"kind", "Node"},
                         {"metadata", {{"name", node_name}, {"labels", nlohmann::json::object()}}}};
  for (const auto& [k, v] : labels) body["metadata"]["labels"][k] = v;
  return body.dump();
}

ApplyOutcome NodeLabelClient::Apply(const LabelMap& labels, const std::atomic<bool>* cancel) {
  const KubeClientOptions& o = impl_->options;
  ApplyOutcome out;
  StatusOr<std::string> token = ReadFileToString(o.token_file);
  if (!token.ok()) {
    out.status = UnavailableError(fmt::format("kubernetes: cannot read the service-account token {}: {}",
                                              o.token_file, token.status().message()));
    out.retryable = true;  // a projected token appears shortly after the pod starts
    return out;
  }
  const std::string url = fmt::format("{}/api/v1/nodes/{}?fieldManager={}&force=true", o.api_server,
                                      o.node_name, o.field_manager);
  const std::string body = ApplyBody(o.node_name, labels);
  const CurlLibrary& api = *impl_->api;
  CurlSlist headers(api);
  headers.Add("Content-Type: application/apply-patch+yaml");
  headers.Add("Accept: application/json");
  headers.Add("Expect:");  // no 100-continue round trip for a body we send anyway
  headers.Add("Authorization: Bearer " + Trim(*token));
  Response response;

  CURL* c = impl_->curl;
  api.easy_reset(c);  // keeps the connection cache, forgets the last request's options
  api.easy_setopt(c, CURLOPT_URL, url.c_str());
  api.easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PATCH");
  api.easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  api.easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  api.easy_setopt(c, CURLOPT_HTTPHEADER, headers.list);
  if (!o.ca_file.empty()) api.easy_setopt(c, CURLOPT_CAINFO, o.ca_file.c_str());
  api.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.connect_timeout.count()));
  api.easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(o.request_timeout.count()));
  api.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM from a background thread
  api.easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  api.easy_setopt(c, CURLOPT_WRITEDATA, &response);
  api.easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  api.easy_setopt(c, CURLOPT_HEADERDATA, &response);
  api.easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  api.easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
  api.easy_setopt(c, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(cancel));

  CURLcode rc = api.easy_perform(c);
  if (rc != CURLE_OK) {
    out.retryable = rc != CURLE_ABORTED_BY_CALLBACK;
    out.status = UnavailableError(fmt::format("kubernetes: PATCH {}: {}", url, api.easy_strerror(rc)));
    return out;
  }
  long code = 0;
  api.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  out.http_status = static_cast<int>(code);
  out.retry_after = response.retry_after;
  if (code >= 200 && code < 300) return out;

  const std::string what =
      fmt::format("kubernetes: PATCH node {} answered HTTP {}: {}", o.node_name, code, ServerMessage(response.body));
  switch (code) {
    case 401:
      out.status = PermissionDeniedError(what + "; the service-account token was refused");
      break;
    case 403:
      out.status = PermissionDeniedError(what + "; the ClusterRole must grant 'patch' on 'nodes'");
      break;
    case 404:
      out.status = NotFoundError(what + "; is NODE_NAME the name of this node?");
      break;
    case 409:
    case 429:
      out.status = UnavailableError(what);
      out.retryable = true;
      break;
    default:
      out.retryable = code >= 500;
      out.status = out.retryable ? UnavailableError(what) : InvalidArgumentError(what);
  }
  return out;
}

}  // namespace edged::labels
