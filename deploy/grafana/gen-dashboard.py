#!/usr/bin/env python3
"""Writes the edged Grafana dashboard (charts/edged/files/edged-dashboard.json; deploy/grafana/
edged-dashboard.json links to it). Edit this script, not the JSON, then run it:
    python3 deploy/grafana/gen-dashboard.py
The chart's dashboard ConfigMap embeds the same JSON with .Files.Get, and
tests/deploy/check-metric-names.py checks each query uses only metrics edged exports."""
import json
import os

DS = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'instance=~"$instance"'


class Layout:
    """Places panels left to right on Grafana's 24-column grid, wrapping to a new line."""

    def __init__(self):
        self.x, self.y, self.row_h, self.next_id = 0, 0, 0, 1
        self.panels = []

    def row(self, title):
        self.newline()
        self.panels.append({"type": "row", "title": title, "id": self._id(), "collapsed": False,
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": []})
        self.y += 1

    def newline(self):
        if self.x:
            self.y += self.row_h
        self.x, self.row_h = 0, 0

    def add(self, panel, w, h):
        if self.x + w > 24:
            self.newline()
        panel["id"] = self._id()
        panel["gridPos"] = {"x": self.x, "y": self.y, "w": w, "h": h}
        panel["datasource"] = DS
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def _id(self):
        self.next_id += 1
        return self.next_id - 1


def target(expr, legend="", ref="A", instant=False, fmt=None):
    t = {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}
    if instant:
        t["instant"], t["range"] = True, False
    if fmt:
        t["format"] = fmt
    return t


def targets(*pairs):
    return [target(e, l, chr(ord("A") + i)) for i, (e, l) in enumerate(pairs)]


def panel(kind, title, tgts, unit="short", description="", **extra):
    p = {"type": kind, "title": title, "description": description, "targets": tgts,
         "fieldConfig": {"defaults": {"unit": unit}, "overrides": []}, "options": {}}
    p.update(extra)
    return p


def updown_mappings(up="UP", down="DOWN"):
    return [{"type": "value", "options": {"0": {"text": down, "color": "red"},
                                            "1": {"text": up, "color": "green"}}}]


def stat(title, expr, legend="", unit="short", mappings=None, thresholds=None, description=""):
    p = panel("stat", title, [target(expr, legend)], unit, description,
              options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                       "colorMode": "background", "graphMode": "none", "textMode": "auto"})
    if mappings:
        p["fieldConfig"]["defaults"]["mappings"] = mappings
    p["fieldConfig"]["defaults"]["thresholds"] = thresholds or {
        "mode": "absolute", "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}]}
    return p


def timeseries(title, tgts, unit="short", description="", stack=False):
    p = panel("timeseries", title, tgts, unit, description,
              options={"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
                       "tooltip": {"mode": "multi", "sort": "desc"}})
    p["fieldConfig"]["defaults"]["custom"] = {"lineWidth": 1, "fillOpacity": 10 if stack else 0,
                                              "stacking": {"mode": "normal" if stack else "none"}}
    return p


def table(title, tgts, unit="short", description="", transformations=None):
    p = panel("table", title, tgts, unit, description, options={"showHeader": True})
    p["transformations"] = transformations or []
    return p


def build():
    L = Layout()

    L.row("Node overview")
    L.add(stat("edged", f'up{{job="edged", {SEL}}}', "{{instance}}", mappings=updown_mappings(),
               description="Prometheus can scrape edged (the EdgedDown alert fires after 5 minutes of DOWN)."), 4, 4)
    L.add(stat("MQTT", f"edged_mqtt_connected{{{SEL}}}", "{{instance}}",
               mappings=updown_mappings("connected", "disconnected")), 4, 4)
    L.add(stat("Modules down", f"count(edged_module_up{{{SEL}}} == 0) or vector(0)",
               thresholds={"mode": "absolute", "steps": [{"color": "green", "value": None},
                                                         {"color": "red", "value": 1}]}), 4, 4)
    L.add(stat("Resident memory", f"process_resident_memory_bytes{{job=\"edged\", {SEL}}}", "{{instance}}",
               unit="bytes", thresholds={"mode": "absolute", "steps": [{"color": "green", "value": None},
                                                                       {"color": "orange", "value": 200e6}]}), 4, 4)
    L.add(table("Build", [target(f"edged_build_info{{{SEL}}}", instant=True, fmt="table")],
                transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True,
                                                                                  "__name__": True}}}]), 8, 4)
    L.add(_state_timeline("Modules", f"edged_module_up{{{SEL}}}", "{{instance}} {{module}}"), 12, 7)
    L.add(timeseries("CPU", targets((f'rate(process_cpu_seconds_total{{job="edged", {SEL}}}[$__rate_interval])',
                                     "{{instance}}")), unit="percentunit"), 6, 7)
    L.add(timeseries("Memory", targets((f'process_resident_memory_bytes{{job="edged", {SEL}}}', "{{instance}}")),
                     unit="bytes"), 6, 7)
    L.add(timeseries("MQTT messages", targets(
        (f"sum by (instance) (rate(edged_mqtt_messages_received_total{{{SEL}}}[$__rate_interval]))", "{{instance}} in"),
        (f"sum by (instance) (rate(edged_mqtt_messages_sent_total{{{SEL}}}[$__rate_interval]))", "{{instance}} out"),
        (f"sum by (instance) (rate(edged_mqtt_queue_dropped_total{{{SEL}}}[$__rate_interval]))", "{{instance}} dropped"),
    ), unit="ops"), 8, 7)
    L.add(timeseries("MQTT queue and reconnects", targets(
        (f"edged_mqtt_queue_depth{{{SEL}}}", "{{instance}} queued"),
        (f"increase(edged_mqtt_reconnects_total{{{SEL}}}[$__rate_interval])", "{{instance}} reconnects"),
    )), 8, 7)
    L.add(table("Node labels", [target(f"edged_node_label{{{SEL}}} == 1", instant=True, fmt="table")],
                description="The labels edged applies to its Kubernetes node (or would, under systemd).",
                transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True,
                                                                                  "__name__": True, "job": True}}}]),
          8, 7)

    L.row("Zigbee network")
    L.add(stat("Coordinator", f"edged_zigbee_coordinator_up{{{SEL}}}", "{{instance}}", mappings=updown_mappings()), 4, 4)
    L.add(stat("Devices", f"sum(edged_zigbee_devices{{{SEL}}})",
               thresholds={"mode": "absolute", "steps": [{"color": "blue", "value": None}]}), 4, 4)
    L.add(stat("Unavailable devices", f"count(edged_zigbee_device_available{{{SEL}}} == 0) or vector(0)",
               thresholds={"mode": "absolute", "steps": [{"color": "green", "value": None},
                                                         {"color": "red", "value": 1}]}), 4, 4)
    L.add(stat("Lowest link quality", f"min(edged_zigbee_linkquality{{{SEL}}})",
               thresholds={"mode": "absolute", "steps": [{"color": "red", "value": None},
                                                         {"color": "orange", "value": 30},
                                                         {"color": "green", "value": 80}]}), 4, 4)
    L.add(stat("Oldest report", f"time() - min(edged_zigbee_last_seen_timestamp_seconds{{{SEL}}})", unit="s",
               thresholds={"mode": "absolute", "steps": [{"color": "green", "value": None},
                                                         {"color": "orange", "value": 3600}]}), 8, 4)
    L.add(timeseries("Link quality", targets((f"edged_zigbee_linkquality{{{SEL}}}", "{{device}}"))), 12, 8)
    L.add(table("Devices: last seen and availability", [
        target(f"time() - edged_zigbee_last_seen_timestamp_seconds{{{SEL}}}", ref="A", instant=True, fmt="table"),
        target(f"edged_zigbee_device_available{{{SEL}}}", ref="B", instant=True, fmt="table"),
        target(f"edged_zigbee_linkquality{{{SEL}}}", ref="C", instant=True, fmt="table"),
    ], transformations=[
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {"Time": True, "job": True},
                                       "renameByName": {"Value #A": "seconds since last seen",
                                                        "Value #B": "available", "Value #C": "link quality"}}}]),
        12, 8)
    L.add(timeseries("Sensor values ($property)",
                     targets((f'edged_zigbee_state{{{SEL}, property=~"$property"}}', "{{device}} {{property}}")),
                     description="Every numeric Zigbee state value, as HomeAssistant would show it."), 24, 8)

    L.row("Cameras")
    L.add(_state_timeline("Camera up", f'edged_camera_up{{{SEL}, camera=~"$camera"}}', "{{camera}}"), 12, 6)
    L.add(table("Detector device", [target(f'edged_detector_device{{{SEL}, camera=~"$camera"}} == 1',
                                           instant=True, fmt="table")],
                description="cuda or cpu, per camera (the EdgedDetectorOnCpuOnGpuNode alert watches for fallbacks).",
                transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True,
                                                                                  "__name__": True, "job": True}}}]),
          12, 6)
    L.add(timeseries("Frames per second", targets(
        (f'sum by (camera, stage) (rate(edged_camera_frames_total{{{SEL}, camera=~"$camera"}}[$__rate_interval]))',
         "{{camera}} {{stage}}")), unit="fps"), 12, 8)
    L.add(timeseries("Inference time", targets(
        (f'histogram_quantile(0.5, sum by (camera, le) (rate(edged_camera_inference_seconds_bucket{{{SEL}, camera=~"$camera"}}[$__rate_interval])))',
         "{{camera}} p50"),
        (f'histogram_quantile(0.99, sum by (camera, le) (rate(edged_camera_inference_seconds_bucket{{{SEL}, camera=~"$camera"}}[$__rate_interval])))',
         "{{camera}} p99"),
        (f'sum by (camera) (rate(edged_camera_inference_seconds_sum{{{SEL}, camera=~"$camera"}}[$__rate_interval])) / sum by (camera) (rate(edged_camera_inference_seconds_count{{{SEL}, camera=~"$camera"}}[$__rate_interval]))',
         "{{camera}} mean"),
    ), unit="s"), 12, 8)
    L.add(timeseries("Events (new, per hour)", targets(
        (f'sum by (camera, label) (increase(edged_camera_events_total{{{SEL}, camera=~"$camera", type="new"}}[1h]))',
         "{{camera}} {{label}}")), stack=True), 24, 7)

    L.row("Storage")
    L.add(panel("bargauge", "Space used", [target(
        f"100 - edged_filesystem_avail_bytes{{{SEL}}} / edged_filesystem_size_bytes{{{SEL}}} * 100",
        "{{instance}} {{mountpoint}}", instant=True)], unit="percent",
        options={"orientation": "horizontal", "displayMode": "gradient",
                 "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        fieldConfig={"defaults": {"unit": "percent", "min": 0, "max": 100, "thresholds": {
            "mode": "absolute", "steps": [{"color": "green", "value": None}, {"color": "orange", "value": 80},
                                          {"color": "red", "value": 95}]}}, "overrides": []}), 12, 8)
    L.add(timeseries("Available space", targets((f"edged_filesystem_avail_bytes{{{SEL}}}", "{{instance}} {{mountpoint}}")),
                     unit="bytes"), 12, 8)
    L.add(timeseries("Mount probe latency", targets((f"edged_mount_probe_seconds{{{SEL}}}", "{{instance}} {{mountpoint}}")),
                     unit="s", description="How long statfs (and the write probe, where enabled) took."), 8, 7)
    L.add(_state_timeline("Mount state", f"edged_mount_stale{{{SEL}}}", "{{instance}} {{mountpoint}}",
                          one=("stale", "red"), zero=("ok", "green")), 8, 7)
    L.add(timeseries("Free inodes", targets((f"edged_filesystem_files_free{{{SEL}}}", "{{instance}} {{mountpoint}}"))), 8, 7)
    L.add(table("SMART", [
        target(f"edged_smart_healthy{{{SEL}}}", ref="A", instant=True, fmt="table"),
        target(f"edged_smart_temperature_celsius{{{SEL}}}", ref="B", instant=True, fmt="table"),
    ], transformations=[
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {"Time": True, "job": True},
                                       "renameByName": {"Value #A": "healthy", "Value #B": "°C"}}}]), 12, 7)
    L.add(timeseries("Disk temperature", targets((f"edged_smart_temperature_celsius{{{SEL}}}", "{{instance}} {{device}}")),
                     unit="celsius"), 12, 7)

    def query_var(name, label, query, multi=True):
        return {"name": name, "label": label, "type": "query", "datasource": DS,
                "query": {"query": query, "refId": f"{name}-var"}, "definition": query, "refresh": 2,
                "includeAll": multi, "multi": multi, "allValue": ".*", "sort": 1,
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]}}

    return {
        "title": "edged",
        "uid": "edged-overview",
        "description": "edged: node overview, Zigbee network, cameras, storage. Source: deploy/grafana/gen-dashboard.py",
        "tags": ["edged", "home-lab"],
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "timezone": "",
        "graphTooltip": 1,
        "annotations": {"list": []},
        "links": [],
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "refresh": 1, "regex": ""},
            query_var("instance", "Node", "label_values(edged_build_info, instance)"),
            query_var("camera", "Camera", 'label_values(edged_camera_up{instance=~"$instance"}, camera)'),
            query_var("property", "Zigbee property", 'label_values(edged_zigbee_state{instance=~"$instance"}, property)'),
        ]},
        "panels": L.panels,
    }


def _state_timeline(title, expr, legend, one=("UP", "green"), zero=("DOWN", "red")):
    """A 0/1 gauge over time, each value named and coloured."""
    p = panel("state-timeline", title, [target(expr, legend)], options={"showValue": "never", "mergeValues": True})
    p["fieldConfig"]["defaults"]["mappings"] = [{"type": "value", "options": {
        "0": {"text": zero[0], "color": zero[1]}, "1": {"text": one[0], "color": one[1]}}}]
    return p


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "..", "..", "charts", "edged", "files", "edged-dashboard.json")
    with open(out, "w") as f:
        json.dump(build(), f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {os.path.normpath(out)}")
