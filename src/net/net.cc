#include "net/net.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>

#include "common/child_process.h"
#include "common/files.h"
#include "common/unique_fd.h"

namespace storevisor::net {

namespace {

Status Run(const std::vector<std::string>& argv) {
  std::string cmd;
  for (const auto& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
  SV_ASSIGN_OR_RETURN(CommandOutput out, RunCommand(argv, std::chrono::seconds(20)));
  if (!out.status.success()) {
    return Error(ErrorCode::kIo,
                 cmd + ": " + out.status.ToString() + ": " + out.err.substr(0, 400));
  }
  return Ok();
}

// /proc/sys files take a plain write (no temp file and rename there).
void WriteSysctl(const std::string& path, std::string_view value) {
  auto fd = OpenFile(path, O_WRONLY);
  if (fd) (void)WriteAll(fd->get(), value);
}

// Runs argv + a temporary file holding `script` (`ip -batch FILE`, `nft -f FILE`): one
// process for many commands, as each process start costs milliseconds on apply's path.
Status RunScript(std::vector<std::string> argv, const std::string& script) {
  char tmpl[] = "/tmp/sv-net-XXXXXX";
  int fd = ::mkstemp(tmpl);
  if (fd < 0) return ErrnoError("mkstemp");
  ::close(fd);
  const std::string path = tmpl;
  Status st = WriteFileAtomic(path, script);
  if (st) {
    argv.push_back(path);
    st = Run(argv);
  }
  (void)RemoveAll(path);
  return st;
}

bool LinkExists(const std::string& name) {
  struct stat st {};
  return ::stat(("/sys/class/net/" + name).c_str(), &st) == 0;
}

}  // namespace

std::string BridgeName(const std::string& network) { return "sv-" + network; }

Status EnsureBridge(const std::string& network, const std::string& gateway_cidr) {
  const std::string br = BridgeName(network);
  std::string batch;
  if (!LinkExists(br)) batch += "link add " + br + " type bridge\n";
  batch += "addr replace " + gateway_cidr + " dev " + br + "\n";  // idempotent
  batch += "link set " + br + " up\n";
  SV_TRY(RunScript({"ip", "-batch"}, batch));
  // DNAT of published ports from 127.0.0.1 needs it on the bridge; set here, once the bridge
  // exists, as ApplyFirewall may run before (its rules only name the bridges).
  WriteSysctl("/proc/sys/net/ipv4/conf/" + br + "/route_localnet", "1");
  return Ok();
}

Status RemoveBridge(const std::string& network) {
  const std::string br = BridgeName(network);
  if (!LinkExists(br)) return Ok();
  return Run({"ip", "link", "delete", br});
}

std::string FirewallRules(const std::vector<FirewallNetwork>& networks,
                          const std::vector<PublishedPort>& ports) {
  std::string r =
      "table inet storevisor {\n  chain forward {\n"
      "    type filter hook forward priority 0; policy accept;\n"
      "    ct state established,related accept\n";
  // Traffic between two profile bridges passes only where allowed (either direction's
  // allow: lets the pair talk); everything else between them is dropped.
  for (const auto& from : networks) {
    for (const auto& to : networks) {
      if (from.name == to.name) continue;
      bool allowed = false;
      for (const auto& a : from.allow) allowed = allowed || a == to.name;
      for (const auto& a : to.allow) allowed = allowed || a == from.name;
      r += "    iifname \"" + BridgeName(from.name) + "\" oifname \"" + BridgeName(to.name) +
           "\" " + (allowed ? "accept" : "drop") + "\n";
    }
  }
  r += "  }\n}\n";
  r += "table ip storevisor-nat {\n  chain prerouting {\n"
       "    type nat hook prerouting priority -100; policy accept;\n";
  for (const auto& p : ports) {
    r += "    tcp dport " + std::to_string(p.host_port) + " dnat to " + p.address + ":" +
         std::to_string(p.port) + "\n";
  }
  r += "  }\n  chain output {\n    type nat hook output priority -100; policy accept;\n";
  for (const auto& p : ports) {
    r += "    ip daddr 127.0.0.1 tcp dport " + std::to_string(p.host_port) + " dnat to " +
         p.address + ":" + std::to_string(p.port) + "\n";
  }
  r += "  }\n  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n";
  for (const auto& n : networks) {
    r += "    ip saddr " + n.subnet + " oifname != \"" + BridgeName(n.name) + "\" masquerade\n";
    r += "    ip saddr 127.0.0.1 oifname \"" + BridgeName(n.name) + "\" masquerade\n";
  }
  r += "  }\n}\n";
  return r;
}

Status FlushFirewall() {
  (void)RunCommand({"nft", "delete", "table", "inet", "storevisor"});
  (void)RunCommand({"nft", "delete", "table", "ip", "storevisor-nat"});
  return Ok();
}

Status ApplyFirewall(const std::vector<FirewallNetwork>& networks,
                     const std::vector<PublishedPort>& ports) {
  if (networks.empty()) return FlushFirewall();
  // One nft transaction replaces both tables: no moment without rules, one nft process.
  // Declaring a table first makes its delete valid when it does not exist yet.
  SV_TRY(RunScript({"nft", "-f"},
                   "table inet storevisor\ndelete table inet storevisor\n"
                   "table ip storevisor-nat\ndelete table ip storevisor-nat\n" +
                       FirewallRules(networks, ports)));
  // Routing between bridges and DNAT from loopback need these.
  WriteSysctl("/proc/sys/net/ipv4/ip_forward", "1");
  WriteSysctl("/proc/sys/net/ipv4/conf/all/route_localnet", "1");
  for (const auto& n : networks) {
    WriteSysctl("/proc/sys/net/ipv4/conf/" + BridgeName(n.name) + "/route_localnet", "1");
  }
  return Ok();
}

}  // namespace storevisor::net
