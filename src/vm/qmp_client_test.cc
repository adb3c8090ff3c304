#include <gtest/gtest.h>

#include "vm/test_peer.h"
#include "vm/vm.h"

namespace storevisor::vm {
namespace {

using testing::ScriptedPeer;
using testing::Step;

const std::string kGreeting =
    R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": []}})"
    "\n";

TEST(QmpClient, NegotiatesAndRunsCommandsMatchedById) {
  ScriptedPeer peer({{"", kGreeting},
                     {"qmp_capabilities", "{\"return\": {}, \"id\": 1}\n"},
                     // An event and a stale reply arrive before ours.
                     {"query-status",
                      "{\"event\": \"RESUME\", \"data\": {}, \"timestamp\": {}}\n"
                      "{\"return\": {\"status\": \"old\"}, \"id\": 99}\n"
                      "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": 2}\n"}});
  auto c = QmpClient::FromFd(peer.TakeClientFd(), Millis(2000));
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->greeting()["QMP"]["version"]["qemu"]["major"], 7);
  auto st = c->Execute("query-status");
  ASSERT_TRUE(st.has_value()) << st.error().message();
  EXPECT_EQ((*st)["status"], "running");
  auto ev = c->WaitEvent(Millis(0));
  ASSERT_TRUE(ev.has_value());
  ASSERT_TRUE(ev->has_value());
  EXPECT_EQ((*ev)->name, "RESUME");
}

TEST(QmpClient, ErrorReplyBecomesError) {
  ScriptedPeer peer({{"", kGreeting},
                     {"qmp_capabilities", "{\"return\": {}, \"id\": 1}\n"},
                     {"frobnicate",
                      "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command "
                      "frobnicate has not been found\"}, \"id\": 2}\n"}});
  auto c = QmpClient::FromFd(peer.TakeClientFd(), Millis(2000));
  ASSERT_TRUE(c.has_value());
  auto r = c->Execute("frobnicate");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(r.error().message().find("CommandNotFound"), std::string::npos);
}

TEST(QmpClient, SocketClosingMidCommandIsUnavailable) {
  ScriptedPeer peer({{"", kGreeting},
                     {"qmp_capabilities", "{\"return\": {}, \"id\": 1}\n"},
                     {"query-status", "{\"return\": {\"sta", true}});
  auto c = QmpClient::FromFd(peer.TakeClientFd(), Millis(2000));
  ASSERT_TRUE(c.has_value());
  auto r = c->Execute("query-status");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kUnavailable);
  EXPECT_NE(r.error().message().find("query-status"), std::string::npos);
}

TEST(QmpClient, CommandTimesOut) {
  ScriptedPeer peer({{"", kGreeting}, {"qmp_capabilities", "{\"return\": {}, \"id\": 1}\n"}});
  auto c = QmpClient::FromFd(peer.TakeClientFd(), Millis(2000));
  ASSERT_TRUE(c.has_value());
  auto r = c->Execute("query-status", nlohmann::json::object(), Millis(100));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kTimeout);
}

TEST(QmpClient, NoGreetingIsAGuestFault) {
  ScriptedPeer peer(std::vector<Step>{Step{"", "{\"hello\": 1}\n"}});
  auto c = QmpClient::FromFd(peer.TakeClientFd(), Millis(2000));
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.error().code(), ErrorCode::kGuestFault);
}

TEST(QmpClient, GarbageLinesAreSkipped) {
  ScriptedPeer peer(
      {{"", kGreeting},
       {"qmp_capabilities", "{\"return\": {}, \"id\": 1}\n"},
       {"query-kvm",
        "{not json}\n\x01\x02garbage\n{\"return\": {\"enabled\": false}, \"id\": 2}\n"}});
  auto c = QmpClient::FromFd(peer.TakeClientFd(), Millis(2000));
  ASSERT_TRUE(c.has_value());
  auto r = c->Execute("query-kvm");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ((*r)["enabled"], false);
}

TEST(QmpClient, WaitForEventKeepsOthersQueued) {
  ScriptedPeer peer({{"", kGreeting},
                     {"qmp_capabilities",
                      "{\"return\": {}, \"id\": 1}\n{\"event\": \"STOP\"}\n"
                      "{\"event\": \"SHUTDOWN\", \"data\": {\"guest\": true, \"reason\": "
                      "\"guest-shutdown\"}}\n"}});
  auto c = QmpClient::FromFd(peer.TakeClientFd(), Millis(2000));
  ASSERT_TRUE(c.has_value());
  auto ev = c->WaitForEvent("SHUTDOWN", Millis(2000));
  ASSERT_TRUE(ev.has_value()) << ev.error().message();
  EXPECT_EQ(ev->data["reason"], "guest-shutdown");
  auto next = c->WaitEvent(Millis(0));
  ASSERT_TRUE(next.has_value() && next->has_value());
  EXPECT_EQ((*next)->name, "STOP");
}

}  // namespace
}  // namespace storevisor::vm
