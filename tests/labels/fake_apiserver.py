#!/usr/bin/env python3
"""A small HTTPS server that speaks the part of the Kubernetes node API edged uses, for tests.

PATCH /api/v1/nodes/<name>?fieldManager=<m>&force=true with Content-Type application/apply-patch+yaml
and "Authorization: Bearer <token>" (the expected token is re-read from --token-file on every request,
so a test can rotate it). Server-side apply is modelled for labels: each label has one owning field
manager; an apply replaces the set of labels its manager owns (labels it no longer lists are removed),
and never touches labels of other managers unless it sets them itself (with force=true it takes them
over; without, a different value is a 409 conflict).

Test control (same server, no auth):
  POST /_test/fail   {"codes": [503, 429, 409]}  the next PATCHes answer these codes, in order
  POST /_test/hang   {"seconds": 5}             the next PATCH answers only after this long
  GET  /_test/state  {"labels": {...}, "managers": {...}, "requests": [...]}
Prints "LISTENING <port>" on stdout once it accepts connections. Listens on 127.0.0.1 only.
"""
import argparse
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class State:
    def __init__(self, node):
        self.lock = threading.Lock()
        self.node = node
        self.labels = {"kubernetes.io/hostname": node}
        self.managers = {"kubernetes.io/hostname": "kubelet"}
        self.requests = []
        self.fail_codes = []
        self.hang_seconds = 0.0


def make_cert(directory):
    cert = os.path.join(directory, "ca.crt")
    key = os.path.join(directory, "server.key")
    if not os.path.exists(cert):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
             "-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:TRUE"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def status_body(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "reason": reason,
            "code": code}


def make_handler(state, token_file):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet: the test prints what it needs
            pass

        def reply(self, code, obj, headers=None):
            data = json.dumps(obj).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def do_GET(self):
            url = urlparse(self.path)
            with state.lock:
                if url.path == "/_test/state":
                    return self.reply(200, {"labels": state.labels, "managers": state.managers,
                                            "requests": state.requests})
                if url.path == "/api/v1/nodes/" + state.node:
                    return self.reply(200, self.node_object())
            self.reply(404, status_body(404, "NotFound", "not found"))

        def do_POST(self):
            url = urlparse(self.path)
            payload = json.loads(self.body() or b"{}")
            with state.lock:
                if url.path == "/_test/fail":
                    state.fail_codes.extend(payload.get("codes", []))
                    return self.reply(200, {})
                if url.path == "/_test/hang":
                    state.hang_seconds = float(payload.get("seconds", 0))
                    return self.reply(200, {})
            self.reply(404, status_body(404, "NotFound", "not found"))

        def node_object(self):
            return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": state.node, "labels": dict(state.labels)}}

        def do_PATCH(self):
            url = urlparse(self.path)
            query = parse_qs(url.query)
            raw = self.body()
            with open(token_file) as f:
                expected = f.read().strip()
            auth = self.headers.get("Authorization", "")
            record = {"path": url.path, "field_manager": query.get("fieldManager", [""])[0],
                      "force": query.get("force", [""])[0], "content_type": self.headers.get("Content-Type", ""),
                      "authorization": auth}
            with state.lock:
                state.requests.append(record)
                hang, state.hang_seconds = state.hang_seconds, 0
                fail = state.fail_codes.pop(0) if state.fail_codes else None
            if hang:
                time.sleep(hang)
            code, obj, headers = self.apply(url, query, raw, auth, expected, fail)
            record["code"] = code
            self.reply(code, obj, headers)

        def apply(self, url, query, raw, auth, expected, fail):
            if auth != "Bearer " + expected:
                return 401, status_body(401, "Unauthorized", "Unauthorized"), None
            if fail is not None:
                headers = {"Retry-After": "0"} if fail == 429 else None
                return fail, status_body(fail, "Injected", "injected failure %d" % fail), headers
            if self.headers.get("Content-Type") != "application/apply-patch+yaml":
                return 415, status_body(415, "UnsupportedMediaType", "apply needs application/apply-patch+yaml"), None
            manager = query.get("fieldManager", [""])[0]
            if not manager:
                return 400, status_body(400, "BadRequest", "fieldManager is required for apply patch"), None
            force = query.get("force", ["false"])[0] == "true"
            if url.path != "/api/v1/nodes/" + state.node:
                return 404, status_body(404, "NotFound", 'nodes "%s" not found' % url.path.rsplit("/", 1)[-1]), None
            try:
                obj = json.loads(raw)  # edged sends JSON, a subset of YAML
                assert obj["apiVersion"] == "v1" and obj["kind"] == "Node"
                assert obj["metadata"]["name"] == state.node
                applied = obj["metadata"].get("labels") or {}
                assert all(isinstance(k, str) and isinstance(v, str) for k, v in applied.items())
            except (ValueError, KeyError, AssertionError, TypeError):
                return 400, status_body(400, "BadRequest", "malformed apply body: %r" % raw[:200]), None
            with state.lock:
                conflicts = [k for k, v in applied.items()
                             if state.managers.get(k, manager) != manager and state.labels.get(k) != v]
                if conflicts and not force:
                    return 409, status_body(409, "Conflict", "Apply failed with conflicts: %s" % conflicts), None
                for k in [k for k, m in state.managers.items() if m == manager and k not in applied]:
                    del state.labels[k]
                    del state.managers[k]
                for k, v in applied.items():
                    state.labels[k] = v
                    state.managers[k] = manager
                return 200, self.node_object(), None

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True, help="where ca.crt/server.key are made or found")
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--node", default="node-1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    cert, key = make_cert(args.dir)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(State(args.node), args.token_file))
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print("LISTENING %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
