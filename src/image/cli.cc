// `storevisor image ...` and storevisor-image: the image store's command line.
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "image/image.h"

namespace storevisor::image {
namespace {

constexpr const char* kUsage =
    "usage: storevisor-image [--root DIR] COMMAND\n"
    "  import [--allow-devices] FILE|DIR [NAME:TAG]   OCI layout (dir or tar) or docker-archive "
    "tar\n"
    "  build-from-dir [--cmd ARG]... [--env K=V]... [--workdir D] DIR NAME:TAG\n"
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

int CmdBuild(Store& store, std::vector<std::string>& a) {
  BuildOptions o;
  o.progress = Progress();
  std::vector<std::string> pos, cmd, env;
  for (size_t i = 0; i < a.size(); ++i) {
    if ((a[i] == "--cmd" || a[i] == "--env" || a[i] == "--workdir") && i + 1 < a.size()) {
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
  if (args.empty() || args[0] == "--help" || args[0] == "-h") return Usage("no command");
  Store store(root);
  std::string cmd = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "import") return CmdImport(store, rest);
  if (cmd == "build-from-dir") return CmdBuild(store, rest);
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
