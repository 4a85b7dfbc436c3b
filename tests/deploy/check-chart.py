#!/usr/bin/env python3
"""Renders charts/edged with Helm and checks the output.

  check-chart.py lint      HELM                 helm lint --strict with values-k3d.yaml and values-k3s.yaml
  check-chart.py render    HELM MODULES_DIR     helm template for default/k3d/k3s/privileged values:
      - every object validated against the Kubernetes OpenAPI schema (validate-k8s.mjs, kubernetes-models),
        also the Argo CD Application example; the validator is shown to reject a broken object;
      - assertions on the rendered objects (RBAC verbs exactly get+patch on nodes, probes, no privileged
        container unless privileged=true, checksum annotation that follows the config, no Helm hooks,
        GPU values add runtimeClassName nvidia + nvidia.com/gpu, selectors that match, NODE_NAME from the
        downward API, the PrometheusRule and dashboard equal to the files systemd users get, ...);
      - values.schema.json rejects bad values.
    EDGED_BIN (optional): an edged binary; when set, `edged --check-config` runs on each rendered config.
Exit 0 ok, 1 failed, 77 when PyYAML or node is missing.
"""
import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import yaml
except ImportError:
    print("SKIP: python3 PyYAML is not installed (apt-get install -y python3-yaml)")
    sys.exit(77)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHART = os.path.join(REPO, "charts", "edged")
HERE = os.path.dirname(os.path.abspath(__file__))
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("  FAILED:", what)
    return cond


def helm(helm_bin, *args, expect_ok=True):
    r = subprocess.run([helm_bin, *args], capture_output=True, text=True)
    if expect_ok and r.returncode != 0:
        print(r.stdout + r.stderr)
        raise SystemExit(f"FAILED: helm {' '.join(args)}")
    return r


def render(helm_bin, *args):
    out = helm(helm_bin, "template", "edged", CHART, "--namespace", "edged", *args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def one(docs, kind):
    found = by_kind(docs, kind)
    check(len(found) == 1, f"exactly one {kind}, found {len(found)}")
    return found[0] if found else {}


def containers(ds):
    spec = ds["spec"]["template"]["spec"]
    return spec.get("containers", []) + spec.get("initContainers", [])


def common_checks(name, docs, privileged_expected, gpu_expected):
    print(f"[{name}] {len(docs)} objects: {', '.join(sorted(d['kind'] for d in docs))}")
    kinds = {d["kind"] for d in docs}
    for k in ("DaemonSet", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Service"):
        check(k in kinds, f"{name}: renders a {k}")
    # No Helm hooks anywhere: Argo CD applies hooks differently from Helm, and we need none.
    for d in docs:
        ann = (d.get("metadata", {}).get("annotations") or {})
        check(not any(a.startswith("helm.sh/hook") for a in ann), f"{name}: {d['kind']} has a helm hook annotation")
        check(d.get("metadata", {}).get("name"), f"{name}: {d['kind']} has a name")

    # RBAC: exactly get and patch on nodes, bound to the pod's service account.
    role = one(docs, "ClusterRole")
    rules = role.get("rules", [])
    check(len(rules) == 1, f"{name}: ClusterRole has one rule, has {len(rules)}")
    if rules:
        r = rules[0]
        check(r.get("apiGroups") == [""], f"{name}: rule apiGroups == [''] (core), got {r.get('apiGroups')}")
        check(r.get("resources") == ["nodes"], f"{name}: rule resources == ['nodes'], got {r.get('resources')}")
        check(sorted(r.get("verbs", [])) == ["get", "patch"], f"{name}: verbs exactly get+patch, got {r.get('verbs')}")
    binding = one(docs, "ClusterRoleBinding")
    sa = one(docs, "ServiceAccount")
    ds = one(docs, "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    check(binding["roleRef"]["name"] == role["metadata"]["name"], f"{name}: binding refers to the ClusterRole")
    check(binding["subjects"] == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "edged"}],
          f"{name}: binding subject is the chart's ServiceAccount: {binding['subjects']}")
    check(pod.get("serviceAccountName") == sa["metadata"]["name"], f"{name}: pod uses the ServiceAccount")
    check(pod.get("automountServiceAccountToken") is True, f"{name}: the token is mounted (node labels)")

    # Selectors.
    sel = ds["spec"]["selector"]["matchLabels"]
    labels = ds["spec"]["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in sel.items()), f"{name}: DaemonSet selector matches pod labels")
    svc = one(docs, "Service")
    check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()), f"{name}: Service selects the pods")

    # The container.
    cs = pod["containers"]
    check(len(cs) == 1, f"{name}: one container")
    c = cs[0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check("http-metrics" in ports, f"{name}: container port http-metrics")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        p = c.get(probe, {}).get("httpGet", {})
        check(p.get("path") == path and p.get("port") in ("http-metrics", ports.get("http-metrics")),
              f"{name}: {probe} is GET {path} on http-metrics, got {p}")
    env = {e["name"]: e for e in c.get("env", [])}
    check(env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName",
          f"{name}: NODE_NAME from the downward API (spec.nodeName)")
    check(c.get("args", [])[:2] == ["--config", "/etc/edged/edged.yaml"], f"{name}: runs edged --config /etc/edged/edged.yaml")

    # Privilege.
    privileged = [x["name"] for x in containers(ds) if (x.get("securityContext") or {}).get("privileged")]
    if privileged_expected:
        check(privileged == ["edged"], f"{name}: privileged=true gives a privileged container")
    else:
        check(privileged == [], f"{name}: no privileged container unless privileged=true, got {privileged}")
        sc = c.get("securityContext", {})
        check(sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation false")
        check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: capabilities drop ALL")
        check(sc.get("readOnlyRootFilesystem") is True, f"{name}: read-only root filesystem")
        check(not pod.get("hostPID") and not pod.get("hostIPC"), f"{name}: no hostPID/hostIPC")
        for v in pod.get("volumes", []):
            check(v.get("hostPath", {}).get("path") not in ("/", "/dev", "/proc"),
                  f"{name}: no broad hostPath {v.get('hostPath', {}).get('path')} without privileged")

    # Volumes: every mount has a volume; the host paths the issue asks for.
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for m in c.get("volumeMounts", []):
        check(m["name"] in vols, f"{name}: volumeMount {m['name']} has a volume")
    host = {v["hostPath"]["path"]: v for v in vols.values() if "hostPath" in v}
    check("/var/lib/edged" in host, f"{name}: state directory hostPath")
    state_mount = [m for m in c.get("volumeMounts", []) if m["mountPath"] == "/var/lib/edged"]
    check(state_mount and not state_mount[0].get("readOnly"), f"{name}: state directory mounted writable")

    # GPU.
    limits = c.get("resources", {}).get("limits", {})
    if gpu_expected:
        check(pod.get("runtimeClassName") == "nvidia", f"{name}: runtimeClassName nvidia")
        check(limits.get("nvidia.com/gpu") == 1, f"{name}: nvidia.com/gpu limit 1, got {limits}")
    else:
        check("runtimeClassName" not in pod, f"{name}: no runtimeClassName without gpu.enabled")
        check("nvidia.com/gpu" not in limits, f"{name}: no nvidia.com/gpu without gpu.enabled")

    # Config: the checksum is the rendered ConfigMap's; the config is YAML with the chart's port.
    ann = ds["spec"]["template"]["metadata"].get("annotations", {})
    checksum = ann.get("checksum/config", "")
    check(len(checksum) == 64 and all(ch in "0123456789abcdef" for ch in checksum),
          f"{name}: checksum/config annotation is a sha256, got {checksum!r}")
    cm = [d for d in by_kind(docs, "ConfigMap") if "edged.yaml" in d.get("data", {})]
    check(len(cm) == 1, f"{name}: one ConfigMap with edged.yaml")
    cfg = yaml.safe_load(cm[0]["data"]["edged.yaml"]) if cm else {}
    check(cfg.get("http", {}).get("port") == ports.get("http-metrics"), f"{name}: config http.port == containerPort")
    check(cfg.get("state_dir") == "/var/lib/edged", f"{name}: config state_dir is the mounted state directory")
    check(any(v.get("configMap", {}).get("name") == cm[0]["metadata"]["name"] for v in vols.values()) if cm else False,
          f"{name}: the ConfigMap is mounted")

    # Monitoring objects equal the files systemd users get.
    for pr in by_kind(docs, "PrometheusRule"):
        with open(os.path.join(REPO, "deploy", "prometheus", "edged-rules.yaml")) as f:
            check(pr["spec"] == yaml.safe_load(f), f"{name}: PrometheusRule spec == deploy/prometheus/edged-rules.yaml")
    for sm in by_kind(docs, "ServiceMonitor"):
        check(sm["spec"].get("jobLabel") in svc["metadata"]["labels"]
              and svc["metadata"]["labels"][sm["spec"]["jobLabel"]] == "edged",
              f"{name}: ServiceMonitor jobLabel makes job=\"edged\" (the alert rules' selector)")
        check(all(svc["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items()),
              f"{name}: ServiceMonitor selects the Service")
        check([e["port"] for e in sm["spec"]["endpoints"]] == ["http-metrics"], f"{name}: ServiceMonitor scrapes http-metrics")
    dash = [d for d in by_kind(docs, "ConfigMap") if "edged-dashboard.json" in d.get("data", {})]
    for d in dash:
        with open(os.path.join(REPO, "deploy", "grafana", "edged-dashboard.json")) as f:
            check(json.loads(d["data"]["edged-dashboard.json"]) == json.load(f),
                  f"{name}: dashboard ConfigMap == deploy/grafana/edged-dashboard.json")
        check(d["metadata"]["labels"].get("grafana_dashboard") == "1", f"{name}: dashboard label grafana_dashboard: \"1\"")
    return ds, cfg


def validate_k8s(modules, name, docs):
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(docs, f)
    try:
        r = subprocess.run(["node", os.path.join(HERE, "validate-k8s.mjs"), modules, f.name],
                           capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    bad = [l for l in r.stdout.splitlines() if not l.startswith("valid")]
    for l in bad + ([r.stderr] if r.stderr.strip() else []):
        print("  ", l)
    check(r.returncode == 0, f"{name}: Kubernetes schema validation")
    return r.returncode == 0


def check_config_with_daemon(name, cfg):
    edged = os.environ.get("EDGED_BIN", "")
    if not edged:
        return
    if not os.access(edged, os.X_OK):
        print(f"  note: EDGED_BIN={edged} is not built; skipping edged --check-config")
        return
    # The password file is a Secret mounted into the pod; it does not exist on the machine running this
    # check. Stand a real file in for it (the loader reads it), so the rest of the config is still checked.
    cfg = copy.deepcopy(cfg)
    secret = None
    if cfg.get("mqtt", {}).get("password_file"):
        secret = tempfile.NamedTemporaryFile("w", suffix=".password", delete=False)
        secret.write("from-the-secret\n")
        secret.close()
        cfg["mqtt"]["password_file"] = secret.name
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(cfg, f)
    r = subprocess.run([edged, "--check-config", f.name], capture_output=True, text=True)
    os.unlink(f.name)
    if secret:
        os.unlink(secret.name)
    check(r.returncode == 0, f"{name}: edged --check-config accepts the rendered config: {r.stdout}{r.stderr}")


def cmd_lint(helm_bin):
    for values in ("values-k3d.yaml", "values-k3s.yaml"):
        r = helm(helm_bin, "lint", "--strict", CHART, "-f", os.path.join(CHART, values), expect_ok=False)
        print(r.stdout.strip())
        check(r.returncode == 0, f"helm lint --strict -f {values}")


def cmd_render(helm_bin, modules):
    if not shutil.which("node"):
        print("SKIP: node is not installed (apt-get install -y nodejs)")
        sys.exit(77)
    k3d = os.path.join(CHART, "values-k3d.yaml")
    k3s = os.path.join(CHART, "values-k3s.yaml")
    cases = {
        "default": ([], False, False),
        "k3d": (["-f", k3d], False, False),
        "k3s": (["-f", k3s], False, True),
        "k3s+privileged": (["-f", k3s, "--set", "privileged=true"], True, True),
    }
    rendered = {}
    for name, (args, priv, gpu) in cases.items():
        docs = render(helm_bin, *args)
        rendered[name] = docs
        validate_k8s(modules, name, docs)
        ds, cfg = common_checks(name, docs, priv, gpu)
        check_config_with_daemon(name, cfg)

    # k3s specifics: the dongle's exact host paths and device-plugin resource; the MQTT Secret as a file.
    ds = one(rendered["k3s"], "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    c = pod["containers"][0]
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    check({"/dev/zigbee", "/dev/serial", "/sys", "/run/udev"} <= mounts, f"k3s: exact device/sys/udev mounts, got {sorted(mounts)}")
    check("/dev" not in mounts, "k3s: the whole /dev is not mounted without privileged")
    check(c["resources"]["limits"].get("squat.ai/zigbee") == 1, "k3s: device-plugin resource squat.ai/zigbee")
    secret_vols = [v for v in pod["volumes"] if "secret" in v]
    check(len(secret_vols) == 1 and secret_vols[0]["secret"]["secretName"] == "edged-mqtt", "k3s: MQTT Secret volume")
    cfg = yaml.safe_load(
        [d for d in rendered["k3s"] if d["kind"] == "ConfigMap" and "edged.yaml" in d["data"]][0]["data"]["edged.yaml"])
    pw = cfg.get("mqtt", {}).get("password_file", "")
    secret_mount = [m for m in c["volumeMounts"] if m["name"] == secret_vols[0]["name"]] if secret_vols else []
    check(secret_mount and pw == secret_mount[0]["mountPath"] + "/password",
          f"k3s: mqtt.password_file {pw!r} is the mounted Secret key")
    check(pod["nodeSelector"].get("hardware/zigbee") == "true", "k3s: runs on the node labelled hardware/zigbee=true")
    # privileged: the host's /dev replaces the exact paths.
    pds = one(rendered["k3s+privileged"], "DaemonSet")
    pmounts = {m["mountPath"] for m in pds["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    check("/dev" in pmounts and "/dev/zigbee" not in pmounts, "k3s+privileged: host /dev mounted")

    # The checksum follows the config, and only the config.
    a = one(render(helm_bin, "-f", k3d), "DaemonSet")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    b = one(render(helm_bin, "-f", k3d, "--set", "config.logging.level=debug"), "DaemonSet")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    c2 = one(render(helm_bin, "-f", k3d, "--set", "resources.limits.memory=1Gi"), "DaemonSet")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    check(a != b, "checksum/config changes when the config changes")
    check(a == c2, "checksum/config stays when only non-config values change")

    # Optional parts switch off cleanly (clusters without prometheus-operator or Grafana).
    off = render(helm_bin, "--set", "serviceMonitor.enabled=false,prometheusRule.enabled=false,dashboard.enabled=false")
    check(not by_kind(off, "ServiceMonitor") and not by_kind(off, "PrometheusRule")
          and len(by_kind(off, "ConfigMap")) == 1, "monitoring objects can be switched off")

    # values.schema.json rejects what would render nonsense.
    for bad in (["--set", "privileged=yes"], ["--set", "http.port=70000"], ["--set", "image.flavor=rocm"],
                ["--set", "typo=1"], ["--set", "devices.hostPaths[0]=ttyUSB0"], ["--set", "config.state_dir=/tmp"]):
        r = helm(helm_bin, "template", "edged", CHART, *bad, expect_ok=False)
        check(r.returncode != 0, f"values.schema.json rejects {' '.join(bad[1:])}")

    # The Argo CD Application example, and proof that the validator rejects a broken object.
    with open(os.path.join(REPO, "deploy", "argocd", "edged-application.yaml")) as f:
        app = yaml.safe_load(f)
    validate_k8s(modules, "argocd-application", [app])
    check(app["spec"]["source"]["path"] == "charts/edged"
          and os.path.exists(os.path.join(CHART, app["spec"]["source"]["helm"]["valueFiles"][0])),
          "the Argo CD Application points at the chart and an existing value file")
    broken = json.loads(json.dumps(one(rendered["k3d"], "DaemonSet")))
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "9822"
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([broken], f)
    r = subprocess.run(["node", os.path.join(HERE, "validate-k8s.mjs"), modules, f.name], capture_output=True, text=True)
    os.unlink(f.name)
    check(r.returncode != 0 and "containerPort" in r.stdout, "the schema validator rejects a string containerPort")


def main(argv):
    if len(argv) < 3 or argv[1] not in ("lint", "render"):
        print(__doc__)
        return 2
    if argv[1] == "lint":
        cmd_lint(argv[2])
    else:
        cmd_render(argv[2], argv[3])
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
