#include "guest/agent.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include "common/json_stream.h"

namespace storevisor::guest {
namespace {

using nlohmann::json;

struct Fake {
  std::string shutdown_mode;
  std::string last_path;
  std::vector<std::string> last_args;
  std::string last_input;
  pid_t next_pid = 100;
};

AgentSystem FakeSystem(Fake* f) {
  AgentSystem s;
  s.spawn = [f](const std::string& path, const std::vector<std::string>& args,
                const std::vector<std::string>&, const std::string& input, bool,
                ExecState* st) -> std::optional<std::string> {
    if (path == "/missing") return "no such file";
    f->last_path = path;
    f->last_args = args;
    f->last_input = input;
    st->pid = f->next_pid++;
    return std::nullopt;
  };
  s.shutdown = [f](const std::string& mode) { f->shutdown_mode = mode; };
  s.os_info = [] { return json{{"id", "test"}}; };
  return s;
}

json Reply(Agent& a, std::string_view req) {
  std::string out = a.Handle(req);
  EXPECT_FALSE(out.empty());
  if (!out.empty() && out[0] == '\xFF') out.erase(0, 1);
  return json::parse(out);
}

// The agent's input path as agent_main.cc wires it: JsonStream frames, the agent
// answers; refused input gets an error reply instead of silence.
TEST(AgentFraming, StreamFeedsTheAgentAndRefusedInputGetsAnErrorReply) {
  Fake f;
  Agent a(FakeSystem(&f));
  JsonStream s(JsonLimits{.max_message = 64, .max_depth = 4, .max_queued = 8});
  s.Feed("junk\xFF{\"execute\":\"guest-ping\",\"id\":1}");
  s.Feed("{\"execute\":\"guest-ping\",\"arguments\":{\"pad\":\"" + std::string(100, 'x') + "\"}}");
  s.Feed("{\"a\":[[[[[1]]]]]}");
  std::vector<std::string> replies;
  while (auto m = s.Next())
    replies.push_back(*m ? a.HandleRequest(**m) : ErrorReply(m->error().message()));
  ASSERT_EQ(replies.size(), 3u);
  EXPECT_EQ(json::parse(replies[0]), json::parse(R"({"return":{},"id":1})"));
  EXPECT_NE(replies[1].find("larger than 64 bytes"), std::string::npos) << replies[1];
  EXPECT_NE(replies[2].find("nested deeper than 4"), std::string::npos) << replies[2];
  EXPECT_EQ(json::parse(replies[2])["error"]["class"], "GenericError");
}

TEST(Base64, RoundTripsAndRejectsBadInput) {
  for (const std::string& in :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff\x10", 3)}) {
    auto d = Base64Decode(Base64Encode(in));
    ASSERT_TRUE(d);
    EXPECT_EQ(*d, in);
  }
  EXPECT_EQ(Base64Encode("hi\n"), "aGkK");
  EXPECT_FALSE(Base64Decode("abc"));
  EXPECT_FALSE(Base64Decode("a=bc"));
  EXPECT_FALSE(Base64Decode("ab!c"));
}

TEST(Agent, PingSyncAndDelimitedSync) {
  Fake f;
  Agent a(FakeSystem(&f));
  EXPECT_EQ(Reply(a, R"({"execute":"guest-ping"})"), (json{{"return", json::object()}}));
  EXPECT_EQ(Reply(a, R"({"execute":"guest-sync","arguments":{"id":7}})")["return"], 7);
  std::string raw = a.Handle(R"({"execute":"guest-sync-delimited","arguments":{"id":9}})");
  ASSERT_FALSE(raw.empty());
  EXPECT_EQ(raw[0], '\xFF');
  EXPECT_EQ(Reply(a, R"({"execute":"guest-sync","arguments":{"id":"x"}})")["error"]["class"],
            "GenericError");
}

TEST(Agent, EchoesIdAndRejectsUnknownAndMalformed) {
  Fake f;
  Agent a(FakeSystem(&f));
  json r = Reply(a, R"({"execute":"guest-frobnicate","id":"q1"})");
  EXPECT_EQ(r["error"]["class"], "CommandNotFound");
  EXPECT_EQ(r["id"], "q1");
  EXPECT_TRUE(Reply(a, R"({"execute":5})").contains("error"));
  EXPECT_TRUE(Reply(a, R"([1,2])").contains("error"));
  EXPECT_TRUE(Reply(a, R"({"execute":"guest-exec","arguments":[]})").contains("error"));
  EXPECT_TRUE(Reply(a, R"({"execute":"guest-shutdown","arguments":{"mode":3}})").contains("error"));
}

TEST(Agent, ExecPassesArgumentsAndReportsStatusOnce) {
  Fake f;
  Agent a(FakeSystem(&f));
  json r = Reply(a, R"({"execute":"guest-exec","arguments":{"path":"/bin/sh",
      "arg":["-c","true"],"input-data":"aGkK","capture-output":true}})");
  int64_t pid = r["return"]["pid"];
  EXPECT_EQ(f.last_path, "/bin/sh");
  EXPECT_EQ(f.last_args, (std::vector<std::string>{"-c", "true"}));
  EXPECT_EQ(f.last_input, "hi\n");
  std::string status =
      R"({"execute":"guest-exec-status","arguments":{"pid":)" + std::to_string(pid) + "}}";
  EXPECT_EQ(Reply(a, status)["return"]["exited"], false);
  ExecState& st = a.execs().at(pid);
  st.exited = true;
  st.wait_status = 3 << 8;  // exit(3)
  st.out = "out";
  json done = Reply(a, status)["return"];
  EXPECT_EQ(done["exited"], true);
  EXPECT_EQ(done["exitcode"], 3);
  EXPECT_EQ(done["out-data"], "b3V0");
  EXPECT_TRUE(Reply(a, status).contains("error"));  // reaped: unknown now
}

TEST(Agent, ExecErrors) {
  Fake f;
  Agent a(FakeSystem(&f));
  EXPECT_TRUE(
      Reply(a, R"({"execute":"guest-exec","arguments":{"path":"/missing"}})").contains("error"));
  EXPECT_TRUE(Reply(a, R"({"execute":"guest-exec","arguments":{"path":"/x","arg":[1]}})")
                  .contains("error"));
  EXPECT_TRUE(Reply(a, R"({"execute":"guest-exec","arguments":{"path":"/x","input-data":"@@"}})")
                  .contains("error"));
}

TEST(Agent, ShutdownHasNoReplyAndValidatesMode) {
  Fake f;
  Agent a(FakeSystem(&f));
  EXPECT_EQ(a.Handle(R"({"execute":"guest-shutdown"})"), "");
  EXPECT_EQ(f.shutdown_mode, "powerdown");
  EXPECT_TRUE(
      Reply(a, R"({"execute":"guest-shutdown","arguments":{"mode":"explode"}})").contains("error"));
}

TEST(AppendCapped, Truncates) {
  std::string b;
  bool t = false;
  AppendCapped(&b, "hello", 3, &t);
  EXPECT_EQ(b, "hel");
  EXPECT_TRUE(t);
}

}  // namespace
}  // namespace storevisor::guest
