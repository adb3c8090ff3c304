// The daemon's service plumbing: config file, systemd notify, pidfile, socket group.
#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/files.h"
#include "common/unique_fd.h"
#include "daemon/service/config_file.h"
#include "daemon/service/notify.h"
#include "daemon/service/runtime_files.h"
#include "gtest/gtest.h"

namespace storevisor::daemon {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sv-service-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// The daemon's options as main() declares them, enough to see the file and flags combine.
struct Parsed {
  std::string state_dir = "/var/lib/storevisor";
  std::string socket = "/run/storevisor/storevisord.sock";
  std::string group;
};

void Parse(Parsed& p, const std::string& default_config, std::vector<std::string> args) {
  CLI::App app{"test"};
  app.add_option("--state-dir", p.state_dir);
  app.add_option("--socket", p.socket);
  app.add_option("--socket-group", p.group);
  AddConfigFile(app, default_config);
  args.insert(args.begin(), "storevisord");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  app.parse(static_cast<int>(argv.size()), argv.data());
}

TEST(ConfigFile, FileSetsOptionsAndFlagsOverride) {
  TempDir t;
  std::string conf = t.path() + "/storevisord.conf";
  Write(conf,
        "# comment\nstate-dir = \"/srv/state\"\nsocket = /srv/run/sv.sock\n"
        "socket-group = \"storevisor\"\n");
  Parsed p;
  Parse(p, conf, {"--socket", "/tmp/flag.sock"});
  EXPECT_EQ(p.state_dir, "/srv/state");
  EXPECT_EQ(p.socket, "/tmp/flag.sock");  // the flag wins over the file
  EXPECT_EQ(p.group, "storevisor");
}

TEST(ConfigFile, ExplicitConfigFlagReplacesTheDefault) {
  TempDir t;
  Write(t.path() + "/a.conf", "state-dir = /from-a\n");
  Write(t.path() + "/b.conf", "state-dir = /from-b\n");
  Parsed p;
  Parse(p, t.path() + "/a.conf", {"--config", t.path() + "/b.conf"});
  EXPECT_EQ(p.state_dir, "/from-b");
}

TEST(ConfigFile, MissingDefaultFileIsNoError) {
  TempDir t;
  Parsed p;
  EXPECT_NO_THROW(Parse(p, t.path() + "/absent.conf", {}));
  EXPECT_EQ(p.state_dir, "/var/lib/storevisor");
}

TEST(ConfigFile, EmptyConfigFlagReadsNone) {
  TempDir t;
  Write(t.path() + "/a.conf", "state-dir = /from-a\n");
  Parsed p;
  EXPECT_NO_THROW(Parse(p, t.path() + "/a.conf", {"--config", ""}));
  EXPECT_EQ(p.state_dir, "/var/lib/storevisor");
}

TEST(ConfigFile, MissingNamedFileIsAnError) {
  TempDir t;
  Parsed p;
  EXPECT_THROW(Parse(p, "", {"--config", t.path() + "/absent.conf"}), CLI::FileError);
}

TEST(ConfigFile, UnknownKeyIsAnError) {
  TempDir t;
  Write(t.path() + "/a.conf", "state-dri = /typo\n");
  Parsed p;
  EXPECT_THROW(Parse(p, t.path() + "/a.conf", {}), CLI::ConfigError);
}

TEST(ConfigFile, NastyContentIsRefusedOrIgnoredWithoutCrash) {
  TempDir t;
  for (const char* text : {"=\n", "[\n", "state-dir\n", "\"\"\"\n", "state-dir = \"unterminated\n",
                           "[section]\nstate-dir = /x\n", "\x01\x02\xff = \xfe\n"}) {
    Write(t.path() + "/n.conf", text);
    Parsed p;
    try {
      Parse(p, t.path() + "/n.conf", {});
    } catch (const CLI::ParseError&) {
      // refused: what main() reports as a usage error
    }
  }
}

TEST(Notify, SendsTheStateToTheSocket) {
  TempDir t;
  std::string path = t.path() + "/notify";
  UniqueFd rx(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(rx.valid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(rx.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_TRUE(Notify(path, "READY=1\nMAINPID=42"));
  char buf[64] = {};
  ssize_t n = ::recv(rx.get(), buf, sizeof buf - 1, MSG_DONTWAIT);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(n)), "READY=1\nMAINPID=42");
}

TEST(Notify, AbstractSocket) {
  std::string name = "@sv-notify-test-" + std::to_string(::getpid());
  UniqueFd rx(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_TRUE(rx.valid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path + 1, name.data() + 1, name.size() - 1);
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
  ASSERT_EQ(::bind(rx.get(), reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_TRUE(Notify(name, "STOPPING=1"));
  char buf[32] = {};
  ssize_t n = ::recv(rx.get(), buf, sizeof buf - 1, MSG_DONTWAIT);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "STOPPING=1");
}

TEST(Notify, BadPathsAndAbsentListener) {
  EXPECT_FALSE(Notify("", "READY=1"));
  EXPECT_FALSE(Notify("relative", "READY=1"));
  EXPECT_FALSE(Notify(std::string(200, '/'), "READY=1"));
  EXPECT_FALSE(Notify("/nonexistent/notify.sock", "READY=1"));
}

TEST(Notify, NoSocketVariableIsANoOp) {
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_TRUE(NotifySystemd("READY=1"));
}

TEST(PidFile, HoldsThePidRefusesASecondAndIsRemoved) {
  TempDir t;
  std::string path = t.path() + "/storevisord.pid";
  {
    auto first = PidFile::Acquire(path);
    ASSERT_TRUE(first) << first.error().message();
    auto text = ReadFile(path);
    ASSERT_TRUE(text);
    EXPECT_EQ(*text, std::to_string(::getpid()) + "\n");
    auto second = PidFile::Acquire(path);  // a new open file description: flock conflicts
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code(), ErrorCode::kConflict);
    EXPECT_NE(second.error().message().find("pid " + std::to_string(::getpid())), std::string::npos)
        << second.error().message();
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  auto again = PidFile::Acquire(path);
  EXPECT_TRUE(again);
}

TEST(PidFile, StaleFileOfADeadDaemonIsTakenOver) {
  TempDir t;
  std::string path = t.path() + "/storevisord.pid";
  Write(path, "999999999\n");  // no lock held: its daemon is gone
  auto p = PidFile::Acquire(path);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(*ReadFile(path), std::to_string(::getpid()) + "\n");
}

TEST(PidFile, UnwritableDirectoryIsAnError) {
  EXPECT_FALSE(PidFile::Acquire("/nonexistent-dir/storevisord.pid"));
}

TEST(RemoveAtExit, UnlinksThePath) {
  TempDir t;
  std::string path = t.path() + "/sock";
  Write(path, "");
  { RemoveAtExit guard(path); }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(ChangeGroup, GivesTheFileToTheGroup) {
  TempDir t;
  std::string path = t.path() + "/sock";
  Write(path, "");
  struct group* g = ::getgrgid(::getgid());  // a group this process may chown to
  ASSERT_NE(g, nullptr);
  ASSERT_TRUE(ChangeGroup(path, g->gr_name));
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, ::getgid());
}

TEST(ChangeGroup, UnknownGroupIsNotFound) {
  TempDir t;
  auto s = ChangeGroup(t.path(), "no-such-group-sv");
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code(), ErrorCode::kNotFound);
}

TEST(DefaultPidFile, BesideTheSocket) {
  EXPECT_EQ(DefaultPidFile("/run/storevisor/storevisord.sock"), "/run/storevisor/storevisord.pid");
  EXPECT_EQ(DefaultPidFile("/sock"), "/storevisord.pid");
  EXPECT_EQ(DefaultPidFile("sock"), "./storevisord.pid");
}

}  // namespace
}  // namespace storevisor::daemon
