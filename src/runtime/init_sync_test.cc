// The runtime's end of the init's sync socket, against a real forked peer: the orderings
// of "the init fails" and "the runtime says go" that timing alone decides in a container.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "common/unique_fd.h"
#include "runtime/init.h"

namespace storevisor::runtime {
namespace {

struct Peer {
  UniqueFd runtime_end;
  UniqueFd go_signal;  // a byte here lets the peer go on to its last step
  pid_t pid = -1;
};

// Forks a stand-in init that sends `first` (if any), waits for the test's signal and then
// exits with `status` without reading its socket.
Peer StartPeer(const std::string& first, int status) {
  int sv[2];
  int gate[2];
  EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  EXPECT_EQ(::pipe2(gate, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(sv[0]);
    ::close(gate[1]);
    if (!first.empty()) (void)!::send(sv[1], first.data(), first.size(), MSG_NOSIGNAL);
    char b;
    (void)!::read(gate[0], &b, 1);
    ::_exit(status);
  }
  ::close(sv[1]);
  ::close(gate[0]);
  return Peer{UniqueFd(sv[0]), UniqueFd(gate[1]), pid};
}

// Lets the peer exit and waits until it has (without reaping it: WaitForInitReady may).
void LetExit(Peer& p) {
  ASSERT_EQ(::write(p.go_signal.get(), "x", 1), 1);
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(p.pid), &info, WEXITED | WNOWAIT), 0);
}

void Reap(pid_t pid) { (void)::waitpid(pid, nullptr, WNOHANG); }

TEST(InitSyncTest, ReadyIsOk) {
  Peer p = StartPeer(std::string(1, kMsgReady), 0);
  EXPECT_TRUE(WaitForInitReady(p.runtime_end.get(), p.pid).has_value());
  LetExit(p);
  Reap(p.pid);
}

TEST(InitSyncTest, ErrorSentBeforeGoIsReadAfterTheInitDied) {
  // The init fails (sysctl, mount...) and exits; the runtime's 'G' then fails with EPIPE.
  Peer p = StartPeer(std::string(1, kMsgError) + "write sysctl net.ipv4.no_such_knob", 1);
  LetExit(p);
  const std::string go = std::string(1, kMsgGo) + "1";
  EXPECT_EQ(::send(p.runtime_end.get(), go.data(), go.size(), MSG_NOSIGNAL), -1);
  auto st = WaitForInitReady(p.runtime_end.get(), p.pid);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(st.error().message().find("net.ipv4.no_such_knob"), std::string::npos)
      << st.error().message();
}

TEST(InitSyncTest, ErrorIsReadWhenTheInitDiedWithGoUnread) {
  // The race CI hit: 'G' reaches the init's queue after its error was sent and before it
  // exits. Its exit with unread data sets ECONNRESET on our socket, which recv reports
  // ahead of the queued error message.
  Peer p = StartPeer(std::string(1, kMsgError) + "write sysctl net.ipv4.no_such_knob", 1);
  const std::string go = std::string(1, kMsgGo) + "1";
  ASSERT_EQ(::send(p.runtime_end.get(), go.data(), go.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(go.size()));
  LetExit(p);
  auto st = WaitForInitReady(p.runtime_end.get(), p.pid);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code(), ErrorCode::kFailedPrecondition);
  EXPECT_NE(st.error().message().find("net.ipv4.no_such_knob"), std::string::npos)
      << st.error().message();
}

TEST(InitSyncTest, SilentDeathReportsTheWaitStatus) {
  Peer p = StartPeer("", 3);
  const std::string go = std::string(1, kMsgGo) + "1";
  ASSERT_GT(::send(p.runtime_end.get(), go.data(), go.size(), MSG_NOSIGNAL), 0);
  LetExit(p);
  auto st = WaitForInitReady(p.runtime_end.get(), p.pid);
  ASSERT_FALSE(st.has_value());
  EXPECT_EQ(st.error().code(), ErrorCode::kInternal);
  // Reaped by WaitForInitReady: exit status 3 is wait status 768.
  EXPECT_NE(st.error().message().find("status 768"), std::string::npos) << st.error().message();
}

}  // namespace
}  // namespace storevisor::runtime
