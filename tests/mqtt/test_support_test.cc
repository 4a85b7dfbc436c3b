// The shared test helpers (tests/support) do what the other tests rely on: a restarted broker keeps
// its port and, without persistence, forgets retained messages; subprocess exit codes; temp dirs.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/support/mqtt_test_support.h"

namespace edged::test {
namespace {

using std::chrono::milliseconds;

TEST(MqttTestSupport, RestartedBrokerKeepsItsPortAndForgetsRetainedMessages) {
  auto broker = MosquittoBroker::Start();
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  const auto port = (*broker)->port();
  EXPECT_EQ((*broker)->url(), "mqtt://127.0.0.1:" + std::to_string(port));
  {
    auto probe = MqttProbe::Connect(**broker, {"support/#"});
    ASSERT_TRUE(probe.ok()) << probe.status().ToString();
    ASSERT_TRUE((*probe)->Publish("support/retained", "1", 1, true).ok());
    ASSERT_TRUE((*probe)->WaitFor("support/retained", PayloadIs("1")));
    auto late = MqttProbe::Connect(**broker, {"support/#"});
    ASSERT_TRUE(late.ok());
    auto retained = (*late)->WaitFor("support/retained");
    ASSERT_TRUE(retained);
    EXPECT_TRUE(retained->retain);
  }
  (*broker)->Kill();
  EXPECT_FALSE((*broker)->running());
  EXPECT_FALSE(MqttProbe::Connect(**broker, {"#"}).ok());
  ASSERT_TRUE((*broker)->Restart().ok()) << (*broker)->log();
  EXPECT_TRUE((*broker)->running());
  EXPECT_EQ((*broker)->port(), port);
  auto probe = MqttProbe::Connect(**broker, {"support/#"});
  ASSERT_TRUE(probe.ok()) << probe.status().ToString();
  EXPECT_FALSE((*probe)->WaitFor("support/retained", {}, milliseconds(300))) << (*probe)->Dump();
  EXPECT_TRUE((*broker)->Stop().ok());
  EXPECT_FALSE((*broker)->running());
}

TEST(MqttTestSupport, PasswordBrokerNeedsTheCredentials) {
  BrokerOptions options;
  options.user = "alice";
  options.password = "pw";
  auto broker = MosquittoBroker::Start(options);
  ASSERT_TRUE(broker.ok()) << broker.status().ToString();
  auto config = (*broker)->ClientConfig("id");
  EXPECT_EQ(config.user, "alice");
  EXPECT_EQ(config.password, "pw");
  EXPECT_EQ(config.client_id, "id");
  auto probe = MqttProbe::Connect(**broker, {"#"});  // the probe logs in with the broker's credentials
  ASSERT_TRUE(probe.ok()) << probe.status().ToString();
}

TEST(MqttTestSupport, SubprocessReportsExitCodesAndSignals) {
  auto exits = Subprocess::Start({"sh", "-c", "exit 3"});
  ASSERT_TRUE(exits.ok());
  auto code = (*exits)->Wait(milliseconds(5000));
  ASSERT_TRUE(code.ok()) << code.status().ToString();
  EXPECT_EQ(*code, 3);

  auto sleeper = Subprocess::Start({"sleep", "30"});
  ASSERT_TRUE(sleeper.ok());
  EXPECT_TRUE((*sleeper)->running());
  EXPECT_EQ((*sleeper)->Wait(milliseconds(50)).status().code(), StatusCode::kDeadlineExceeded);
  (*sleeper)->Signal(SIGTERM);
  code = (*sleeper)->Wait(milliseconds(5000));
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(*code, 128 + SIGTERM);

  auto missing = RunCommand({"/nonexistent/binary"});
  EXPECT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("exited with 127"), std::string::npos) << missing.ToString();
}

TEST(MqttTestSupport, TempDirIsRemovedWithItsContents) {
  std::filesystem::path path;
  {
    TempDir dir("support-test");
    path = dir.path();
    ASSERT_TRUE(std::filesystem::is_directory(path));
    std::ofstream(path / "file") << "x";
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_GT(FreeTcpPort(), 0);
}

}  // namespace
}  // namespace edged::test
