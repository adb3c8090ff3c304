// `storevisor image ...` and storevisor-image: the image store's command line.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "common/unique_fd.h"
#include "image/image.h"
#include "image/manifest.h"
#include "image/registry_auth.h"

namespace storevisor::image {
namespace {

constexpr const char* kUsage =
    "usage: storevisor-image [--root DIR] COMMAND\n"
    "  import [--allow-devices] FILE|DIR [NAME:TAG]   OCI layout (dir or tar) or docker-archive "
    "tar\n"
    "  pull [--insecure] [--allow-devices] [--platform OS/ARCH] [--username U]\n"
    "       [--password-stdin] [--authfile F] HOST:PORT/NAME[:TAG]\n"
    "                          from an OCI distribution registry (--insecure: plain HTTP)\n"
    "  build-from-dir [--cmd ARG]... [--env K=V]... [--workdir D] [--user U[:G]] DIR NAME:TAG\n"
    "  ls [--json] | inspect NAME:TAG | rm NAME:TAG | gc\n"
    "  bundle NAME:TAG DIR     make an OCI bundle (overlayfs rootfs + config.json) for the "
    "runtime\n"
    "  unbundle DIR            unmount and remove a bundle\n";

int Fail(const Error& e) {
  std::fprintf(stderr, "storevisor image: %s\n", e.message().c_str());
  return ExitCodeFor(e.code());
}

int Usage(const std::string& why) {
  std::fprintf(stderr, "storevisor image: %s\n%s", why.c_str(), kUsage);
  return ExitCodeFor(ErrorCode::kInvalidArgument);
}

std::function<void(const std::string&)> Progress() {
  // On a terminal each step overwrites one status line; elsewhere one line per step.
  bool tty = ::isatty(2) != 0;
  return [tty](const std::string& line) {
    if (tty) {
      std::fprintf(stderr, "\r\033[K  %s", line.c_str());
    } else {
      std::fprintf(stderr, "  %s\n", line.c_str());
    }
  };
}

void EndProgress() {
  if (::isatty(2)) std::fprintf(stderr, "\r\033[K");
}

std::string Short(const std::string& digest) { return digest.substr(7, 12); }

int CmdImport(Store& store, std::vector<std::string>& a) {
  ImportOptions o;
  o.progress = Progress();
  std::vector<std::string> pos;
  for (const auto& s : a) {
    if (s == "--allow-devices") {
      o.allow_devices = true;
    } else if (!s.empty() && s[0] == '-') {
      return Usage("unknown flag " + s);
    } else {
      pos.push_back(s);
    }
  }
  if (pos.empty() || pos.size() > 2) return Usage("import needs FILE [NAME:TAG]");
  if (pos.size() == 2) o.ref = pos[1];
  auto recs = store.Import(pos[0], o);
  EndProgress();
  if (!recs) return Fail(recs.error());
  for (const auto& r : *recs)
    std::printf("imported %s %s\n", r.ref.c_str(), Short(r.manifest_digest).c_str());
  return 0;
}

std::string Mib(uint64_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(n) / (1024.0 * 1024.0));
  return buf;
}

// Per-blob bytes: a bar redrawn in place on a terminal (at most every 100 ms or 1%),
// plain start/done lines elsewhere.
std::function<void(const PullProgress&)> ByteProgress() {
  struct State {
    std::string digest;
    uint64_t last_done = 0;
    std::chrono::steady_clock::time_point last_draw;
  };
  auto st = std::make_shared<State>();
  bool tty = ::isatty(2) != 0;
  return [tty, st](const PullProgress& p) {
    std::string what =
        p.layer < 0 ? std::string("config")
                    : "layer " + std::to_string(p.layer + 1) + "/" + std::to_string(p.layers);
    what += " " + p.digest.substr(7, 12);
    bool first = st->digest != p.digest;
    bool done = p.done == p.total;
    if (first) {
      st->digest = p.digest;
      st->last_done = 0;
    }
    if (!tty) {
      if (p.cached) {
        std::fprintf(stderr, "  %s: already in the store\n", what.c_str());
      } else if (first) {
        std::fprintf(stderr, "  %s: downloading %s MiB\n", what.c_str(), Mib(p.total).c_str());
      }
      if (done && !p.cached)
        std::fprintf(stderr, "  %s: %s MiB verified\n", what.c_str(), Mib(p.done).c_str());
      return;
    }
    auto now = std::chrono::steady_clock::now();
    bool step = p.total > 0 && (p.done - st->last_done) * 100 >= p.total;
    if (!first && !done && !step && now - st->last_draw < std::chrono::milliseconds(100)) return;
    st->last_draw = now;
    st->last_done = p.done;
    constexpr int kWidth = 30;
    int filled = p.total == 0 ? kWidth : static_cast<int>(p.done * kWidth / p.total);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::fprintf(stderr, "\r\033[K  %s [%s] %s/%s MiB%s", what.c_str(), bar.c_str(),
                 Mib(p.done).c_str(), Mib(p.total).c_str(),
                 p.cached ? " (already in the store)" : "");
    if (done) std::fprintf(stderr, "\n");
  };
}

// Registry credentials, first found wins: --username (+ --password-stdin), the environment
// (STOREVISOR_REGISTRY_USERNAME / STOREVISOR_REGISTRY_PASSWORD), the auth file (--authfile,
// else $REGISTRY_AUTH_FILE; containers-auth.json format) entry for the registry's host.
Status PullCredentials(const std::string& ref, bool password_stdin, std::string authfile,
                       PullOptions& o) {
  if (password_stdin) {
    if (o.username.empty())
      return Error(ErrorCode::kInvalidArgument, "--password-stdin needs --username");
    SV_ASSIGN_OR_RETURN(std::string pw, ReadAll(0, 4096));
    while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
    o.password = pw;
    return Ok();
  }
  if (!o.username.empty()) {
    const char* pw = std::getenv("STOREVISOR_REGISTRY_PASSWORD");
    o.password = pw != nullptr ? pw : "";
    return Ok();
  }
  const char* user = std::getenv("STOREVISOR_REGISTRY_USERNAME");
  if (user != nullptr && *user != '\0') {
    o.username = user;
    const char* pw = std::getenv("STOREVISOR_REGISTRY_PASSWORD");
    o.password = pw != nullptr ? pw : "";
    return Ok();
  }
  if (authfile.empty()) {
    const char* env = std::getenv("REGISTRY_AUTH_FILE");
    if (env == nullptr || *env == '\0') return Ok();
    authfile = env;
  }
  SV_ASSIGN_OR_RETURN(RegistryRef r, ParseRegistryRef(ref));
  std::string host = r.host + (r.port != 0 ? ":" + std::to_string(r.port) : "");
  SV_ASSIGN_OR_RETURN(RegistryCredentials c, CredentialsFromAuthFile(authfile, host));
  o.username = c.username;
  o.password = c.password;
  return Ok();
}

int CmdPull(Store& store, std::vector<std::string>& a) {
  PullOptions o;
  bool password_stdin = false;
  std::string authfile;
  o.progress = [](const std::string& line) { std::fprintf(stderr, "  %s\n", line.c_str()); };
  o.bytes = ByteProgress();
  std::vector<std::string> pos;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == "--insecure") {
      o.insecure = true;
    } else if (a[i] == "--allow-devices") {
      o.allow_devices = true;
    } else if (a[i] == "--username" && i + 1 < a.size()) {
      o.username = a[++i];
    } else if (a[i] == "--password-stdin") {
      password_stdin = true;
    } else if (a[i] == "--authfile" && i + 1 < a.size()) {
      authfile = a[++i];
    } else if (a[i] == "--platform" && i + 1 < a.size()) {
      std::string p = a[++i];
      size_t slash = p.find('/');
      if (slash == std::string::npos || slash == 0 || slash + 1 == p.size())
        return Usage("--platform wants OS/ARCH, e.g. linux/amd64");
      o.os = p.substr(0, slash);
      o.architecture = p.substr(slash + 1);
    } else if (!a[i].empty() && a[i][0] == '-') {
      return Usage("unknown flag " + a[i]);
    } else {
      pos.push_back(a[i]);
    }
  }
  if (pos.size() != 1) return Usage("pull needs HOST:PORT/NAME[:TAG]");
  Status creds = PullCredentials(pos[0], password_stdin, authfile, o);
  if (!creds) return Fail(creds.error());
  auto r = store.Pull(pos[0], o);
  if (!r) return Fail(r.error());
  std::printf("pulled %s %s (%zu layers, %llu bytes)\n", r->ref.c_str(),
              Short(r->manifest_digest).c_str(), r->layers.size(),
              static_cast<unsigned long long>(r->size));
  return 0;
}

int CmdBuild(Store& store, std::vector<std::string>& a) {
  BuildOptions o;
  o.progress = Progress();
  std::vector<std::string> pos, cmd, env;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == "--user" && i + 1 < a.size()) {
      o.user = a[++i];
    } else if ((a[i] == "--cmd" || a[i] == "--env" || a[i] == "--workdir") && i + 1 < a.size()) {
      (a[i] == "--cmd" ? cmd : a[i] == "--env" ? env : pos).push_back(a[i + 1]);
      if (a[i] == "--workdir") {
        o.workdir = pos.back();
        pos.pop_back();
      }
      ++i;
    } else if (!a[i].empty() && a[i][0] == '-') {
      return Usage("unknown flag " + a[i]);
    } else {
      pos.push_back(a[i]);
    }
  }
  if (pos.size() != 2) return Usage("build-from-dir needs DIR NAME:TAG");
  if (!cmd.empty()) o.cmd = cmd;
  for (auto& e : env) o.env.push_back(e);
  auto r = store.BuildFromDir(pos[0], pos[1], o);
  EndProgress();
  if (!r) return Fail(r.error());
  std::printf("built %s %s (%llu bytes)\n", r->ref.c_str(), Short(r->manifest_digest).c_str(),
              static_cast<unsigned long long>(r->size));
  return 0;
}

int CmdLs(Store& store, const std::vector<std::string>& a) {
  auto list = store.List();
  if (!list) return Fail(list.error());
  if (!a.empty() && a[0] == "--json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : *list) {
      out.push_back({{"ref", r.ref},
                     {"manifest", r.manifest_digest},
                     {"config", r.config_digest},
                     {"layers", r.layers},
                     {"size", r.size},
                     {"created", r.created}});
    }
    std::printf("%s\n", out.dump().c_str());
    return 0;
  }
  std::printf("%-40s %-14s %-7s %12s  %s\n", "IMAGE", "MANIFEST", "LAYERS", "SIZE", "CREATED");
  for (const auto& r : *list) {
    std::printf("%-40s %-14s %-7zu %12llu  %s\n", r.ref.c_str(), Short(r.manifest_digest).c_str(),
                r.layers.size(), static_cast<unsigned long long>(r.size), r.created.c_str());
  }
  return 0;
}

}  // namespace

int RunImageCli(const std::vector<std::string>& args_in) {
  std::vector<std::string> args = args_in;
  std::string root = "/var/lib/storevisor/images";
  while (!args.empty() && (args[0] == "--root" || args[0].rfind("--root=", 0) == 0)) {
    if (args[0] == "--root") {
      if (args.size() < 2) return Usage("--root needs a directory");
      root = args[1];
      args.erase(args.begin(), args.begin() + 2);
    } else {
      root = args[0].substr(7);
      args.erase(args.begin());
    }
  }
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    std::printf("%s", kUsage);
    return 0;
  }
  if (!args.empty() && args[0] == "--version") {
    std::printf("storevisor-image %s\n", SV_VERSION);
    return 0;
  }
  if (args.empty()) return Usage("no command");
  Store store(root);
  std::string cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "import") return CmdImport(store, rest);
  if (cmd == "build-from-dir") return CmdBuild(store, rest);
  if (cmd == "pull") return CmdPull(store, rest);
  if (cmd == "ls" || cmd == "list") return CmdLs(store, rest);
  if (cmd == "rm" && rest.size() == 1) {
    Status s = store.Remove(rest[0]);
    return s ? 0 : Fail(s.error());
  }
  if (cmd == "inspect" && rest.size() == 1) {
    auto c = store.ConfigJson(rest[0]);
    if (!c) return Fail(c.error());
    std::printf("%s\n", c->c_str());
    return 0;
  }
  if (cmd == "gc" && rest.empty()) {
    auto r = store.Gc();
    if (!r) return Fail(r.error());
    std::printf("removed %llu blobs and %llu layers, freed %llu bytes\n",
                static_cast<unsigned long long>(r->blobs_removed),
                static_cast<unsigned long long>(r->layers_removed),
                static_cast<unsigned long long>(r->bytes_freed));
    return 0;
  }
  if (cmd == "bundle" && rest.size() == 2) {
    Status s = store.MakeBundle(rest[0], rest[1]);
    return s ? 0 : Fail(s.error());
  }
  if (cmd == "unbundle" && rest.size() == 1) {
    Status s = store.RemoveBundle(rest[0]);
    return s ? 0 : Fail(s.error());
  }
  return Usage("unknown command or wrong arguments: " + cmd);
}

}  // namespace storevisor::image
