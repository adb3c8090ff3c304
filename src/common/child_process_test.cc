#include "common/child_process.h"

#include <gtest/gtest.h>
#include <signal.h>

#include "common/unique_fd.h"

namespace storevisor {
namespace {

using std::chrono::milliseconds;

TEST(RunCommandTest, CapturesOutputAndStatus) {
  auto r = RunCommand({"sh", "-c", "echo out; echo err >&2; exit 3"});
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->out, "out\n");
  EXPECT_EQ(r->err, "err\n");
  EXPECT_TRUE(r->status.exited);
  EXPECT_EQ(r->status.exit_code, 3);
  EXPECT_FALSE(r->status.success());
}

TEST(RunCommandTest, MissingProgramIsNotFound) {
  auto r = RunCommand({"/nonexistent/storevisor-tool"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(r.error().message().find("/nonexistent/storevisor-tool"), std::string::npos);
}

TEST(RunCommandTest, TimeoutKillsTheChild) {
  auto start = std::chrono::steady_clock::now();
  auto r = RunCommand({"sleep", "30"}, milliseconds(200));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
}

TEST(RunCommandTest, CapsOutput) {
  auto r = RunCommand({"sh", "-c", "head -c 100000 /dev/zero"}, std::chrono::seconds(10), 1000);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->out.size(), 1000u);
}

TEST(ChildProcessTest, WaitTimesOutThenKillReportsSignal) {
  SpawnOptions o;
  o.argv = {"sleep", "30"};
  auto child = ChildProcess::Spawn(o);
  ASSERT_TRUE(child.has_value());
  auto w = child->Wait(milliseconds(50));
  ASSERT_FALSE(w.has_value());
  EXPECT_EQ(w.error().code(), ErrorCode::kTimeout);
  ASSERT_TRUE(child->Kill(SIGTERM).has_value());
  auto s = child->Wait();
  ASSERT_TRUE(s.has_value());
  EXPECT_FALSE(s->exited);
  EXPECT_EQ(s->term_signal, SIGTERM);
}

TEST(ChildProcessTest, DestructorKillsAndReaps) {
  pid_t pid;
  {
    SpawnOptions o;
    o.argv = {"sleep", "30"};
    auto child = ChildProcess::Spawn(o);
    ASSERT_TRUE(child.has_value());
    pid = child->pid();
  }
  // Reaped: the pid no longer names our child.
  EXPECT_EQ(::kill(pid, 0), -1);
}

TEST(ChildProcessTest, ProgramApartFromArgv0) {
  // The executable comes from `program`; argv[0] is passed as given (execve semantics).
  Pipe out = *MakePipe();
  SpawnOptions o;
  o.program = "/bin/sh";
  o.argv = {"my-name", "-c", "echo \"$0\""};
  o.env = std::vector<std::string>{};
  o.stdout_fd = out.write.get();
  auto child = ChildProcess::Spawn(o);
  ASSERT_TRUE(child.has_value()) << child.error().message();
  out.write.reset();
  auto text = ReadAll(out.read.get(), 1024);
  ASSERT_TRUE(text.has_value());
  EXPECT_EQ(*text, "my-name\n");
  auto s = child->Wait();
  ASSERT_TRUE(s.has_value());
  EXPECT_TRUE(s->success());
  // No PATH lookup for `program`, and its name is in the error.
  o.program = "/nonexistent/hook";
  auto missing = ChildProcess::Spawn(o);
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().message().find("/nonexistent/hook"), std::string::npos);
}

TEST(ChildProcessTest, NoThpIsKeptAcrossExec) {
  auto thp_of_child = [](bool no_thp) {
    Pipe out = *MakePipe();
    SpawnOptions o;
    o.argv = {"grep", "THP_enabled", "/proc/self/status"};
    o.stdout_fd = out.write.get();
    o.no_thp = no_thp;
    auto child = ChildProcess::Spawn(o);
    EXPECT_TRUE(child.has_value());
    out.write.reset();
    std::string text = ReadAll(out.read.get(), 1024).value_or("");
    if (child) (void)child->Wait();
    return text;
  };
  EXPECT_EQ(thp_of_child(true), "THP_enabled:\t0\n");
  EXPECT_EQ(thp_of_child(false), "THP_enabled:\t1\n");
}

}  // namespace
}  // namespace storevisor
