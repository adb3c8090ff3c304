// bench/apply, network figure: the time to set up one container's network (its namespace,
// a veth pair on the network's bridge with one end moved in, address, loopback, default
// route, and the daemon's rules with one published port), median of N rounds.
//   before: what storevisord did until the move to netlink, replayed command for command:
//           `ip -batch` for the host side, `ip -n NS -batch` inside, both from files written
//           to the container's folder, and `nft -f` of a temporary file for two tables.
//   after:  src/net in-process: net::SetUpNamespace and net::ApplyFirewall (netlink and
//           libnftables, no process, no file).
// Both run alternately in the same run, inside a network and mount namespace this program
// makes (fresh /run and /sys): nothing reaches the host. Needs root, iproute2 and nftables.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/child_process.h"
#include "common/files.h"
#include "net/net.h"

namespace sv = storevisor;
namespace net = storevisor::net;
using Clock = std::chrono::steady_clock;

namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

sv::Status Run(const std::vector<std::string>& argv) {
  SV_ASSIGN_OR_RETURN(sv::CommandOutput out, sv::RunCommand(argv, std::chrono::seconds(20)));
  if (!out.status.success()) return sv::Error(sv::ErrorCode::kIo, argv[0] + ": " + out.err);
  return sv::Ok();
}

constexpr const char* kNs = "sv-bench";
constexpr const char* kVeth = "svh0badcafe0";
const std::vector<net::FirewallNetwork> kNets = {{"bench", "10.90.0.0/24", {}}};
const std::vector<net::PublishedPort> kPorts = {{18080, "10.90.0.2", 8080}};

// The rules text of the code before (two tables, one per host), for `nft -f`.
std::string BeforeRules() {
  std::string r =
      "table inet storevisor\ndelete table inet storevisor\n"
      "table ip storevisor-nat\ndelete table ip storevisor-nat\n";
  std::string now = net::FirewallRules("storevisor", kNets, {});
  // The old forward table is the new table's first chain; its NAT lived in `ip storevisor-nat`.
  r += now.substr(0, now.find("  chain prerouting")) + "}\n";
  r += "table ip storevisor-nat {\n  chain prerouting {\n"
       "    type nat hook prerouting priority -100; policy accept;\n"
       "    tcp dport 18080 dnat to 10.90.0.2:8080\n  }\n"
       "  chain output {\n    type nat hook output priority -100; policy accept;\n"
       "    ip daddr 127.0.0.1 tcp dport 18080 dnat to 10.90.0.2:8080\n  }\n"
       "  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n"
       "    ip saddr 10.90.0.0/24 oifname != \"sv-bench\" masquerade\n"
       "    ip saddr 127.0.0.1 oifname \"sv-bench\" masquerade\n  }\n}\n";
  return r;
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// ContainerDriver::SetUpNetwork and net::ApplyFirewall as they were (ip/nft processes).
sv::Status Before(const std::string& dir, const std::string& rules) {
  if (Exists(std::string("/sys/class/net/") + kVeth)) SV_TRY(Run({"ip", "link", "delete", kVeth}));
  std::string host = std::string("netns add ") + kNs + "\n";
  host += std::string("link add ") + kVeth + " type veth peer name eth0 netns " + kNs + "\n";
  host += std::string("link set ") + kVeth + " master sv-bench up\n";
  std::string inside =
      "link set lo up\naddr add 10.90.0.2/24 dev eth0\nlink set eth0 up\n"
      "route add default via 10.90.0.1\n";
  SV_TRY(sv::WriteFileAtomic(dir + "/net-host.batch", host));
  SV_TRY(sv::WriteFileAtomic(dir + "/net-inside.batch", inside));
  SV_TRY(Run({"ip", "-batch", dir + "/net-host.batch"}));
  SV_TRY(Run({"ip", "-n", kNs, "-batch", dir + "/net-inside.batch"}));
  char tmpl[] = "/tmp/sv-net-XXXXXX";
  int fd = ::mkstemp(tmpl);
  if (fd < 0) return sv::ErrnoError("mkstemp");
  ::close(fd);
  sv::Status st = sv::WriteFileAtomic(tmpl, rules);
  if (st) st = Run({"nft", "-f", tmpl});
  ::unlink(tmpl);
  return st;
}

// `links_ms`: the part before the rules (namespace, veth, address, routes). `nft`: the
// daemon's long-lived context, or nullptr for one made (and closed) by the call.
sv::Status After(net::Nftables* nft, double* links_ms) {
  const auto t0 = Clock::now();
  SV_TRY(net::SetUpNamespace(kNs, {{kVeth, "eth0", "sv-bench", "10.90.0.2", 24, "10.90.0.1"}}));
  *links_ms = MsSince(t0);
  const std::string table = net::DefaultTableName("/var/lib/storevisor-bench");
  if (nft == nullptr) return net::ApplyFirewall(table, kNets, kPorts);
  return net::ApplyFirewall(*nft, table, kNets, kPorts);
}

// Untimed, between rounds: the namespace and rules go, and the round waits for the
// host end to be gone (a namespace's veths go away lazily).
void Reset() {
  (void)net::DeleteNetns(kNs);
  (void)net::RunNft(
      "table inet storevisor\ndelete table inet storevisor\n"
      "table ip storevisor-nat\ndelete table ip storevisor-nat\n");
  (void)net::FlushFirewall(net::DefaultTableName("/var/lib/storevisor-bench"));
  for (int i = 0; i < 500 && net::LinkExists(kVeth); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::string Isolate() {
  if (::geteuid() != 0) return "needs root";
  if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0)
    return std::string("unshare: ") + std::strerror(errno);
  if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      ::mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0 ||
      ::mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return std::string("private /run and /sys: ") + std::strerror(errno);
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 50;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
      rounds = std::max(1, static_cast<int>(std::strtol(argv[++i], nullptr, 10)));
    }
  }
  const std::string problem = Isolate();
  if (!problem.empty()) {
    std::fprintf(stderr, "net_setup_bench: %s\n", problem.c_str());
    return 1;
  }
  char dir_tmpl[] = "/tmp/sv-net-bench-XXXXXX";
  if (::mkdtemp(dir_tmpl) == nullptr) return 1;
  const std::string dir = dir_tmpl;
  sv::Status st = net::EnsureBridge("bench", "10.90.0.1/24");
  const std::string rules = BeforeRules();
  auto nft = net::Nftables::Open();
  if (!nft) st = nft.error();  // a copy: nft stays whole for the checks below
  std::vector<double> before, after, after_links, after_own_ctx;
  for (int i = 0; i < rounds && st; ++i) {
    Reset();
    auto t0 = Clock::now();
    st = Before(dir, rules);
    before.push_back(MsSince(t0));
    if (!st) break;
    Reset();
    t0 = Clock::now();
    double links = 0;
    st = After(&*nft, &links);
    after.push_back(MsSince(t0));
    after_links.push_back(links);
    if (!st) break;
    Reset();
    t0 = Clock::now();
    st = After(nullptr, &links);
    after_own_ctx.push_back(MsSince(t0));
  }
  Reset();
  (void)sv::RemoveAll(dir);
  if (!st) {
    std::fprintf(stderr, "net_setup_bench: %s\n", st.error().message().c_str());
    return 1;
  }
  const double b = Median(before), a = Median(after);
  std::printf(
      "one container's network (netns, veth on the bridge, address, routes, rules), median of "
      "%d:\n  ip/nft processes (before) %.2f ms; netlink + libnftables (after) %.2f ms: %.2fx\n"
      "  (after: links, namespace, address, routes %.2f ms; the rest is the rules, through\n"
      "  the daemon's open nftables context; with a context made and closed by the call:\n"
      "  %.2f ms, %.2fx)\n",
      rounds, b, a, b > 0 ? a / b : 0, Median(after_links), Median(after_own_ctx),
      b > 0 ? Median(after_own_ctx) / b : 0);
  return 0;
}
