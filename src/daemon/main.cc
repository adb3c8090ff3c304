// storevisord: `storevisord [options]` runs the daemon; `storevisord shim ...` is the
// per-container shim the daemon starts (see drivers/shim.h).
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>

#include "common/files.h"
#include "daemon/api/api.h"
#include "daemon/api/dashboard.h"
#include "daemon/api/dashboard_history.h"
#include "daemon/api/http.h"
#include "daemon/daemon.h"
#include "daemon/drivers/shim.h"
#include "daemon/service/config_file.h"
#include "daemon/service/notify.h"
#include "daemon/service/runtime_files.h"
#include "net/net.h"

namespace storevisor::daemon {

namespace {

std::string SelfExe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "storevisord" : p.string();
}

std::string Sibling(const std::string& self, const std::string& name) {
  std::string dir = self.substr(0, self.rfind('/') + 1);
  return ::access((dir + name).c_str(), X_OK) == 0 ? dir + name : "";
}

int Fail(const Logger& log, const Error& e) {
  log.Error("storevisord", e.message());
  return ExitCodeFor(e.code());
}

}  // namespace

int DaemonMain(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "shim") {
    return ShimMain(std::vector<std::string>(argv + 2, argv + argc));
  }
  DaemonOptions o;
  o.self_exe = SelfExe();
  std::string log_format = "json";
  CLI::App app{"storevisord: runs a store profile's VMs and containers and keeps them healthy"};
  app.add_option("--state-dir", o.state_dir, "state (SQLite), bundles, logs")
      ->capture_default_str();
  app.add_option("--socket", o.socket, "API unix socket (mode 0660)")->capture_default_str();
  app.add_option("--tcp", o.tcp, "also serve the API on HOST:PORT (needs --token-file)");
  app.add_option("--token-file", o.token_file, "bearer token for TCP clients");
  app.add_option("--runtime", o.runtime,
                 "OCI runtime (default: storevisor-runtime if built, else runc)");
  app.add_option("--image-root", o.image_root,
                 "the image store `image:` refs resolve in (default STATE_DIR/images)");
  app.add_option("--image-dir", o.image_dir,
                 "also directory images: <dir>/<name>_<tag>/rootfs (after the image store)");
  app.add_option("--vm-tool", o.vm_tool, "storevisor-vm (default: beside storevisord)");
  app.add_option("--legacy-tool", o.legacy_tool, "storevisor-legacy (default: beside storevisord)");
  app.add_option("--nft-table", o.nft_table,
                 "nftables table of this daemon's rules (default: storevisor-<8 hex digits of a "
                 "hash of the state dir>)");
  std::string web_dir;
  app.add_option("--web-dir", web_dir,
                 "the dashboard's files, served on --tcp (default: web/ beside storevisord, "
                 "else /usr/share/storevisor/web)");
  app.add_option("--log-format", log_format, "json or human")->capture_default_str();
  // Service settings (packaging/, docs/install.md): the socket's group, the pidfile,
  // --version and the config file (/etc/storevisor/storevisord.conf; flags override it).
  o.version = SV_VERSION;
  std::string socket_group;
  std::string pidfile;
  app.add_option("--socket-group", socket_group,
                 "group given the API socket: its members may use storevisor");
  app.add_option("--pidfile", pidfile,
                 "pid file, locked while serving (default: storevisord.pid beside the socket)");
  app.set_version_flag("--version", "storevisord " SV_VERSION);
  AddConfigFile(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  Logger log(2, log_format == "human" ? LogFormat::kHuman : LogFormat::kJson);
  // Paths are taken from where storevisord was started: the runtime and the engines run in
  // other directories (a bundle's), where a relative path would name something else.
  for (std::string* path :
       {&o.state_dir, &o.socket, &o.image_root, &o.image_dir, &o.token_file, &web_dir}) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(*path, ec);
    if (!path->empty() && !ec) *path = abs.lexically_normal().string();
  }
  if (o.runtime.empty()) o.runtime = Sibling(o.self_exe, "storevisor-runtime");
  if (o.runtime.empty()) o.runtime = "runc";
  if (o.vm_tool.empty()) o.vm_tool = Sibling(o.self_exe, "storevisor-vm");
  if (o.image_root.empty()) o.image_root = o.state_dir + "/images";
  if (o.legacy_tool.empty()) o.legacy_tool = Sibling(o.self_exe, "storevisor-legacy");
  if (o.nft_table.empty()) o.nft_table = net::DefaultTableName(o.state_dir);
  if (Status st = net::CheckTableName(o.nft_table); !st) return Fail(log, std::move(st).error());
  std::string token;
  if (!o.tcp.empty()) {
    auto t = ReadFile(o.token_file, 4096);
    if (o.token_file.empty() || !t || t->empty()) {
      return Fail(log, Error(ErrorCode::kInvalidArgument, "--tcp needs --token-file with a token"));
    }
    token = *t;
    while (!token.empty() && (token.back() == '\n' || token.back() == ' ')) token.pop_back();
  }
  // Block the stop signals before any thread starts, so every thread inherits the mask
  // and signalfd sees them.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  // One daemon per runtime directory: the pidfile is locked before the state is opened.
  if (pidfile.empty()) pidfile = DefaultPidFile(o.socket);
  std::error_code pid_ec;
  auto pid_abs = std::filesystem::absolute(pidfile, pid_ec);
  if (!pid_ec) pidfile = pid_abs.lexically_normal().string();
  if (auto st = MakeDirs(pidfile.substr(0, pidfile.rfind('/')), 0755); !st) {
    return Fail(log, st.error());
  }
  auto pid_file = PidFile::Acquire(pidfile);
  if (!pid_file) return Fail(log, pid_file.error());
  auto daemon = Daemon::Create(o, log);
  if (!daemon) return Fail(log, daemon.error());
  auto socket_dir = o.socket.substr(0, o.socket.rfind('/'));
  if (auto st = MakeDirs(socket_dir, 0755); !st) return Fail(log, st.error());
  auto unix_fd = ListenUnix(o.socket, 0660);
  if (!unix_fd) return Fail(log, unix_fd.error());
  // The socket goes at exit (clients then see "not running" at once); its group may use it.
  RemoveAtExit socket_file(o.socket);
  if (!socket_group.empty()) {
    if (auto st = ChangeGroup(o.socket, socket_group); !st) return Fail(log, st.error());
  }
  Daemon& d = **daemon;
  // The unix socket and TCP each get their own acceptor, pools and limits (docs/daemon.md).
  RaiseFileLimit();
  // The dashboard (TCP only): its login exchanges the token for a session cookie.
  DashboardOptions dash;
  dash.web_dir = web_dir.empty() ? DefaultWebDir(o.self_exe) : web_dir;
  dash.token = token;
  Dashboard dashboard(dash);
  // The dashboard's charts: every workload's CPU and memory over the last hour (TCP only).
  UsageHistory history([&d] { return d.Workloads(); });
  HttpServer server(
      HttpHandlers{[&token, &dashboard](const HttpRequest& req) {
                     return TokenMatches(token, req) || dashboard.Admits(req);
                   },
                   IsLongDashboardRequest,
                   [&d, &dashboard, &history, &token](const HttpRequest& req, HttpConnection& conn,
                                                      const Peer& peer) {
                     ServeWithDashboard(d, dashboard, history, token, req, conn, peer);
                   }});
  if (auto st = server.Listen(std::move(*unix_fd), false, ListenerLimits{}); !st) {
    return Fail(log, st.error());
  }
  if (!o.tcp.empty()) {
    auto tcp_fd = ListenTcp(o.tcp);
    if (!tcp_fd) return Fail(log, tcp_fd.error());
    ListenerLimits tcp;
    tcp.max_pending_per_peer = 1024;
    tcp.max_active_per_peer = 16;
    tcp.max_long = 16;
    if (auto st = server.Listen(std::move(*tcp_fd), true, tcp); !st) return Fail(log, st.error());
  }
  server.Start();
  if (auto st = d.Start(); !st) return Fail(log, st.error());
  if (!o.tcp.empty()) history.Start();
  log.Info("storevisord", "serving",
           {{"socket", o.socket},
            {"tcp", o.tcp},
            {"runtime", o.runtime},
            {"vm_tool", o.vm_tool},
            {"pid", ::getpid()}});
  // Readiness for a systemd Type=notify unit (nothing without $NOTIFY_SOCKET).
  if (auto st = NotifySystemd("READY=1\nMAINPID=" + std::to_string(::getpid())); !st) {
    log.Warn("storevisord", st.error().message());
  }
  int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC);
  signalfd_siginfo info{};
  while (::read(sfd, &info, sizeof info) < 0 && errno == EINTR) {
  }
  ::close(sfd);
  (void)NotifySystemd("STOPPING=1");
  log.Info("storevisord", "stopping; workloads keep running");
  history.Stop();
  server.Stop();
  d.Shutdown();
  return 0;
}

}  // namespace storevisor::daemon

int main(int argc, char** argv) { return storevisor::daemon::DaemonMain(argc, argv); }
