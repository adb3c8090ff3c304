// Links, addresses, routes and namespaces over rtnetlink (libnl-route-3).
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>
#include <thread>

#include "common/files.h"
#include "common/unique_fd.h"
#include "net/net.h"
#include "net/netlink.h"

namespace storevisor::net {

namespace {

// /proc/sys files take a plain write (no temp file and rename there).
void WriteSysctl(const std::string& path, std::string_view value) {
  auto fd = OpenFile(path, O_WRONLY);
  if (fd) (void)WriteAll(fd->get(), value);
}

Error NlError(const std::string& what, int err) {
  return Error(ErrorCode::kIo, what + ": " + nl_geterror(err));
}

struct Deleter {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
  void operator()(rtnl_route* r) const { rtnl_route_put(r); }
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
using LinkPtr = std::unique_ptr<rtnl_link, Deleter>;
using AddrPtr = std::unique_ptr<rtnl_addr, Deleter>;
using RoutePtr = std::unique_ptr<rtnl_route, Deleter>;
using NlAddrPtr = std::unique_ptr<nl_addr, Deleter>;

Result<NlAddrPtr> ParseAddr(const std::string& text) {
  nl_addr* a = nullptr;
  int err = nl_addr_parse(text.c_str(), AF_INET, &a);
  if (err < 0) return NlError("address " + text, err);
  return NlAddrPtr(a);
}

// The link's index, 0 if there is none.
int IndexOf(nl_sock* sk, const std::string& name) {
  rtnl_link* l = nullptr;
  if (rtnl_link_get_kernel(sk, 0, name.c_str(), &l) < 0) return 0;
  LinkPtr link(l);
  return rtnl_link_get_ifindex(link.get());
}

Result<int> RequireIndex(nl_sock* sk, const std::string& name) {
  int index = IndexOf(sk, name);
  if (index == 0) return Error(ErrorCode::kNotFound, "link " + name + " does not exist");
  return index;
}

// Sets link `index` (`name`, for messages) up, and its master when `master_index` is not 0.
Status SetUp(nl_sock* sk, int index, const std::string& name, int master_index) {
  LinkPtr orig(rtnl_link_alloc());
  rtnl_link_set_ifindex(orig.get(), index);
  LinkPtr change(rtnl_link_alloc());
  rtnl_link_set_flags(change.get(), IFF_UP);
  if (master_index != 0) rtnl_link_set_master(change.get(), master_index);
  int err = rtnl_link_change(sk, orig.get(), change.get(), 0);
  if (err < 0) return NlError("setting " + name + " up", err);
  return Ok();
}

Status AddAddress(nl_sock* sk, int index, const std::string& cidr) {
  SV_ASSIGN_OR_RETURN(NlAddrPtr local, ParseAddr(cidr));
  AddrPtr addr(rtnl_addr_alloc());
  rtnl_addr_set_ifindex(addr.get(), index);
  rtnl_addr_set_family(addr.get(), AF_INET);
  int err = rtnl_addr_set_local(addr.get(), local.get());
  if (err >= 0) err = rtnl_addr_add(sk, addr.get(), NLM_F_REPLACE);  // idempotent
  if (err < 0) return NlError("adding address " + cidr, err);
  return Ok();
}

Status AddDefaultRoute(nl_sock* sk, int index, const std::string& gateway) {
  SV_ASSIGN_OR_RETURN(NlAddrPtr dst, ParseAddr("0.0.0.0/0"));
  SV_ASSIGN_OR_RETURN(NlAddrPtr gw, ParseAddr(gateway));
  RoutePtr route(rtnl_route_alloc());
  rtnl_route_set_family(route.get(), AF_INET);
  rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
  rtnl_route_set_type(route.get(), RTN_UNICAST);
  rtnl_route_set_protocol(route.get(), RTPROT_BOOT);
  rtnl_route_set_scope(route.get(), RT_SCOPE_UNIVERSE);
  int err = rtnl_route_set_dst(route.get(), dst.get());
  if (err < 0) return NlError("default route", err);
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  rtnl_route_nh_set_ifindex(nh, index);
  rtnl_route_nh_set_gateway(nh, gw.get());
  rtnl_route_add_nexthop(route.get(), nh);  // the route owns it now
  err = rtnl_route_add(sk, route.get(), NLM_F_REPLACE);
  if (err < 0) return NlError("default route via " + gateway, err);
  return Ok();
}

// /run/netns is a shared mount point (as `ip netns` leaves it), so namespaces mounted there
// later also appear in mount namespaces that copied it earlier.
Status EnsureNetnsDir() {
  SV_TRY(MakeDirs(kNetnsDir, 0755));
  if (::mount("", kNetnsDir, "none", MS_SHARED | MS_REC, nullptr) == 0) return Ok();
  if (errno != EINVAL) return ErrnoError(std::string("making ") + kNetnsDir + " shared");
  // Not a mount point yet: bind it onto itself first.
  if (::mount(kNetnsDir, kNetnsDir, "none", MS_BIND | MS_REC, nullptr) != 0 ||
      ::mount("", kNetnsDir, "none", MS_SHARED | MS_REC, nullptr) != 0) {
    return ErrnoError(std::string("making ") + kNetnsDir + " a shared mount");
  }
  return Ok();
}

// Runs `fn` on a thread of its own that first joins the namespace at `path` (a namespace is
// a property of the thread: the caller's stays as it was).
template <typename Fn>
Status InNamespace(const std::string& path, Fn fn) {
  Status result = Ok();
  std::thread worker([&] {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) {
      result = ErrnoError("opening " + path);
    } else if (::setns(fd.get(), CLONE_NEWNET) != 0) {
      result = ErrnoError("entering " + path);
    } else {
      result = fn();
    }
  });
  worker.join();
  return result;
}

}  // namespace

Result<NlSocket> NlSocket::Open() {
  NlSocket s;
  s.sk_ = nl_socket_alloc();
  if (s.sk_ == nullptr) return Error(ErrorCode::kIo, "netlink: out of memory");
  int err = nl_connect(s.sk_, NETLINK_ROUTE);
  if (err < 0) return NlError("netlink connect", err);
  return s;
}

NlSocket::~NlSocket() {
  if (sk_ != nullptr) nl_socket_free(sk_);
}

std::string BridgeName(const std::string& network) { return "sv-" + network; }

bool LinkExists(const std::string& name) {
  auto sk = NlSocket::Open();
  return sk && IndexOf(sk->get(), name) != 0;
}

Status DeleteLink(const std::string& name) {
  SV_ASSIGN_OR_RETURN(NlSocket sk, NlSocket::Open());
  if (IndexOf(sk.get(), name) == 0) return Ok();
  LinkPtr link(rtnl_link_alloc());
  rtnl_link_set_name(link.get(), name.c_str());
  int err = rtnl_link_delete(sk.get(), link.get());
  if (err < 0 && err != -NLE_NODEV && err != -NLE_OBJ_NOTFOUND) {
    return NlError("deleting link " + name, err);
  }
  return Ok();
}

Status EnsureBridge(const std::string& network, const std::string& gateway_cidr) {
  const std::string br = BridgeName(network);
  SV_ASSIGN_OR_RETURN(NlSocket sk, NlSocket::Open());
  int index = IndexOf(sk.get(), br);
  if (index == 0) {
    LinkPtr link(rtnl_link_alloc());
    rtnl_link_set_name(link.get(), br.c_str());
    int err = rtnl_link_set_type(link.get(), "bridge");
    if (err >= 0) err = rtnl_link_add(sk.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL);
    if (err < 0 && err != -NLE_EXIST) return NlError("creating bridge " + br, err);
    SV_ASSIGN_OR_RETURN(index, RequireIndex(sk.get(), br));
  }
  SV_TRY_CTX(AddAddress(sk.get(), index, gateway_cidr), br);
  SV_TRY(SetUp(sk.get(), index, br, 0));
  // DNAT of published ports from 127.0.0.1 needs it on the bridge; set here, once the bridge
  // exists, as ApplyFirewall may run before (its rules only name the bridges).
  WriteSysctl("/proc/sys/net/ipv4/conf/" + br + "/route_localnet", "1");
  return Ok();
}

Status RemoveBridge(const std::string& network) { return DeleteLink(BridgeName(network)); }

Status EnsureTap(const std::string& tap, const std::string& bridge) {
  if (tap.empty() || tap.size() >= IFNAMSIZ) {
    return Error(ErrorCode::kInvalidArgument, "tap name '" + tap + "' must be 1 to 15 characters");
  }
  SV_ASSIGN_OR_RETURN(NlSocket sk, NlSocket::Open());
  SV_ASSIGN_OR_RETURN(int master, RequireIndex(sk.get(), bridge));
  if (IndexOf(sk.get(), tap) == 0) {
    // Taps cannot be made over rtnetlink: TUNSETIFF makes it, TUNSETPERSIST keeps it once
    // this fd closes (QEMU opens it again by name).
    UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
    if (!fd.valid()) return ErrnoError("opening /dev/net/tun for tap " + tap);
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    std::memcpy(ifr.ifr_name, tap.data(), tap.size());
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) return ErrnoError("creating tap " + tap);
    if (::ioctl(fd.get(), TUNSETPERSIST, 1) != 0) return ErrnoError("keeping tap " + tap);
  }
  SV_ASSIGN_OR_RETURN(int index, RequireIndex(sk.get(), tap));
  return SetUp(sk.get(), index, tap, master);
}

std::string NetnsPath(const std::string& name) { return std::string(kNetnsDir) + "/" + name; }

namespace {

// Makes the namespace at kNetnsDir/name; when `inside` is given, also a netlink socket in it
// (opened by the thread that made it: no second thread joining it later).
Status MakeNetns(const std::string& name, std::optional<NlSocket>* inside) {
  SV_TRY(EnsureNetnsDir());
  const std::string path = NetnsPath(name);
  {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
    if (!fd.valid()) {
      if (errno == EEXIST) return Error(ErrorCode::kConflict, "namespace " + path + " exists");
      return ErrnoError("creating " + path);
    }
  }
  // A namespace belongs to a thread: a short-lived one makes it and leaves it mounted.
  Status made = Ok();
  std::thread worker([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      made = ErrnoError("new network namespace");
    } else if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
      made = ErrnoError("mounting the namespace on " + path);
    } else if (inside != nullptr) {
      auto sk = NlSocket::Open();  // it stays in this namespace, whatever thread uses it
      if (sk) {
        inside->emplace(std::move(*sk));
      } else {
        made = std::move(sk).error();
      }
    }
  });
  worker.join();
  if (!made) {
    (void)::umount2(path.c_str(), MNT_DETACH);
    ::unlink(path.c_str());
  }
  return made;
}

}  // namespace

Status CreateNetns(const std::string& name) { return MakeNetns(name, nullptr); }

Status DeleteNetns(const std::string& name) {
  const std::string path = NetnsPath(name);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Ok();
  (void)::umount2(path.c_str(), MNT_DETACH);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return ErrnoError("removing " + path);
  return Ok();
}

Result<NlSocket> NlSocketIn(const std::string& netns_path) {
  Result<NlSocket> out = Error(ErrorCode::kInternal, "no socket");
  // The socket stays in the namespace it was opened in, whatever thread uses it later.
  Status st = InNamespace(netns_path, [&]() -> Status {
    out = NlSocket::Open();
    return Ok();
  });
  if (!st) return std::move(st).error();
  return out;
}

Status SetUpNamespace(const std::string& name, const std::vector<NamespaceLink>& links) {
  SV_TRY(DeleteNetns(name));
  std::optional<NlSocket> in_ns;
  SV_TRY(MakeNetns(name, &in_ns));
  NlSocket& inside = *in_ns;
  const std::string path = NetnsPath(name);
  UniqueFd ns(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ns.valid()) return ErrnoError("opening " + path);
  SV_ASSIGN_OR_RETURN(NlSocket host, NlSocket::Open());
  for (const NamespaceLink& l : links) {
    SV_ASSIGN_OR_RETURN(int master, RequireIndex(host.get(), l.bridge));
    // A host end left from an earlier instance (a namespace's veths go away lazily).
    SV_TRY(DeleteLink(l.host));
    // One message makes the pair, puts the host end on the bridge and up, and the other
    // end straight into the namespace.
    LinkPtr veth(rtnl_link_veth_alloc());
    if (!veth) return Error(ErrorCode::kIo, "netlink: out of memory");
    rtnl_link_set_name(veth.get(), l.host.c_str());
    rtnl_link_set_master(veth.get(), master);
    rtnl_link_set_flags(veth.get(), IFF_UP);
    LinkPtr peer(rtnl_link_veth_get_peer(veth.get()));
    rtnl_link_set_name(peer.get(), l.inside.c_str());
    rtnl_link_set_ns_fd(peer.get(), ns.get());
    int err = rtnl_link_add(host.get(), veth.get(), NLM_F_CREATE | NLM_F_EXCL);
    if (err < 0) return NlError("creating veth " + l.host + "/" + l.inside, err);
  }
  SV_ASSIGN_OR_RETURN(int lo, RequireIndex(inside.get(), "lo"));
  SV_TRY(SetUp(inside.get(), lo, "lo", 0));
  for (size_t i = 0; i < links.size(); ++i) {
    const NamespaceLink& l = links[i];
    SV_ASSIGN_OR_RETURN(int index, RequireIndex(inside.get(), l.inside));
    SV_TRY_CTX(AddAddress(inside.get(), index, l.address + "/" + std::to_string(l.prefix)),
               l.inside);
    SV_TRY(SetUp(inside.get(), index, l.inside, 0));
    if (i == 0 && !l.gateway.empty()) SV_TRY(AddDefaultRoute(inside.get(), index, l.gateway));
  }
  return Ok();
}

}  // namespace storevisor::net
