// Fuzz target: the QMP and guest-agent clients' handling of whatever the other end says.
// The guest agent speaks from inside the guest (untrusted) and QEMU's replies pass through
// the same paths, so the input is written as the peer's bytes on a socketpair and the
// clients run their real calls on it: greeting and capabilities, a command, events; the
// agent's sync, guest-exec and guest-exec-status polling (field types, base64, exit codes).
// The first byte picks the client; the peer's write side is then closed, so every call
// ends at the end of the input (or its short deadline), never hangs.
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/unique_fd.h"
#include "vm/vm.h"

namespace {

using storevisor::UniqueFd;
namespace vm = storevisor::vm;

// The input as the peer's whole stream: written, then the peer stops writing.
bool Feed(std::string_view bytes, UniqueFd* client) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return false;
  UniqueFd peer(sv[1]);
  *client = UniqueFd(sv[0]);
  // Room for the client's own requests too (the peer never reads them).
  int big = 1 << 20;
  ::setsockopt(peer.get(), SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  ::setsockopt(client->get(), SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(peer.get(), bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  ::shutdown(peer.get(), SHUT_WR);
  // The peer's fd closes here: the client reads what was sent, then end of stream.
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0 || size > (256u << 10)) return 0;
  const bool qmp = (data[0] & 1) != 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  UniqueFd fd;
  if (!Feed(rest, &fd)) return 0;
  const vm::Millis short_wait(20);
  if (qmp) {
    auto c = vm::QmpClient::FromFd(std::move(fd), short_wait);
    if (!c) return 0;
    (void)c->Execute("query-status", nlohmann::json::object(), short_wait);
    (void)c->WaitEvent(short_wait);
    (void)c->WaitForEvent("SHUTDOWN", short_wait);
    return 0;
  }
  vm::AgentClient a = vm::AgentClient::FromFd(std::move(fd));
  // Ids are deterministic per client (1, 2, ...), so inputs can answer them.
  (void)a.Sync(short_wait);
  auto r = a.Exec({"/bin/true"}, vm::Millis(50), "input", vm::Millis(1));
  if (r) {
    // Whatever the guest claimed must come back within the client's caps.
    if (r->out.size() > (64u << 20) || r->err.size() > (64u << 20)) __builtin_trap();
  }
  (void)a.Execute("guest-get-osinfo", nlohmann::json::object(), short_wait);
  return 0;
}
