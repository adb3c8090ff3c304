// Root: bridges, veths, taps, namespaces and rules made by src/net, read back through
// netlink and libnftables. The whole binary runs in a network and mount namespace of its
// own (made in main, before any thread), with a tmpfs on /run: nothing it makes reaches the
// host, and all of it goes when the process ends, whatever failed.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netlink/cache.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <thread>

#include "common/unique_fd.h"
#include "net/check.h"
#include "net/net.h"
#include "net/netlink.h"

namespace storevisor::net {
namespace {

std::string& IsolationProblem() {
  static std::string problem = "not isolated yet";
  return problem;
}

#define REQUIRE_ISOLATION() \
  if (!IsolationProblem().empty()) GTEST_SKIP() << "SKIPPED: " << IsolationProblem()

struct LinkInfo {
  bool exists = false;
  bool up = false;
  int index = 0;
  int master = 0;
  std::string type;
};

LinkInfo ReadLink(nl_sock* sk, const std::string& name) {
  LinkInfo info;
  rtnl_link* l = nullptr;
  if (rtnl_link_get_kernel(sk, 0, name.c_str(), &l) < 0) return info;
  info.exists = true;
  info.up = (rtnl_link_get_flags(l) & IFF_UP) != 0;
  info.index = rtnl_link_get_ifindex(l);
  info.master = rtnl_link_get_master(l);
  const char* type = rtnl_link_get_type(l);
  info.type = type != nullptr ? type : "";
  rtnl_link_put(l);
  return info;
}

// "a.b.c.d/len" of every IPv4 address on the link.
std::vector<std::string> ReadAddresses(nl_sock* sk, int index) {
  std::vector<std::string> out;
  nl_cache* cache = nullptr;
  if (rtnl_addr_alloc_cache(sk, &cache) < 0) return out;
  for (nl_object* o = nl_cache_get_first(cache); o != nullptr; o = nl_cache_get_next(o)) {
    auto* a = reinterpret_cast<rtnl_addr*>(o);
    if (rtnl_addr_get_ifindex(a) != index || rtnl_addr_get_family(a) != AF_INET) continue;
    char buf[64];
    out.push_back(nl_addr2str(rtnl_addr_get_local(a), buf, sizeof buf));
  }
  nl_cache_free(cache);
  return out;
}

// The gateway of the main table's IPv4 default route, "" if none.
std::string ReadDefaultGateway(nl_sock* sk) {
  std::string gw;
  nl_cache* cache = nullptr;
  if (rtnl_route_alloc_cache(sk, AF_INET, 0, &cache) < 0) return gw;
  for (nl_object* o = nl_cache_get_first(cache); o != nullptr; o = nl_cache_get_next(o)) {
    auto* r = reinterpret_cast<rtnl_route*>(o);
    if (rtnl_route_get_table(r) != RT_TABLE_MAIN ||
        nl_addr_get_prefixlen(rtnl_route_get_dst(r)) != 0 || rtnl_route_get_nnexthops(r) < 1) {
      continue;
    }
    nl_addr* via = rtnl_route_nh_get_gateway(rtnl_route_nexthop_n(r, 0));
    char buf[64];
    if (via != nullptr) gw = nl_addr2str(via, buf, sizeof buf);
  }
  nl_cache_free(cache);
  return gw;
}

class NetIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    REQUIRE_ISOLATION();
    auto sk = NlSocket::Open();
    ASSERT_TRUE(sk) << sk.error().message();
    sk_ = std::make_unique<NlSocket>(std::move(*sk));
  }
  std::unique_ptr<NlSocket> sk_;
};

TEST_F(NetIntegrationTest, MakesABridgeWithItsGatewayAndRemovesIt) {
  ASSERT_TRUE(EnsureBridge("itest", "10.99.0.1/24"));
  ASSERT_TRUE(EnsureBridge("itest", "10.99.0.1/24"));  // again: kept, not an error
  LinkInfo br = ReadLink(sk_->get(), "sv-itest");
  ASSERT_TRUE(br.exists);
  EXPECT_EQ(br.type, "bridge");
  EXPECT_TRUE(br.up);
  EXPECT_EQ(ReadAddresses(sk_->get(), br.index), std::vector<std::string>{"10.99.0.1/24"});
  EXPECT_TRUE(LinkExists("sv-itest"));
  ASSERT_TRUE(RemoveBridge("itest"));
  EXPECT_FALSE(ReadLink(sk_->get(), "sv-itest").exists);
  EXPECT_TRUE(RemoveBridge("itest"));  // absent: fine
}

TEST_F(NetIntegrationTest, MakesANamespaceWithAVethOnTheBridgeAndReachesTheGateway) {
  ASSERT_TRUE(EnsureBridge("ns", "10.98.0.1/24"));
  Status st =
      SetUpNamespace("sv-itest", {{"svhitest0", "eth0", "sv-ns", "10.98.0.2", 24, "10.98.0.1"}});
  ASSERT_TRUE(st) << st.error().message();
  LinkInfo host = ReadLink(sk_->get(), "svhitest0");
  ASSERT_TRUE(host.exists);
  EXPECT_TRUE(host.up);
  EXPECT_EQ(host.type, "veth");
  EXPECT_EQ(host.master, ReadLink(sk_->get(), "sv-ns").index);
  EXPECT_FALSE(ReadLink(sk_->get(), "eth0").exists);  // the other end moved

  auto inside = NlSocketIn(NetnsPath("sv-itest"));
  ASSERT_TRUE(inside) << inside.error().message();
  LinkInfo eth0 = ReadLink(inside->get(), "eth0");
  ASSERT_TRUE(eth0.exists);
  EXPECT_TRUE(eth0.up);
  EXPECT_TRUE(ReadLink(inside->get(), "lo").up);
  EXPECT_EQ(ReadAddresses(inside->get(), eth0.index), std::vector<std::string>{"10.98.0.2/24"});
  EXPECT_EQ(ReadDefaultGateway(inside->get()), "10.98.0.1");

  // The data path: a TCP connection from inside the namespace to the bridge's address.
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, "10.98.0.1", &a.sin_addr);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len);
  int connected = -1;
  std::thread client([&] {
    UniqueFd ns(::open(NetnsPath("sv-itest").c_str(), O_RDONLY | O_CLOEXEC));
    if (::setns(ns.get(), CLONE_NEWNET) != 0) return;
    UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    connected = ::connect(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
  });
  client.join();
  EXPECT_EQ(connected, 0) << std::strerror(errno);

  // Again, as at a container's restart: the old namespace and host end are replaced.
  st = SetUpNamespace("sv-itest", {{"svhitest0", "eth0", "sv-ns", "10.98.0.3", 24, "10.98.0.1"}});
  ASSERT_TRUE(st) << st.error().message();
  inside = NlSocketIn(NetnsPath("sv-itest"));
  ASSERT_TRUE(inside);
  EXPECT_EQ(ReadAddresses(inside->get(), ReadLink(inside->get(), "eth0").index),
            std::vector<std::string>{"10.98.0.3/24"});

  ASSERT_TRUE(DeleteNetns("sv-itest"));
  struct stat sb {};
  EXPECT_NE(::stat(NetnsPath("sv-itest").c_str(), &sb), 0);
  EXPECT_TRUE(DeleteNetns("sv-itest"));  // absent: fine
  EXPECT_TRUE(RemoveBridge("ns"));
}

TEST_F(NetIntegrationTest, RefusesToMakeANamespaceTwice) {
  ASSERT_TRUE(CreateNetns("sv-twice"));
  Status st = CreateNetns("sv-twice");
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().code(), ErrorCode::kConflict);
  EXPECT_TRUE(DeleteNetns("sv-twice"));
}

TEST_F(NetIntegrationTest, MakesAPersistentTapOnTheBridge) {
  struct stat sb {};
  if (::stat("/dev/net/tun", &sb) != 0) GTEST_SKIP() << "SKIPPED: no /dev/net/tun";
  ASSERT_TRUE(EnsureBridge("tap", "10.97.0.1/24"));
  Status st = EnsureTap("svtitest0", "sv-tap");
  ASSERT_TRUE(st) << st.error().message();
  ASSERT_TRUE(EnsureTap("svtitest0", "sv-tap"));  // kept
  LinkInfo tap = ReadLink(sk_->get(), "svtitest0");
  ASSERT_TRUE(tap.exists);
  EXPECT_EQ(tap.type, "tun");
  EXPECT_EQ(tap.master, ReadLink(sk_->get(), "sv-tap").index);
  EXPECT_FALSE(EnsureTap("svtitest1", "sv-none"));  // no such bridge
  EXPECT_FALSE(EnsureTap("a-name-longer-than-15", "sv-tap"));
  ASSERT_TRUE(DeleteLink("svtitest0"));
  EXPECT_FALSE(ReadLink(sk_->get(), "svtitest0").exists);
  EXPECT_TRUE(RemoveBridge("tap"));
}

TEST_F(NetIntegrationTest, TwoStateDirectoriesKeepTwoTables) {
  const std::string a = DefaultTableName("/var/lib/storevisor-a");
  const std::string b = DefaultTableName("/var/lib/storevisor-b");
  ASSERT_NE(a, b);
  Status st = ApplyFirewall(a, {{"fa", "10.96.1.0/24", {}}, {"fb", "10.96.2.0/24", {}}},
                            {{18080, "10.96.1.2", 8080}});
  ASSERT_TRUE(st) << st.error().message();
  st = ApplyFirewall(b, {{"ga", "10.95.1.0/24", {}}}, {{18081, "10.95.1.2", 80}});
  ASSERT_TRUE(st) << st.error().message();
  auto tables = RunNft("list tables");
  ASSERT_TRUE(tables) << tables.error().message();
  EXPECT_NE(tables->find("table inet " + a), std::string::npos) << *tables;
  EXPECT_NE(tables->find("table inet " + b), std::string::npos) << *tables;
  auto listed = RunNft("list table inet " + a);
  ASSERT_TRUE(listed) << listed.error().message();
  EXPECT_NE(listed->find("dnat ip to 10.96.1.2:8080"), std::string::npos) << *listed;
  EXPECT_NE(listed->find("iifname \"sv-fa\" oifname \"sv-fb\" drop"), std::string::npos);

  // Applying again replaces the table's rules (no duplicates, the old port gone).
  st = ApplyFirewall(a, {{"fa", "10.96.1.0/24", {}}}, {{18082, "10.96.1.2", 8080}});
  ASSERT_TRUE(st) << st.error().message();
  listed = RunNft("list table inet " + a);
  ASSERT_TRUE(listed);
  EXPECT_EQ(listed->find("18080"), std::string::npos) << *listed;
  EXPECT_NE(listed->find("tcp dport 18082"), std::string::npos) << *listed;

  ASSERT_TRUE(FlushFirewall(a));
  tables = RunNft("list tables");
  ASSERT_TRUE(tables);
  EXPECT_EQ(tables->find("table inet " + a), std::string::npos) << *tables;
  listed = RunNft("list table inet " + b);
  ASSERT_TRUE(listed) << "the other daemon's table went too";
  EXPECT_NE(listed->find("dnat ip to 10.95.1.2:80"), std::string::npos) << *listed;
  EXPECT_TRUE(FlushFirewall(b));
  EXPECT_TRUE(FlushFirewall(b));  // absent: fine
  EXPECT_FALSE(ApplyFirewall("bad name", {{"x", "10.94.0.0/24", {}}}, {}));
}

TEST_F(NetIntegrationTest, ProbesThisHostsPortsAndAddresses) {
  ASSERT_TRUE(EnsureBridge("probe", "10.93.0.1/24"));
  UniqueFd tcp(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  UniqueFd udp(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  ::inet_pton(AF_INET, "10.93.0.1", &a.sin_addr);  // the bridge's (lo is down here)
  ASSERT_EQ(::bind(tcp.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(tcp.get(), 1), 0);
  socklen_t len = sizeof a;
  ::getsockname(tcp.get(), reinterpret_cast<sockaddr*>(&a), &len);
  const int tcp_port = ntohs(a.sin_port);
  sockaddr_in6 b{};
  b.sin6_family = AF_INET6;
  ASSERT_EQ(::bind(udp.get(), reinterpret_cast<sockaddr*>(&b), sizeof b), 0);
  len = sizeof b;
  ::getsockname(udp.get(), reinterpret_cast<sockaddr*>(&b), &len);
  const int udp_port = ntohs(b.sin6_port);

  SystemHostProbe host;
  ProfileNetworks p;
  p.file = "store.yaml";
  p.networks = {{"probe", "10.93.0.0/24", 4}};
  p.ports = {{tcp_port, "kv", "spec.workloads[0].ports[0].host", 9}};
  Status st = CheckProfileNetworks(p, host);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("overlaps 10.93.0.1/24 on sv-probe"), std::string::npos)
      << st.error().message();
  p.own_bridges = {"sv-probe"};
  st = CheckProfileNetworks(p, host);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("store.yaml:9: spec.workloads[0].ports[0].host: host port " +
                                      std::to_string(tcp_port)),
            std::string::npos)
      << st.error().message();
  EXPECT_NE(st.error().message().find("tcp 10.93.0.1:" + std::to_string(tcp_port)),
            std::string::npos);
  p.ports[0].host = udp_port;
  st = CheckProfileNetworks(p, host);
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message().find("udp6 [::]:" + std::to_string(udp_port)), std::string::npos)
      << st.error().message();
  tcp.reset();
  udp.reset();
  EXPECT_TRUE(CheckProfileNetworks(p, host));
  EXPECT_TRUE(RemoveBridge("probe"));
}

}  // namespace
}  // namespace storevisor::net

// Before gtest starts any thread: a network and mount namespace of the process's own, a
// private tmpfs on /run (for /run/netns). Without root the tests skip.
int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  std::string& problem = storevisor::net::IsolationProblem();
  if (::testing::GTEST_FLAG(list_tests)) {
    problem = "only listing";  // test discovery at build time: no namespace needed
  } else if (::geteuid() != 0) {
    problem = "needs root (network namespaces)";
  } else if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
    problem = std::string("unshare: ") + std::strerror(errno);
  } else if (::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
             ::mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") != 0) {
    problem = std::string("private /run: ") + std::strerror(errno);
  } else {
    problem.clear();
  }
  return RUN_ALL_TESTS();
}
