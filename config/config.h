// edged's configuration as plain data. Parsing and validation live in config/loader.cc; nothing here
// includes yaml-cpp. Every field has the default a user gets when the key is absent. Fields marked
// [restart] are read once at start-up; a SIGHUP reload that changes them is logged and takes effect at
// the next restart. Each module receives its own section by const&.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace edged::config {

using Seconds = std::chrono::seconds;
using Milliseconds = std::chrono::milliseconds;

struct TlsConfig {
  bool enabled = false;          // also implied by an mqtts:// server URL
  std::string ca_file;           // PEM bundle; empty = system store
  std::string cert_file;         // client certificate (mutual TLS); needs key_file
  std::string key_file;
  bool insecure = false;         // skip hostname verification (self-signed test brokers only)
  bool operator==(const TlsConfig&) const = default;
};

struct MqttConfig {
  std::string server = "mqtt://127.0.0.1:1883";  // mqtt://host:port or mqtts://host:port
  std::string base_topic = "zigbee2mqtt";          // zigbee2mqtt-compatible topics live below this
  std::string client_id;                           // empty = "edged_<hostname>"
  std::string user;
  std::string password;       // overridden by EDGED_MQTT_PASSWORD, or read from password_file
  std::string password_file;  // e.g. a mounted Kubernetes Secret; trailing newline stripped
  TlsConfig tls;
  Seconds keepalive{60};
  Seconds reconnect_min_delay{1};
  Seconds reconnect_max_delay{60};
  int qos = 1;                      // default QoS for state and discovery messages (0..2)
  std::size_t queue_limit = 10000;  // QoS>=1 messages kept while the broker is away; oldest dropped
  bool operator==(const MqttConfig&) const = default;
};

struct HttpConfig {
  std::string address = "0.0.0.0";  // [restart]
  int port = 9822;                    // [restart] 1..65535
  bool operator==(const HttpConfig&) const = default;
};

struct LoggingConfig {
  std::string level = "info";  // trace, debug, info, warning, error, critical, off
  std::string format = "text";  // text | json
  bool operator==(const LoggingConfig&) const = default;
};

struct ZigbeeNetworkConfig {
  int channel = 11;                             // 11..26
  std::uint16_t pan_id = 0x1A62;                 // 0x0001..0xFFFE
  std::string extended_pan_id = "dddddddddddddddd";  // 16 hex digits
  // 32 hex digits, or "generate": a random key created once and kept in the state directory.
  std::string network_key = "generate";
  bool operator==(const ZigbeeNetworkConfig&) const = default;
};

struct ZigbeeSerialConfig {
  // /dev/ttyUSB0, /dev/serial/by-id/..., tcp://host:6638, "auto" (first known coordinator on USB),
  // or "simulator" (an in-process simulated coordinator: demo, k3d, CI).
  std::string port = "auto";
  int baudrate = 115200;
  bool rtscts = false;
  std::string adapter = "zstack";  // the only adapter today
  bool operator==(const ZigbeeSerialConfig&) const = default;
};

struct ZigbeeAvailabilityConfig {
  bool enabled = true;
  Seconds active_timeout{10 * 60};    // mains-powered devices: offline after this long unseen
  Seconds passive_timeout{25 * 3600}; // battery devices
  bool operator==(const ZigbeeAvailabilityConfig&) const = default;
};

struct ZigbeeDeviceOptions {
  std::string friendly_name;
  std::optional<bool> retain;
  bool operator==(const ZigbeeDeviceOptions&) const = default;
};

struct SimulatorConfig {
  // Which simulated devices exist; each joins when joining is permitted. Types:
  // climate_sensor, smart_plug, color_bulb, motion_sensor, door_contact.
  std::vector<std::string> devices = {"climate_sensor", "smart_plug", "color_bulb", "motion_sensor",
                                      "door_contact"};
  Seconds report_interval{10};
  bool operator==(const SimulatorConfig&) const = default;
};

struct HomeAssistantConfig {
  bool enabled = true;
  std::string discovery_topic = "homeassistant";
  std::string status_topic = "homeassistant/status";
  bool operator==(const HomeAssistantConfig&) const = default;
};

struct ZigbeeConfig {
  bool enabled = false;
  ZigbeeSerialConfig serial;
  ZigbeeNetworkConfig network;
  bool permit_join = false;                 // at start-up; bridge/request/permit_join changes it
  Seconds permit_join_timeout{254};
  bool retain_state = true;
  ZigbeeAvailabilityConfig availability;
  HomeAssistantConfig homeassistant;
  SimulatorConfig simulator;
  std::map<std::string, ZigbeeDeviceOptions> devices;  // key: IEEE address "0x00124b0001020304"
  bool operator==(const ZigbeeConfig&) const = default;
};

struct Point {
  double x = 0;  // pixels in the detect resolution
  double y = 0;
  bool operator==(const Point&) const = default;
};
using Polygon = std::vector<Point>;

struct MotionConfig {
  int threshold = 30;             // 1..255: pixel delta counted as motion
  double lightning_threshold = 0.8;  // 0.3..1.0: fraction of frame changed that means lighting, not motion
  int contour_area = 10;          // minimum contour area at frame_height scale
  double frame_alpha = 0.01;      // running-average weight
  int frame_height = 100;         // motion runs on frames scaled to this height
  bool improve_contrast = true;
  std::vector<Polygon> mask;      // areas ignored for motion
  bool operator==(const MotionConfig&) const = default;
};

struct ObjectFilter {
  double min_score = 0.5;   // detections below are discarded
  double threshold = 0.7;   // median of recent scores needed to count as a true positive
  int min_area = 0;         // pixels
  int max_area = 24000000;
  bool operator==(const ObjectFilter&) const = default;
};

struct ZoneConfig {
  Polygon coordinates;
  std::vector<std::string> objects;  // empty = all tracked objects
  bool operator==(const ZoneConfig&) const = default;
};

struct SnapshotConfig {
  bool enabled = true;
  bool bounding_box = true;
  int quality = 70;     // JPEG quality 1..100
  Seconds retain{10 * 24 * 3600};
  bool operator==(const SnapshotConfig&) const = default;
};

struct CameraConfig {
  bool enabled = true;
  std::string input;            // rtsp://, http(s)://, a file path, or /dev/videoN
  bool loop = false;            // files only: start again at the end (demo)
  double fps = 5;               // detection rate
  int width = 0;                // 0 = the stream's own size
  int height = 0;
  MotionConfig motion;
  std::vector<std::string> track = {"person"};
  std::map<std::string, ObjectFilter> filters;  // per label
  std::map<std::string, ZoneConfig> zones;
  SnapshotConfig snapshots;
  Seconds max_disappeared{5};   // an object unseen this long ends its event
  Seconds stationary_after{10};
  bool operator==(const CameraConfig&) const = default;
};

struct DetectorConfig {
  std::string type = "hog";      // hog | onnx
  std::string device = "auto";   // auto | cuda | cpu
  std::string model;             // onnx: path to the model file
  std::string labelmap;          // onnx: one label per line
  int input_size = 320;          // onnx: model input (square)
  std::string output_format = "yolov8";  // onnx: yolov5 | yolov8 | ssd
  bool operator==(const DetectorConfig&) const = default;
};

struct CamerasConfig {
  std::string topic_prefix = "frigate";  // Frigate-compatible topics live below this
  DetectorConfig detector;
  std::map<std::string, CameraConfig> streams;  // key: camera name
  bool operator==(const CamerasConfig&) const = default;
};

struct MountConfig {
  std::string path;
  bool write_probe = false;  // write/read/fsync/remove a small file to prove the mount works
  bool operator==(const MountConfig&) const = default;
};

struct SmartConfig {
  bool enabled = true;
  Seconds interval{30 * 60};
  std::string smartctl = "smartctl";
  std::vector<std::string> devices;  // empty = every disk smartctl --scan finds
  Seconds timeout{60};               // one smartctl run; a slower one is killed and reported
  bool operator==(const SmartConfig&) const = default;
};

struct StorageConfig {
  bool enabled = true;
  Seconds interval{30};
  Seconds probe_timeout{5};
  std::vector<MountConfig> mounts;  // checked in addition to the discovered ones
  bool discover = true;              // watch mounts of fstypes below
  std::vector<std::string> fstypes = {"nfs", "nfs4", "cifs", "smb3", "ext4", "xfs", "btrfs", "zfs", "vfat"};
  std::string exclude_mountpoints = "^/(dev|proc|run|sys|var/lib/docker/.+|var/lib/kubelet/.+)($|/)";
  SmartConfig smart;
  bool raid = true;  // /proc/mdstat and zpool
  std::string zpool = "zpool";  // ZFS pools are skipped when this program is not installed
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
  bool operator==(const StorageConfig&) const = default;
};

struct KubernetesConfig {
  std::string mode = "auto";  // auto (in a pod when KUBERNETES_SERVICE_HOST is set) | on | off
  std::string node_name;      // empty = $NODE_NAME
  std::string api_server;     // empty = https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
  std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::string field_manager = "edged";
  bool operator==(const KubernetesConfig&) const = default;
};

struct NfdConfig {
  bool enabled = false;
  std::string path = "/etc/kubernetes/node-feature-discovery/features.d/edged";
  Seconds expiry{3600};
  bool operator==(const NfdConfig&) const = default;
};

struct LabelsConfig {
  bool enabled = true;
  // Empty = as named ("hardware/usb"); a domain ending in '/' turns the name's '/' into '.'
  // ("edged.io/" → "edged.io/hardware.usb"); anything else is prepended and must give a valid key.
  std::string prefix;
  std::vector<std::string> allow;   // empty = every label; otherwise only these label names
  Seconds interval{60};             // inventory rescan (USB hotplug rescans at once) and label re-apply
  // Where the hardware inventory is read; in a container, the host's trees mounted read-only. [restart]
  std::string proc_root = "/proc";
  std::string sys_root = "/sys";
  std::string dev_root = "/dev";
  KubernetesConfig kubernetes;
  NfdConfig nfd;
  bool operator==(const LabelsConfig&) const = default;
};

struct Config {
  std::string state_dir = "/var/lib/edged";  // [restart] device database, network key, snapshots
  MqttConfig mqtt;
  HttpConfig http;
  LoggingConfig logging;
  ZigbeeConfig zigbee;
  CamerasConfig cameras;
  StorageConfig storage;
  LabelsConfig labels;
  bool operator==(const Config&) const = default;
};

}  // namespace edged::config
