// Pulling from OCI distribution registries.
// - RealRegistry: Debian's docker-registry on 127.0.0.1 (own config, temp storage, random
//   port, killed on exit), fed by skopeo from an OCI layout of a busybox image this test
//   builds; pulled through the CLI (plain progress lines), shared layers, an image index
//   (linux/amd64 picked), then bundled and run with storevisor-runtime.
// - HostileRegistry: a cpp-httplib server on 127.0.0.1 that answers a wrong digest, a
//   truncated blob (then resumed with Range), an oversized or malformed manifest, a lying
//   Docker-Content-Digest, an oversized blob, a 401: each refused with nothing in the store.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/child_process.h"
#include "common/files.h"
#include "image/image.h"
#include "image/sha256.h"
#include "image/tar.h"

namespace storevisor::image {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string Bin(const char* name) { return std::string(SV_BINARY_DIR) + "/bin/" + name; }

bool Have(const char* tool) {
  for (const char* dir : {"/usr/bin/", "/usr/sbin/", "/usr/local/bin/"}) {
    if (::access((std::string(dir) + tool).c_str(), X_OK) == 0) return true;
  }
  return false;
}

int FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    return -1;
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string TarOf(const std::vector<std::pair<std::string, std::string>>& files,
                  const std::string& scratch) {
  std::string path = scratch + "/layer.tar";
  {
    auto fd = OpenFile(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    TarWriter w(fd->get());
    for (const auto& [name, body] : files) {
      TarEntry e{name, "", '0', 0644};
      e.size = body.size();
      MemorySource src(body);
      (void)w.Add(e, [&](char* b, size_t n) { return src.Read(b, n); });
    }
    (void)w.Finish();
  }
  return *ReadFile(path, 1u << 30);
}

class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/sv-pull-test-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
    ::chmod(path_.c_str(), 0755);
  }
  ~ScratchDir() {
    if (!path_.empty()) (void)RemoveAll(path_);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

size_t CountEntries(const std::string& dir) {
  if (!fs::exists(dir)) return 0;
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

// ---------------------------------------------------------------------------------------
// Debian's docker-registry, fed with skopeo.

class RealRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED: needs root (overlayfs, chown)";
    for (const char* tool : {"docker-registry", "skopeo"}) {
      if (!Have(tool)) GTEST_SKIP() << "SKIPPED: " << tool << " missing (scripts/deps/image.txt)";
    }
    if (::access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "SKIPPED: busybox-static missing";
    ASSERT_FALSE(dir_.path().empty());
    for (int attempt = 0; attempt < 3 && !registry_; ++attempt) StartRegistry();
    ASSERT_TRUE(registry_.has_value()) << "docker-registry did not come up";
  }

  void StartRegistry() {
    port_ = FreePort();
    std::string storage = dir_.path() + "/registry";
    fs::create_directories(storage);
    std::string config =
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        "    rootdirectory: " +
        storage +
        "\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) + "\n" +
        ExtraConfig();
    ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/registry.yml", config));
    SpawnOptions so;
    so.argv = {"docker-registry", "serve", dir_.path() + "/registry.yml"};
    so.stdout_fd = -1;
    so.stderr_fd = -1;
    so.die_with_parent = true;
    auto child = ChildProcess::Spawn(so);
    ASSERT_TRUE(child.has_value()) << child.error().message();
    httplib::Client probe("127.0.0.1", port_);
    probe.set_connection_timeout(0, 200000);
    for (int i = 0; i < 100; ++i) {
      auto res = probe.Get("/v2/");
      if (res && (res->status == 200 || res->status == 401)) {
        registry_ = std::move(*child);
        return;
      }
      if (child->Wait(std::chrono::milliseconds(100)).has_value()) return;  // died: retry
    }
  }

  // Added to the registry's configuration (an auth section).
  virtual std::string ExtraConfig() const { return ""; }

  std::string Host() const { return "127.0.0.1:" + std::to_string(port_); }

  // An OCI layout (for skopeo) holding the images of `store` named by `tags`.
  std::string ExportLayout(const std::string& store_root,
                           const std::vector<std::pair<std::string, std::string>>& tags) {
    std::string layout = dir_.path() + "/layout";
    fs::create_directories(layout + "/blobs/sha256");
    for (const auto& e : fs::directory_iterator(store_root + "/blobs/sha256")) {
      fs::copy_file(e.path(), layout + "/blobs/sha256/" + e.path().filename().string(),
                    fs::copy_options::overwrite_existing);
    }
    json manifests = json::array();
    Store store(store_root);
    for (const auto& [ref, tag] : tags) {
      auto rec = store.Find(ref);
      EXPECT_TRUE(rec.has_value());
      manifests.push_back(
          {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
           {"digest", rec->manifest_digest},
           {"size", fs::file_size(store_root + "/blobs/sha256/" + rec->manifest_digest.substr(7))},
           {"annotations", {{"org.opencontainers.image.ref.name", tag}}}});
    }
    EXPECT_TRUE(WriteFileAtomic(layout + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
    EXPECT_TRUE(WriteFileAtomic(layout + "/index.json",
                                json{{"schemaVersion", 2}, {"manifests", manifests}}.dump()));
    return layout;
  }

  void Push(const std::string& layout, const std::string& tag, const std::string& dest,
            bool all = false, const std::string& creds = "") {
    std::vector<std::string> argv = {"skopeo", "copy", "--quiet", "--dest-tls-verify=false"};
    if (!creds.empty()) argv.push_back("--dest-creds=" + creds);
    if (all) argv.push_back("--multi-arch=all");
    argv.push_back("oci:" + layout + ":" + tag);
    argv.push_back("docker://" + Host() + "/" + dest);
    auto out = RunCommand(argv, std::chrono::seconds(60));
    ASSERT_TRUE(out.has_value());
    ASSERT_EQ(out->status.exit_code, 0) << out->err;
  }

  std::string BuildBusybox(const std::string& store_root, const std::string& ref,
                           const std::vector<std::string>& cmd) {
    std::string rootfs = dir_.path() + "/rootfs";
    if (!fs::exists(rootfs)) {
      fs::create_directories(rootfs + "/bin");
      for (const char* d : {"proc", "sys", "dev", "tmp", "etc"})
        fs::create_directories(rootfs + "/" + d);
      fs::copy_file("/bin/busybox", rootfs + "/bin/busybox");
      for (const char* app : {"sh", "cat", "echo"})
        fs::create_symlink("busybox", rootfs + "/bin/" + app);
      EXPECT_TRUE(WriteFileAtomic(rootfs + "/etc/motd", "pulled over HTTP\n"));
    }
    BuildOptions o;
    o.cmd = cmd;
    auto rec = Store(store_root).BuildFromDir(rootfs, ref, o);
    EXPECT_TRUE(rec.has_value()) << rec.error().message();
    return rec ? rec->manifest_digest : "";
  }

  ScratchDir dir_;
  int port_ = 0;
  std::optional<ChildProcess> registry_;
};

TEST_F(RealRegistryTest, PullsSharesLayersAndRuns) {
  std::string src = dir_.path() + "/src";
  BuildBusybox(src, "demo/busybox:1", {"/bin/cat", "/etc/motd"});
  BuildBusybox(src, "demo/busybox:2", {"/bin/echo", "second"});
  std::string layout = ExportLayout(src, {{"demo/busybox:1", "one"}, {"demo/busybox:2", "two"}});
  Push(layout, "one", "demo/busybox:1");
  Push(layout, "two", "demo/busybox:2");

  std::string dst = dir_.path() + "/dst";
  auto pull = RunCommand(
      {Bin("storevisor-image"), "--root", dst, "pull", "--insecure", Host() + "/demo/busybox:1"});
  ASSERT_TRUE(pull.has_value());
  ASSERT_EQ(pull->status.exit_code, 0) << pull->err;
  EXPECT_NE(pull->out.find("pulled " + Host() + "/demo/busybox:1"), std::string::npos);
  // Not a terminal: plain progress lines, one per blob event.
  EXPECT_NE(pull->err.find("layer 1/1"), std::string::npos) << pull->err;
  EXPECT_NE(pull->err.find("MiB verified"), std::string::npos) << pull->err;
  EXPECT_EQ(pull->err.find('\r'), std::string::npos);
  EXPECT_EQ(CountEntries(dst + "/layers"), 1u);

  // The second tag has the same layer (same rootfs): it is not downloaded again.
  Store store(dst);
  std::vector<PullProgress> events;
  PullOptions o;
  o.insecure = true;
  o.bytes = [&](const PullProgress& p) { events.push_back(p); };
  auto rec = store.Pull(Host() + "/demo/busybox:2", o);
  ASSERT_TRUE(rec.has_value()) << rec.error().message();
  EXPECT_EQ(CountEntries(dst + "/layers"), 1u);
  bool layer_cached = false;
  for (const auto& e : events) layer_cached |= (e.layer == 0 && e.cached);
  EXPECT_TRUE(layer_cached);
  EXPECT_EQ(CountEntries(dst + "/tmp"), 0u);

  // Without --insecure the client speaks HTTPS, which this plain registry does not.
  auto https = store.Pull(Host() + "/demo/busybox:1", {});
  EXPECT_FALSE(https.has_value());
  // No such tag.
  o.bytes = nullptr;
  auto missing = store.Pull(Host() + "/demo/busybox:nope", o);
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound) << missing.error().message();

  std::string bundle = dir_.path() + "/bundle";
  ASSERT_TRUE(store.MakeBundle(Host() + "/demo/busybox:1", bundle));
  auto run = RunCommand({Bin("storevisor-runtime"), "--root", dir_.path() + "/state", "run",
                         "--bundle", bundle, "pulled1"});
  (void)store.RemoveBundle(bundle);
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->status.exit_code, 0) << run->err;
  EXPECT_EQ(run->out, "pulled over HTTP\n");
}

TEST_F(RealRegistryTest, PicksLinuxAmd64FromAnIndex) {
  std::string src = dir_.path() + "/src";
  std::string amd64 = BuildBusybox(src, "demo/multi:amd64", {"/bin/echo", "amd64"});
  std::string other = BuildBusybox(src, "demo/multi:arm64", {"/bin/echo", "arm64"});
  std::string layout = ExportLayout(src, {});
  auto size_of = [&](const std::string& d) {
    return fs::file_size(layout + "/blobs/sha256/" + d.substr(7));
  };
  json index = {{"schemaVersion", 2},
                {"mediaType", "application/vnd.oci.image.index.v1+json"},
                {"manifests",
                 {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"digest", other},
                   {"size", size_of(other)},
                   {"platform", {{"os", "linux"}, {"architecture", "arm64"}}}},
                  {{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                   {"digest", amd64},
                   {"size", size_of(amd64)},
                   {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}}}}};
  std::string text = index.dump();
  std::string digest = Sha256Of(text);
  ASSERT_TRUE(WriteFileAtomic(layout + "/blobs/sha256/" + digest.substr(7), text));
  json top = {{"schemaVersion", 2},
              {"manifests",
               {{{"mediaType", "application/vnd.oci.image.index.v1+json"},
                 {"digest", digest},
                 {"size", text.size()},
                 {"annotations", {{"org.opencontainers.image.ref.name", "multi"}}}}}}};
  ASSERT_TRUE(WriteFileAtomic(layout + "/index.json", top.dump()));
  Push(layout, "multi", "demo/multi:1", /*all=*/true);

  Store store(dir_.path() + "/dst");
  PullOptions o;
  o.insecure = true;
  auto rec = store.Pull(Host() + "/demo/multi:1", o);
  ASSERT_TRUE(rec.has_value()) << rec.error().message();
  auto cfg = store.ConfigJson(rec->ref);
  ASSERT_TRUE(cfg.has_value());
  EXPECT_NE(cfg->find("\"amd64\"]"), std::string::npos) << *cfg;  // Cmd echo amd64
  o.architecture = "s390x";
  auto none = store.Pull(Host() + "/demo/multi:1", o);
  ASSERT_FALSE(none.has_value());
  EXPECT_NE(none.error().message().find("linux/arm64, linux/amd64"), std::string::npos)
      << none.error().message();
}

// ---------------------------------------------------------------------------------------
// Debian's docker-registry with htpasswd (bcrypt) Basic auth.

class HtpasswdRegistryTest : public RealRegistryTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED: needs root (overlayfs, chown)";
    if (!Have("htpasswd")) GTEST_SKIP() << "SKIPPED: htpasswd missing (apache2-utils)";
    auto line = RunCommand({"htpasswd", "-Bbn", "alice", "s3cret"});
    ASSERT_TRUE(line.has_value());
    ASSERT_EQ(line->status.exit_code, 0) << line->err;
    ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/htpasswd", line->out));
    RealRegistryTest::SetUp();
  }
  std::string ExtraConfig() const override {
    return "auth:\n  htpasswd:\n    realm: storevisor-test\n    path: " + dir_.path() +
           "/htpasswd\n";
  }
  CommandOutput PullCli(const std::string& prefix, const std::string& flags) {
    std::string cmd = prefix + " " + Bin("storevisor-image") + " --root " + dir_.path() +
                      "/dst pull --insecure " + flags + " " + Host() + "/demo/busybox:1";
    auto out = RunCommand({"/bin/sh", "-c", cmd}, std::chrono::seconds(120));
    EXPECT_TRUE(out.has_value());
    return out ? *out : CommandOutput{};
  }
};

TEST_F(HtpasswdRegistryTest, BasicAuthWithCredentialsFromFlagEnvAndFile) {
  std::string src = dir_.path() + "/src";
  BuildBusybox(src, "demo/busybox:1", {"/bin/cat", "/etc/motd"});
  Push(ExportLayout(src, {{"demo/busybox:1", "one"}}), "one", "demo/busybox:1", false,
       "alice:s3cret");
  // No credentials: permission-denied (6), saying how to give them.
  auto anon = PullCli("", "");
  EXPECT_EQ(anon.status.exit_code, 6) << anon.err;
  EXPECT_NE(anon.err.find("wants credentials"), std::string::npos) << anon.err;
  // A wrong password: refused, the user named, the password never printed.
  auto wrong =
      PullCli("STOREVISOR_REGISTRY_USERNAME=alice STOREVISOR_REGISTRY_PASSWORD=hunter2-wrong", "");
  EXPECT_EQ(wrong.status.exit_code, 6) << wrong.err;
  EXPECT_NE(wrong.err.find("refused the credentials of user 'alice'"), std::string::npos)
      << wrong.err;
  EXPECT_EQ(wrong.err.find("hunter2"), std::string::npos) << wrong.err;
  EXPECT_FALSE(fs::exists(dir_.path() + "/dst/index.json") &&
               ReadFile(dir_.path() + "/dst/index.json")->find("busybox") != std::string::npos);
  // --username + --password-stdin.
  auto ok = PullCli("printf 's3cret\\n' |", "--username alice --password-stdin");
  ASSERT_EQ(ok.status.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("pulled " + Host() + "/demo/busybox:1"), std::string::npos) << ok.out;
  EXPECT_EQ(ok.err.find("s3cret"), std::string::npos) << ok.err;
  // An auth file (containers-auth.json), base64 of alice:s3cret, into a fresh store.
  ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/auth.json",
                              R"({"auths":{")" + Host() + R"(":{"auth":"YWxpY2U6czNjcmV0"}}})"));
  (void)RemoveAll(dir_.path() + "/dst");
  auto file = PullCli("", "--authfile " + dir_.path() + "/auth.json");
  EXPECT_EQ(file.status.exit_code, 0) << file.err;
}

// ---------------------------------------------------------------------------------------
// A registry that misbehaves on purpose.

class HostileRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED: needs root (chown while unpacking)";
    ASSERT_FALSE(dir_.path().empty());
    layer_ = TarOf({{"hello.txt", std::string(200000, 'h')}}, dir_.path());
    json cfg = {{"architecture", "amd64"},
                {"os", "linux"},
                {"config", {{"Cmd", {"/bin/true"}}}},
                {"rootfs", {{"type", "layers"}, {"diff_ids", {Sha256Of(layer_)}}}}};
    config_ = cfg.dump();
    manifest_ = ManifestFor(layer_.size());
    server_.Get("/token", [this](const httplib::Request& req, httplib::Response& res) {
      // base64("alice:s3cret"); the scope asked for must be the one the challenge named.
      if (req.get_header_value("Authorization") != "Basic YWxpY2U6czNjcmV0" ||
          req.get_param_value("scope") != "repository:bearer:pull" ||
          req.get_param_value("service") != "hostile") {
        res.status = 401;
        return;
      }
      tokens_issued_++;
      res.set_content(R"({"token":"tok-123","expires_in":300})", "application/json");
    });
    server_.Get(R"(/v2/([a-z/]+)/manifests/(.+))", [this](const httplib::Request& req,
                                                          httplib::Response& res) {
      std::string repo = req.matches[1];
      if (NeedsToken(req, res)) return;
      if (repo == "auth") {
        res.status = 401;
        return;
      }
      if (repo == "huge") {
        res.set_content(std::string(5u << 20, ' ') + manifest_, "application/json");
        return;
      }
      if (repo == "malformed") {
        res.set_content("{\"schemaVersion\": 2, \"config\": ", "application/json");
        return;
      }
      std::string body = repo == "oversize" ? ManifestFor(layer_.size() - 100) : manifest_;
      if (repo == "liar") res.set_header("Docker-Content-Digest", Sha256Of("something else"));
      res.set_content(body, "application/vnd.oci.image.manifest.v1+json");
    });
    server_.Get(R"(/v2/([a-z/]+)/blobs/(sha256:[0-9a-f]+))", [this](const httplib::Request& req,
                                                                    httplib::Response& res) {
      std::string repo = req.matches[1];
      std::string digest = req.matches[2];
      if (NeedsToken(req, res)) return;
      if (digest == Sha256Of(config_)) {
        res.set_content(config_, "application/octet-stream");
        return;
      }
      if (req.has_header("Range")) ranges_seen_++;
      std::string body = layer_;
      if (repo == "wrongdigest") body[body.size() / 2] ^= 1;
      if (repo == "flaky" && !healed_) {
        // Sends half the blob, then drops the connection.
        res.set_content_provider(body.size(), "application/octet-stream",
                                 [body](size_t offset, size_t, httplib::DataSink& sink) {
                                   if (offset >= body.size() / 2) return false;
                                   sink.write(body.data(), body.size() / 2);
                                   return true;
                                 });
        return;
      }
      res.set_content(body, "application/octet-stream");  // httplib answers Range with 206
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  void TearDown() override {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  // Repository "bearer" wants the token of the Bearer flow on every request.
  bool NeedsToken(const httplib::Request& req, httplib::Response& res) const {
    if (std::string(req.matches[1]) != "bearer" ||
        req.get_header_value("Authorization") == "Bearer tok-123") {
      return false;
    }
    res.status = 401;
    res.set_header("WWW-Authenticate",
                   "Bearer realm=\"http://127.0.0.1:" + std::to_string(port_) +
                       "/token\",service=\"hostile\",scope=\"repository:bearer:pull\"");
    return true;
  }

  std::string ManifestFor(uint64_t layer_size) const {
    return json{{"schemaVersion", 2},
                {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                {"config",
                 {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                  {"digest", Sha256Of(config_)},
                  {"size", config_.size()}}},
                {"layers",
                 {{{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                   {"digest", Sha256Of(layer_)},
                   {"size", layer_size}}}}}
        .dump();
  }

  Result<ImageRecord> Pull(const std::string& repo, const std::string& user = "",
                           const std::string& password = "") {
    PullOptions o;
    o.username = user;
    o.password = password;
    o.insecure = true;
    o.timeout_seconds = 5;
    return Store(root()).Pull("127.0.0.1:" + std::to_string(port_) + "/" + repo + ":1", o);
  }
  std::string root() const { return dir_.path() + "/store"; }
  void ExpectNothingStored() {
    auto list = Store(root()).List();
    ASSERT_TRUE(list.has_value());
    EXPECT_TRUE(list->empty());
    EXPECT_EQ(CountEntries(root() + "/layers"), 0u);
    EXPECT_FALSE(fs::exists(root() + "/blobs/sha256/" + Sha256Of(layer_).substr(7)));
  }

  ScratchDir dir_;
  std::string layer_, config_, manifest_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> healed_{false};
  std::atomic<int> ranges_seen_{0};
  std::atomic<int> tokens_issued_{0};
};

TEST_F(HostileRegistryTest, RefusesBadAnswersWithNothingStored) {
  struct Case {
    const char* repo;
    ErrorCode code;
    const char* says;
  };
  for (const Case& c : {Case{"wrongdigest", ErrorCode::kGuestFault, "digest mismatch"},
                        Case{"huge", ErrorCode::kGuestFault, "larger than"},
                        Case{"malformed", ErrorCode::kGuestFault, "not valid JSON"},
                        Case{"liar", ErrorCode::kGuestFault, "Docker-Content-Digest"},
                        Case{"oversize", ErrorCode::kGuestFault, "bytes"},
                        Case{"auth", ErrorCode::kPermissionDenied, "wants credentials"}}) {
    auto r = Pull(c.repo);
    ASSERT_FALSE(r.has_value()) << c.repo;
    EXPECT_EQ(r.error().code(), c.code) << c.repo << ": " << r.error().message();
    EXPECT_NE(r.error().message().find(c.says), std::string::npos)
        << c.repo << ": " << r.error().message();
    ExpectNothingStored();
    // A refused blob leaves no partial download behind either.
    EXPECT_FALSE(fs::exists(root() + "/tmp/pull-" + Sha256Of(layer_).substr(7) + ".partial"))
        << c.repo;
  }
  // The CLI reports a refused image with guest-fault (12).
  auto cli = RunCommand({Bin("storevisor-image"), "--root", root(), "pull", "--insecure",
                         "127.0.0.1:" + std::to_string(port_) + "/wrongdigest:1"});
  ASSERT_TRUE(cli.has_value());
  EXPECT_EQ(cli->status.exit_code, 12) << cli->err;
  EXPECT_NE(cli->err.find("digest mismatch"), std::string::npos) << cli->err;
}

TEST_F(HostileRegistryTest, BearerTokenFlow) {
  auto anon = Pull("bearer");
  ASSERT_FALSE(anon.has_value());
  EXPECT_EQ(anon.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(anon.error().message().find("token server wants credentials"), std::string::npos)
      << anon.error().message();
  auto wrong = Pull("bearer", "alice", "hunter2-wrong");
  ASSERT_FALSE(wrong.has_value());
  EXPECT_EQ(wrong.error().code(), ErrorCode::kPermissionDenied);
  EXPECT_NE(wrong.error().message().find("refused the credentials of user 'alice'"),
            std::string::npos)
      << wrong.error().message();
  EXPECT_EQ(wrong.error().message().find("hunter2"), std::string::npos);
  ExpectNothingStored();
  auto ok = Pull("bearer", "alice", "s3cret");
  ASSERT_TRUE(ok.has_value()) << ok.error().message();
  EXPECT_EQ(tokens_issued_.load(), 1);  // one token served the manifest and both blobs
  // The CLI: a wrong password exits with permission-denied (6).
  auto cli = RunCommand({"/usr/bin/env", "STOREVISOR_REGISTRY_USERNAME=alice",
                         "STOREVISOR_REGISTRY_PASSWORD=hunter2-wrong", Bin("storevisor-image"),
                         "--root", dir_.path() + "/cli", "pull", "--insecure",
                         "127.0.0.1:" + std::to_string(port_) + "/bearer:1"});
  ASSERT_TRUE(cli.has_value());
  EXPECT_EQ(cli->status.exit_code, 6) << cli->err;
  EXPECT_EQ(cli->err.find("hunter2"), std::string::npos) << cli->err;
}

TEST_F(HostileRegistryTest, TruncatedBlobIsRefusedThenResumed) {
  auto r = Pull("flaky");
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("interrupted after"), std::string::npos)
      << r.error().message();
  ExpectNothingStored();
  std::string partial = root() + "/tmp/pull-" + Sha256Of(layer_).substr(7) + ".partial";
  ASSERT_TRUE(fs::exists(partial));
  EXPECT_EQ(fs::file_size(partial), layer_.size() / 2);
  healed_ = true;
  r = Pull("flaky");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(ranges_seen_.load(), 1);  // resumed, not restarted
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_EQ(*ReadFile(root() + "/layers/" + Sha256Of(layer_).substr(7) + "/hello.txt", 1u << 20),
            std::string(200000, 'h'));
}

}  // namespace
}  // namespace storevisor::image
