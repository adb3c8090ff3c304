// Isolation and published-port rules through libnftables, in-process.
#include <fcntl.h>
#include <nftables/libnftables.h>

#include <cctype>
#include <cstdio>
#include <memory>
#include <mutex>

#include "common/unique_fd.h"
#include "net/net.h"

namespace storevisor::net {

namespace {

void WriteSysctl(const std::string& path, std::string_view value) {
  auto fd = OpenFile(path, O_WRONLY);
  if (fd) (void)WriteAll(fd->get(), value);
}

struct CtxDeleter {
  void operator()(nft_ctx* c) const { nft_ctx_free(c); }
};

}  // namespace

struct Nftables::Impl {
  std::mutex mu;
  std::unique_ptr<nft_ctx, CtxDeleter> ctx;
};

Nftables::Nftables(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Nftables::Nftables(Nftables&&) noexcept = default;
Nftables& Nftables::operator=(Nftables&&) noexcept = default;
Nftables::~Nftables() = default;

Result<Nftables> Nftables::Open() {
  auto impl = std::make_unique<Impl>();
  impl->ctx.reset(nft_ctx_new(NFT_CTX_DEFAULT));
  if (!impl->ctx) return Error(ErrorCode::kIo, "nftables: no context");
  // Output and errors go to buffers (not the daemon's stdout/stderr), for the caller.
  if (nft_ctx_buffer_output(impl->ctx.get()) != 0 || nft_ctx_buffer_error(impl->ctx.get()) != 0) {
    return Error(ErrorCode::kIo, "nftables: cannot buffer output");
  }
  return Nftables(std::move(impl));
}

Result<std::string> Nftables::Run(const std::string& commands) {
  std::lock_guard lock(impl_->mu);
  nft_ctx* ctx = impl_->ctx.get();
  const int rc = nft_run_cmd_from_buffer(ctx, commands.c_str());
  // Reading a buffer also empties it for the next call.
  const char* out_text = nft_ctx_get_output_buffer(ctx);
  const char* err_text = nft_ctx_get_error_buffer(ctx);
  std::string out = out_text != nullptr ? out_text : "";
  std::string err = err_text != nullptr ? err_text : "";
  if (rc != 0) {
    while (!err.empty() && std::isspace(static_cast<unsigned char>(err.back()))) err.pop_back();
    return Error(ErrorCode::kIo, "nftables: " + err.substr(0, 600));
  }
  return out;
}

Result<std::string> RunNft(const std::string& commands) {
  SV_ASSIGN_OR_RETURN(Nftables nft, Nftables::Open());
  return nft.Run(commands);
}

std::string DefaultTableName(const std::string& state_dir) {
  std::string dir = state_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  uint32_t h = 2166136261u;  // FNV-1a: short, stable across builds and hosts
  for (char c : dir) h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
  char buf[24];
  std::snprintf(buf, sizeof buf, "storevisor-%08x", h);
  return buf;
}

Status CheckTableName(const std::string& table) {
  bool ok = !table.empty() && table.size() <= 64 &&
            std::isalpha(static_cast<unsigned char>(table[0])) != 0;
  for (char c : table) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_');
  }
  if (ok) return Ok();
  return Error(ErrorCode::kInvalidArgument,
               "nftables table name '" + table +
                   "': expected 1 to 64 letters, digits, '-' or '_', starting with a letter");
}

std::string FirewallRules(const std::string& table, const std::vector<FirewallNetwork>& networks,
                          const std::vector<PublishedPort>& ports) {
  std::string r = "table inet " + table +
                  " {\n  chain forward {\n"
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
  r += "  }\n  chain prerouting {\n    type nat hook prerouting priority -100; policy accept;\n";
  for (const auto& p : ports) {
    r += "    tcp dport " + std::to_string(p.host_port) + " dnat ip to " + p.address + ":" +
         std::to_string(p.port) + "\n";
  }
  r += "  }\n  chain output {\n    type nat hook output priority -100; policy accept;\n";
  for (const auto& p : ports) {
    r += "    ip daddr 127.0.0.1 tcp dport " + std::to_string(p.host_port) + " dnat ip to " +
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

Status FlushFirewall(Nftables& nft, const std::string& table) {
  SV_TRY(CheckTableName(table));
  // Declaring the table first makes the delete valid when it does not exist.
  std::string text = "table inet " + table + "\ndelete table inet " + table + "\n";
  if (table == kLegacyTable) text += "table ip storevisor-nat\ndelete table ip storevisor-nat\n";
  auto done = nft.Run(text);
  if (!done) return std::move(done).error();
  return Ok();
}

Status ApplyFirewall(Nftables& nft, const std::string& table,
                     const std::vector<FirewallNetwork>& networks,
                     const std::vector<PublishedPort>& ports) {
  SV_TRY(CheckTableName(table));
  if (networks.empty()) return FlushFirewall(nft, table);
  // One transaction replaces the table: no moment without rules.
  std::string text = "table inet " + table + "\ndelete table inet " + table + "\n";
  // Daemons before one table per daemon kept their NAT rules in a second table.
  if (table == kLegacyTable) text += "table ip storevisor-nat\ndelete table ip storevisor-nat\n";
  auto done = nft.Run(text + FirewallRules(table, networks, ports));
  if (!done) return std::move(done).error();
  // Routing between bridges and DNAT from loopback need these.
  WriteSysctl("/proc/sys/net/ipv4/ip_forward", "1");
  WriteSysctl("/proc/sys/net/ipv4/conf/all/route_localnet", "1");
  for (const auto& n : networks) {
    WriteSysctl("/proc/sys/net/ipv4/conf/" + BridgeName(n.name) + "/route_localnet", "1");
  }
  return Ok();
}

Status ApplyFirewall(const std::string& table, const std::vector<FirewallNetwork>& networks,
                     const std::vector<PublishedPort>& ports) {
  SV_ASSIGN_OR_RETURN(Nftables nft, Nftables::Open());
  return ApplyFirewall(nft, table, networks, ports);
}

Status FlushFirewall(const std::string& table) {
  SV_ASSIGN_OR_RETURN(Nftables nft, Nftables::Open());
  return FlushFirewall(nft, table);
}

std::string FirewallRules(const std::vector<FirewallNetwork>& networks,
                          const std::vector<PublishedPort>& ports) {
  return FirewallRules(kLegacyTable, networks, ports);
}

Status ApplyFirewall(const std::vector<FirewallNetwork>& networks,
                     const std::vector<PublishedPort>& ports) {
  return ApplyFirewall(kLegacyTable, networks, ports);
}

Status FlushFirewall() { return FlushFirewall(kLegacyTable); }

}  // namespace storevisor::net
