#include <gtest/gtest.h>

#include "vm/test_peer.h"
#include "vm/vm.h"

namespace storevisor::vm {
namespace {

using testing::ScriptedPeer;
using Replies = std::vector<std::pair<std::string, std::string>>;

// The client's sync id is random: the peer echoes it by reading the request. This
// scripted peer answers sync with the id it saw, and other commands from a table.
class AgentPeer {
 public:
  explicit AgentPeer(std::vector<std::pair<std::string, std::string>> replies,
                     std::string before_sync_reply = "")
      : replies_(std::move(replies)), before_(std::move(before_sync_reply)) {
    int sv[2];
    ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
    client_ = UniqueFd(sv[0]);
    peer_ = UniqueFd(sv[1]);
    thread_ = std::thread([this] { Run(); });
  }
  ~AgentPeer() {
    peer_shutdown_ = true;
    client_.reset();
    if (thread_.joinable()) thread_.join();
  }
  UniqueFd TakeClientFd() { return std::move(client_); }
  int resyncs_seen() const { return resyncs_; }

 private:
  void Write(const std::string& s) { (void)!::write(peer_.get(), s.data(), s.size()); }
  void Run() {
    JsonStream in;
    char buf[4096];
    for (;;) {
      pollfd p{peer_.get(), POLLIN, 0};
      if (::poll(&p, 1, 3000) <= 0) return;
      ssize_t n = ::read(peer_.get(), buf, sizeof buf);
      if (n <= 0) return;
      for (ssize_t i = 0; i < n; ++i) resyncs_ += static_cast<unsigned char>(buf[i]) == 0xFF;
      in.Feed(std::string_view(buf, static_cast<size_t>(n)));
      while (auto m = in.Next()) {
        if (!m->has_value()) continue;
        std::string cmd = (*m)->value("execute", "");
        if (cmd == "guest-sync-delimited") {
          Write(before_);
          before_.clear();
          Write("\xFF{\"return\": " + (**m)["arguments"]["id"].dump() + "}\n");
          continue;
        }
        for (auto it = replies_.begin(); it != replies_.end(); ++it) {
          if (it->first == cmd) {
            Write(it->second);
            replies_.erase(it);
            break;
          }
        }
      }
    }
  }
  std::vector<std::pair<std::string, std::string>> replies_;
  std::string before_;
  UniqueFd client_;
  UniqueFd peer_;
  std::thread thread_;
  std::atomic<int> resyncs_{0};
  std::atomic<bool> peer_shutdown_{false};
};

TEST(AgentClient, SyncDropsStaleRepliesAndGarbage) {
  AgentPeer peer(Replies{}, "{\"return\": 12345}\n garbage {\"return\": {\"pid\": 1}}\n");
  AgentClient c = AgentClient::FromFd(peer.TakeClientFd());
  auto s = c.Sync(Millis(2000));
  EXPECT_TRUE(s.has_value()) << s.error().message();
  EXPECT_EQ(peer.resyncs_seen(), 1);
}

TEST(AgentClient, ExecPollsStatusAndDecodesOutput) {
  AgentPeer peer(
      Replies{{"guest-exec", "{\"return\": {\"pid\": 77}}\n"},
              {"guest-exec-status", "{\"return\": {\"exited\": false}}\n"},
              {"guest-exec-status",
               "{\"return\": {\"exited\": true, \"exitcode\": 3, \"out-data\": \"aGkK\", "
               "\"err-data\": \"b29wcw==\"}}\n"}});
  AgentClient c = AgentClient::FromFd(peer.TakeClientFd());
  auto r = c.Exec({"/bin/sh", "-c", "echo hi; echo oops >&2; exit 3"}, Millis(5000));
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->out, "hi\n");
  EXPECT_EQ(r->err, "oops");
}

TEST(AgentClient, ErrorReplyAndBadFieldsAreErrors) {
  AgentPeer peer(Replies{
      {"guest-exec", "{\"error\": {\"class\": \"GenericError\", \"desc\": \"No such file\"}}\n"}});
  AgentClient c = AgentClient::FromFd(peer.TakeClientFd());
  auto r = c.Exec({"/nope"}, Millis(3000));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("No such file"), std::string::npos);

  AgentPeer bad(Replies{{"guest-exec", "{\"return\": {\"pid\": \"seven\"}}\n"}});
  AgentClient c2 = AgentClient::FromFd(bad.TakeClientFd());
  auto r2 = c2.Exec({"/bin/true"}, Millis(3000));
  ASSERT_FALSE(r2.has_value());
  EXPECT_EQ(r2.error().code(), ErrorCode::kGuestFault);

  AgentPeer badb64(
      Replies{{"guest-exec", "{\"return\": {\"pid\": 5}}\n"},
              {"guest-exec-status",
               "{\"return\": {\"exited\": true, \"exitcode\": 0, \"out-data\": \"@@@\"}}\n"}});
  AgentClient c3 = AgentClient::FromFd(badb64.TakeClientFd());
  auto r3 = c3.Exec({"/bin/true"}, Millis(3000));
  ASSERT_FALSE(r3.has_value());
  EXPECT_EQ(r3.error().code(), ErrorCode::kGuestFault);
}

TEST(AgentClient, SilentAgentTimesOut) {
  ScriptedPeer peer(std::vector<testing::Step>{});
  AgentClient c = AgentClient::FromFd(peer.TakeClientFd());
  auto s = c.Sync(Millis(150));
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kTimeout);
}

TEST(AgentClient, ShutdownSendsCommandWithoutWaitingForReply) {
  AgentPeer peer(Replies{});
  AgentClient c = AgentClient::FromFd(peer.TakeClientFd());
  EXPECT_TRUE(c.Shutdown("powerdown").has_value());
}

}  // namespace
}  // namespace storevisor::vm
