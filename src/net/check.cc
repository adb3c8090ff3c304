#include "net/check.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>

#include "common/files.h"

namespace storevisor::net {

namespace {

struct V4Net {
  uint32_t base = 0;  // host order, masked
  int prefix = 0;
};

uint32_t Mask(int prefix) { return prefix <= 0 ? 0 : ~uint32_t{0} << (32 - prefix); }

std::optional<V4Net> ParseNet(const std::string& address, int prefix) {
  in_addr a{};
  if (prefix < 0 || prefix > 32 || ::inet_pton(AF_INET, address.c_str(), &a) != 1) {
    return std::nullopt;
  }
  return V4Net{ntohl(a.s_addr) & Mask(prefix), prefix};
}

std::optional<V4Net> ParseCidr(const std::string& cidr) {
  const size_t slash = cidr.find('/');
  if (slash == std::string::npos || slash + 1 >= cidr.size() || cidr.size() - slash > 3) {
    return std::nullopt;
  }
  int prefix = 0;
  for (size_t i = slash + 1; i < cidr.size(); ++i) {
    if (cidr[i] < '0' || cidr[i] > '9') return std::nullopt;
    prefix = prefix * 10 + (cidr[i] - '0');
  }
  return ParseNet(cidr.substr(0, slash), prefix);
}

bool Overlap(const V4Net& a, const V4Net& b) {
  const uint32_t m = Mask(std::min(a.prefix, b.prefix));
  return (a.base & m) == (b.base & m);
}

std::string NetworkField(size_t i) { return "spec.networks[" + std::to_string(i) + "].subnet"; }

Error Fail(const std::string& file, int line, const std::string& field, const std::string& what) {
  std::string msg = file;
  if (line > 0) msg += ":" + std::to_string(line);
  return Error(ErrorCode::kInvalidArgument, msg + ": " + field + ": " + what);
}

Status CheckSubnets(const ProfileNetworks& p, const HostProbe& host) {
  std::vector<V4Net> nets;
  for (size_t i = 0; i < p.networks.size(); ++i) {
    const ProfileNetwork& n = p.networks[i];
    auto net = ParseCidr(n.subnet);
    if (!net) {
      return Fail(p.file, n.line, NetworkField(i),
                  "expected an IPv4 subnet such as 10.88.1.0/24, got '" + n.subnet + "'");
    }
    for (size_t j = 0; j < i; ++j) {
      if (!Overlap(nets[j], *net)) continue;
      const ProfileNetwork& other = p.networks[j];
      return Fail(p.file, n.line, NetworkField(i),
                  n.subnet + " overlaps network '" + other.name + "' (" + other.subnet +
                      (other.line > 0 ? ", line " + std::to_string(other.line) : "") + ")");
    }
    nets.push_back(*net);
  }
  if (nets.empty()) return Ok();
  SV_ASSIGN_OR_RETURN(std::vector<HostAddress> addresses, host.Addresses());
  for (const HostAddress& a : addresses) {
    if (std::find(p.own_bridges.begin(), p.own_bridges.end(), a.interface) != p.own_bridges.end()) {
      continue;
    }
    auto on_host = ParseNet(a.address, a.prefix);
    if (!on_host) continue;
    for (size_t i = 0; i < nets.size(); ++i) {
      if (!Overlap(nets[i], *on_host)) continue;
      return Fail(p.file, p.networks[i].line, NetworkField(i),
                  p.networks[i].subnet + " overlaps " + a.address + "/" + std::to_string(a.prefix) +
                      " on " + a.interface +
                      ", an address already on this host; choose another subnet");
    }
  }
  return Ok();
}

std::string Endpoint(const BoundPort& b) {
  const bool v6 = b.address.find(':') != std::string::npos;
  return b.protocol + " " + (v6 ? "[" + b.address + "]" : b.address) + ":" + std::to_string(b.port);
}

Status CheckPorts(const ProfileNetworks& p, const HostProbe& host) {
  if (p.ports.empty()) return Ok();
  SV_ASSIGN_OR_RETURN(std::vector<BoundPort> bound, host.BoundPorts());
  for (const ProfilePort& port : p.ports) {
    auto own = p.own_ports.find(port.host);
    if (own != p.own_ports.end() && own->second == port.workload) continue;
    for (const BoundPort& b : bound) {
      if (b.port != port.host) continue;
      return Fail(p.file, port.line, port.field,
                  "host port " + std::to_string(port.host) +
                      " is already bound by another process (" + Endpoint(b) +
                      "); stop it or publish another port (`ss -ltunp 'sport = :" +
                      std::to_string(port.host) + "'` shows which)");
    }
  }
  return Ok();
}

std::string V4FromHex(std::string_view hex) {
  uint32_t raw = static_cast<uint32_t>(std::stoul(std::string(hex), nullptr, 16));
  in_addr a{};
  a.s_addr = raw;  // the kernel prints the address word as it is in memory
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

std::string V6FromHex(std::string_view hex) {
  in6_addr a{};
  for (int w = 0; w < 4; ++w) {
    uint32_t word =
        static_cast<uint32_t>(std::stoul(std::string(hex.substr(w * 8, 8)), nullptr, 16));
    std::memcpy(&a.s6_addr[w * 4], &word, 4);
  }
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET6, &a, buf, sizeof buf);
  return buf;
}

bool IsHex(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

}  // namespace

std::vector<BoundPort> ParseProcNetSockets(std::string_view text, std::string_view protocol) {
  std::vector<BoundPort> out;
  const bool tcp = protocol.substr(0, 3) == "tcp";
  const bool v6 = protocol.size() > 3 && protocol.back() == '6';
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string slot, local, remote, state;
    if (!(fields >> slot >> local >> remote >> state) || slot.empty() || slot.back() != ':') {
      continue;  // the header, or garbage
    }
    const size_t colon = local.find(':');
    if (colon == std::string::npos) continue;
    std::string_view addr = std::string_view(local).substr(0, colon);
    std::string_view port = std::string_view(local).substr(colon + 1);
    if (addr.size() != (v6 ? 32u : 8u) || !IsHex(addr) || port.size() != 4 || !IsHex(port)) {
      continue;
    }
    if (tcp && state != "0A") continue;  // TCP_LISTEN
    BoundPort b;
    b.protocol = std::string(protocol);
    b.address = v6 ? V6FromHex(addr) : V4FromHex(addr);
    b.port = static_cast<int>(std::stoul(std::string(port), nullptr, 16));
    if (b.port != 0) out.push_back(std::move(b));
  }
  return out;
}

Result<std::vector<HostAddress>> SystemHostProbe::Addresses() const {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return ErrnoError("listing the host's addresses");
  std::unique_ptr<ifaddrs, void (*)(ifaddrs*)> guard(list, ::freeifaddrs);
  std::vector<HostAddress> out;
  for (const ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    HostAddress a;
    a.interface = i->ifa_name;
    char buf[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr, buf,
                sizeof buf);
    a.address = buf;
    a.prefix = 32;
    if (i->ifa_netmask != nullptr) {
      const uint32_t m =
          ntohl(reinterpret_cast<const sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr);
      a.prefix = __builtin_popcount(m);
    }
    out.push_back(std::move(a));
  }
  return out;
}

Result<std::vector<BoundPort>> SystemHostProbe::BoundPorts() const {
  std::vector<BoundPort> out;
  for (const char* proto : {"tcp", "tcp6", "udp", "udp6"}) {
    // A file may be missing (no IPv6): nothing bound there.
    auto text = ReadFile(std::string("/proc/net/") + proto, 64u << 20);
    if (!text) continue;
    auto found = ParseProcNetSockets(*text, proto);
    out.insert(out.end(), found.begin(), found.end());
  }
  return out;
}

Status CheckProfileNetworks(const ProfileNetworks& profile, const HostProbe& host) {
  SV_TRY(CheckSubnets(profile, host));
  return CheckPorts(profile, host);
}

}  // namespace storevisor::net
