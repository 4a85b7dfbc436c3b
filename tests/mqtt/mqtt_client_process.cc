// A process whose only job is to hold an edged::mqtt::Client connection, so a test can SIGKILL it
// and watch the broker publish the last will.
//   usage: mqtt_client_process SERVER_URL CLIENT_ID BASE_TOPIC
#include <unistd.h>

#include <cstdio>

#include "config/config.h"
#include "mqtt/client.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s SERVER_URL CLIENT_ID BASE_TOPIC\n", argv[0]);
    return 2;
  }
  edged::config::MqttConfig config;
  config.server = argv[1];
  config.client_id = argv[2];
  config.base_topic = argv[3];
  auto client = edged::mqtt::Client::Create(config, nullptr);
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
    return 1;
  }
  if (auto status = (*client)->Start(); !status.ok()) {
    std::fprintf(stderr, "%s\n", status.ToString().c_str());
    return 1;
  }
  while (true) ::pause();  // until the test kills us
}
