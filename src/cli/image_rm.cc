#include "cli/image_rm.h"

#include <cstdio>
#include <filesystem>

#include "api/client.h"
#include "image/image_cli.h"

namespace storevisor::cli {

namespace {

constexpr const char* kDefaultRoot = "/var/lib/storevisor/images";

// The --root given before the command (as RunImageCli reads it), and where the command starts.
std::string RootOf(const std::vector<std::string>& args, size_t* command) {
  std::string root = kDefaultRoot;
  size_t i = 0;
  while (i < args.size()) {
    if (args[i] == "--root" && i + 1 < args.size()) {
      root = args[i + 1];
      i += 2;
    } else if (args[i].rfind("--root=", 0) == 0) {
      root = args[i].substr(7);
      ++i;
    } else {
      break;
    }
  }
  *command = i;
  return root;
}

std::string SamePath(const std::string& path) {
  std::error_code ec;
  auto canonical = std::filesystem::weakly_canonical(path, ec);
  return ec ? path : canonical.string();
}

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

int Fail(const Error& e) {
  std::fprintf(stderr, "storevisor image: %s\n", e.message().c_str());
  return ExitCodeFor(e.code());
}

}  // namespace

bool IsImageRm(const std::vector<std::string>& args) {
  size_t command = 0;
  (void)RootOf(args, &command);
  return command < args.size() && args[command] == "rm";
}

std::vector<std::string> WorkloadsUsing(const api::ImagesInUse& in_use, const std::string& root,
                                        const std::string& ref) {
  if (SamePath(in_use.image_root) != SamePath(root)) return {};
  for (const auto& use : in_use.images) {
    if (use.image == ref) return use.workloads;
  }
  return {};
}

int ImageRm(const std::string& endpoint, const std::string& bearer,
            const std::vector<std::string>& args) {
  size_t command = 0;
  const std::string root = RootOf(args, &command);
  bool force = false;
  std::vector<std::string> refs;
  for (size_t i = command + 1; i < args.size(); ++i) {
    if (args[i] == "--force" || args[i] == "-f") {
      force = true;
    } else {
      refs.push_back(args[i]);
    }
  }
  if (refs.size() != 1 || refs[0].empty() || refs[0][0] == '-') {
    return Fail(
        Error(ErrorCode::kInvalidArgument, "usage: storevisor image rm [--force] NAME:TAG"));
  }
  auto ref = image::NormalizeRef(refs[0]);
  if (!ref) return Fail(ref.error());
  auto client = api::Client::Create(endpoint, api::ClientOptions{bearer, 10000});
  if (!client) return Fail(client.error());
  auto in_use = client->ImagesInUse();
  if (!in_use && in_use.error().code() == ErrorCode::kUnavailable) {
    // No daemon: no workload runs (a daemon that comes back checks its images at apply).
    std::fprintf(stderr,
                 "storevisor image: note: storevisord is not running (%s): no workload "
                 "can be using %s\n",
                 endpoint.c_str(), ref->c_str());
  } else if (!in_use && !force) {
    return Fail(std::move(in_use).error().Context(
        "cannot ask storevisord which images are in use (--force removes anyway)"));
  } else if (in_use) {
    const std::vector<std::string> users = WorkloadsUsing(*in_use, root, *ref);
    if (!users.empty() && !force) {
      return Fail(Error(ErrorCode::kConflict,
                        *ref + " is in use by workload(s) " + Join(users) +
                            " of the applied profile; apply a profile without it first, or "
                            "--force to remove it anyway"));
    }
    if (!users.empty()) {
      std::fprintf(stderr,
                   "storevisor image: warning: removing %s, which workload(s) %s use: "
                   "their next start, restart or re-creation fails until the image is back\n",
                   ref->c_str(), Join(users).c_str());
    }
  }
  return image::RunImageCli({"--root", root, "rm", *ref});
}

}  // namespace storevisor::cli
