// The image store end to end: build-from-dir, OCI layout (dir and tar) and docker-archive
// imports, bad images refused with nothing left behind, shared layers, gc, and a bundle
// made from an image run by storevisor-runtime. Needs root (overlayfs) and busybox-static.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/child_process.h"
#include "common/files.h"
#include "image/image.h"
#include "image/tar.h"

namespace storevisor::image {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string Sha(const std::string& data) {
  unsigned char md[32];
  unsigned len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string out = "sha256:";
  for (unsigned i = 0; i < len; ++i) {
    char b[3];
    std::snprintf(b, sizeof b, "%02x", md[i]);
    out += b;
  }
  return out;
}

// A tar of arbitrary entries (links, devices, odd paths) as a hostile image would carry.
std::string TarOfEntries(const std::vector<TarEntry>& entries, const std::string& scratch) {
  std::string path = scratch + "/e.tar";
  {
    auto fd = OpenFile(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    TarWriter w(fd->get());
    for (const auto& e : entries) (void)w.Add(e);
    (void)w.Finish();
  }
  return *ReadFile(path, 1u << 30);
}

std::string TarOf(const std::vector<std::pair<std::string, std::string>>& files,
                  const std::string& scratch) {
  std::string path = scratch + "/t.tar";
  {
    auto fd = OpenFile(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    TarWriter w(fd->get());
    for (const auto& [name, body] : files) {
      TarEntry e{name, "", '0', 0755};
      e.size = body.size();
      MemorySource src(body);
      (void)w.Add(e, [&](char* b, size_t n) { return src.Read(b, n); });
    }
    (void)w.Finish();
  }
  return *ReadFile(path, 1u << 30);
}

class ImageStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED: needs root (overlayfs, chown)";
    if (::access("/bin/busybox", X_OK) != 0) GTEST_SKIP() << "SKIPPED: busybox-static missing";
    char tmpl[] = "/tmp/sv-image-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::chmod(tmpl, 0755);
    store_root_ = dir_ + "/store";
    rootfs_ = dir_ + "/rootfs";
    fs::create_directories(rootfs_ + "/bin");
    for (const char* d : {"proc", "sys", "dev", "tmp", "etc"})
      fs::create_directories(rootfs_ + "/" + d);
    fs::copy_file("/bin/busybox", rootfs_ + "/bin/busybox");
    for (const char* app : {"sh", "cat", "echo", "ls"})
      fs::create_symlink("busybox", rootfs_ + "/bin/" + app);
    ASSERT_TRUE(WriteFileAtomic(rootfs_ + "/etc/motd", "hello from the image\n"));
  }
  void TearDown() override {
    if (dir_.empty()) return;
    (void)Store(store_root_).RemoveBundle(dir_ + "/bundle");
    (void)RemoveAll(dir_);
  }

  size_t Count(const std::string& sub) const {
    if (!fs::exists(store_root_ + "/" + sub)) return 0;
    return static_cast<size_t>(
        std::distance(fs::directory_iterator(store_root_ + "/" + sub), fs::directory_iterator()));
  }

  // An OCI image layout directory with one uncompressed layer holding `files`.
  std::string MakeOciLayout(const std::string& name,
                            const std::vector<std::pair<std::string, std::string>>& files,
                            const std::string& ref) {
    return MakeOciLayoutOfLayer(name, TarOf(files, dir_), ref);
  }

  // The same around a layer blob given as is.
  std::string MakeOciLayoutOfLayer(const std::string& name, const std::string& layer,
                                   const std::string& ref) {
    std::string layout = dir_ + "/" + name;
    fs::create_directories(layout + "/blobs/sha256");
    json cfg = {{"architecture", "amd64"},
                {"os", "linux"},
                {"config", {{"Cmd", {"/bin/cat", "/etc/motd"}}}},
                {"rootfs", {{"type", "layers"}, {"diff_ids", {Sha(layer)}}}}};
    std::string cfg_text = cfg.dump();
    json m = {{"schemaVersion", 2},
              {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
              {"config",
               {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                {"digest", Sha(cfg_text)},
                {"size", cfg_text.size()}}},
              {"layers",
               {{{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                 {"digest", Sha(layer)},
                 {"size", layer.size()}}}}};
    std::string m_text = m.dump();
    for (const auto& blob : {layer, cfg_text, m_text}) {
      EXPECT_TRUE(WriteFileAtomic(layout + "/blobs/sha256/" + Sha(blob).substr(7), blob));
    }
    json index = {{"schemaVersion", 2},
                  {"manifests",
                   {{{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                     {"digest", Sha(m_text)},
                     {"size", m_text.size()},
                     {"annotations", {{"org.opencontainers.image.ref.name", ref}}}}}}};
    EXPECT_TRUE(WriteFileAtomic(layout + "/index.json", index.dump()));
    EXPECT_TRUE(WriteFileAtomic(layout + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
    last_layer_digest_ = Sha(layer);
    return layout;
  }

  std::string PackDir(const std::string& src, const std::string& out) {
    auto fd = OpenFile(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    TarWriter w(fd->get());
    std::vector<fs::path> paths;
    for (const auto& e : fs::recursive_directory_iterator(src)) paths.push_back(e.path());
    std::sort(paths.begin(), paths.end());
    for (const auto& p : paths) {
      std::string rel = p.lexically_relative(src).string();
      if (fs::is_directory(p)) {
        TarEntry e{rel + "/", "", '5', 0755};
        (void)w.Add(e);
      } else {
        std::string body = *ReadFile(p.string(), 1u << 30);
        TarEntry e{rel, "", '0', 0644};
        e.size = body.size();
        MemorySource s(body);
        (void)w.Add(e, [&](char* b, size_t n) { return s.Read(b, n); });
      }
    }
    (void)w.Finish();
    return out;
  }

  std::string dir_, store_root_, rootfs_, last_layer_digest_;
};

TEST_F(ImageStoreTest, BuildBundleAndRunWithTheRuntime) {
  Store store(store_root_);
  BuildOptions o;
  o.cmd = {"/bin/sh", "-c", "cat /etc/motd; echo written > /tmp/w; hostname"};
  auto rec = store.BuildFromDir(rootfs_, "demo/busybox:1", o);
  ASSERT_TRUE(rec.has_value()) << rec.error().message();
  EXPECT_EQ(rec->layers.size(), 1u);
  auto list = store.List();
  ASSERT_TRUE(list.has_value());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ(list->at(0).ref, "demo/busybox:1");

  std::string bundle = dir_ + "/bundle";
  Status b = store.MakeBundle("demo/busybox:1", bundle);
  ASSERT_TRUE(b) << b.error().message();
  auto out = RunCommand({std::string(SV_BINARY_DIR) + "/bin/storevisor-runtime", "--root",
                         dir_ + "/state", "run", "--bundle", bundle, "img1"});
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->status.exit_code, 0) << out->err;
  EXPECT_EQ(out->out, "hello from the image\nbusybox\n") << out->err;
  // Writes land in the bundle's upper layer, never in the shared layer.
  EXPECT_TRUE(fs::exists(bundle + "/upper/tmp/w"));
  EXPECT_FALSE(fs::exists(store_root_ + "/layers/" + rec->layers[0].substr(7) + "/tmp/w"));
  ASSERT_TRUE(store.RemoveBundle(bundle));
  EXPECT_FALSE(fs::exists(bundle));
}

TEST_F(ImageStoreTest, ImportsOciLayoutDirAndTarSharingLayersThenGc) {
  Store store(store_root_);
  std::string layout = MakeOciLayout("oci", {{"hello.txt", "hi"}}, "demo/oci:v1");
  auto recs = store.Import(layout, {});
  ASSERT_TRUE(recs.has_value()) << recs.error().message();
  EXPECT_EQ(recs->at(0).ref, "demo/oci:v1");
  EXPECT_EQ(*ReadFile(store_root_ + "/layers/" + last_layer_digest_.substr(7) + "/hello.txt"),
            "hi");
  // The same layout as a tar, named differently by the caller: the layer is shared.
  std::string tarfile = PackDir(layout, dir_ + "/oci.tar");
  json index = json::parse(*ReadFile(layout + "/index.json"));
  ImportOptions o;
  recs = store.Import(tarfile, o);
  ASSERT_TRUE(recs.has_value()) << recs.error().message();
  EXPECT_EQ(Count("layers"), 1u);
  ASSERT_TRUE(store.BuildFromDir(rootfs_, "demo/other", {}).has_value());
  EXPECT_EQ(Count("layers"), 2u);
  ASSERT_TRUE(store.Remove("demo/oci:v1"));
  auto gc = store.Gc();
  ASSERT_TRUE(gc.has_value());
  EXPECT_EQ(gc->blobs_removed, 3u);
  EXPECT_EQ(gc->layers_removed, 1u);
  EXPECT_EQ(Count("layers"), 1u);
  EXPECT_FALSE(store.Remove("demo/oci:v1"));
}

TEST_F(ImageStoreTest, ImportsDockerArchive) {
  std::string layer = TarOf({{"etc/motd", "docker!"}}, dir_);
  json cfg = {{"architecture", "amd64"},
              {"os", "linux"},
              {"rootfs", {{"type", "layers"}, {"diff_ids", {Sha(layer)}}}}};
  std::string cfg_text = cfg.dump();
  std::string src = dir_ + "/docker";
  fs::create_directories(src + "/abc");
  ASSERT_TRUE(WriteFileAtomic(src + "/abc/layer.tar", layer));
  ASSERT_TRUE(WriteFileAtomic(src + "/" + Sha(cfg_text).substr(7) + ".json", cfg_text));
  json manifest = {{{"Config", Sha(cfg_text).substr(7) + ".json"},
                    {"RepoTags", {"docker/demo:2"}},
                    {"Layers", {"abc/layer.tar"}}}};
  ASSERT_TRUE(WriteFileAtomic(src + "/manifest.json", manifest.dump()));
  std::string archive = PackDir(src, dir_ + "/docker.tar");
  Store store(store_root_);
  auto recs = store.Import(archive, {});
  ASSERT_TRUE(recs.has_value()) << recs.error().message();
  EXPECT_EQ(recs->at(0).ref, "docker/demo:2");
  EXPECT_EQ(*ReadFile(store_root_ + "/layers/" + Sha(layer).substr(7) + "/etc/motd"), "docker!");
  // A layer that does not match its diff_id is refused.
  ASSERT_TRUE(WriteFileAtomic(src + "/abc/layer.tar", TarOf({{"etc/motd", "tampered"}}, dir_)));
  ASSERT_TRUE(store.Remove("docker/demo:2"));
  ASSERT_TRUE(store.Gc().has_value());
  auto bad = store.Import(PackDir(src, dir_ + "/docker2.tar"), {});
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("digest mismatch"), std::string::npos)
      << bad.error().message();
}

TEST_F(ImageStoreTest, BadImagesAreRefusedWithNothingHalfWritten) {
  Store store(store_root_);
  // Tampered layer blob: digest mismatch.
  std::string layout = MakeOciLayout("tampered", {{"a", "1"}}, "bad/tampered:1");
  ASSERT_TRUE(
      WriteFileAtomic(layout + "/blobs/sha256/" + last_layer_digest_.substr(7), "not the layer"));
  auto r = store.Import(layout, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("digest mismatch"), std::string::npos) << r.error().message();
  // A layer with a path escape, one with a device node, one truncated.
  struct Case {
    std::vector<std::pair<std::string, std::string>> files;
    const char* expect;
  };
  std::string escape_layout = MakeOciLayout("escape", {{"../../escape", "x"}}, "bad/escape:1");
  r = store.Import(escape_layout, {});
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("escapes"), std::string::npos) << r.error().message();
  // Truncate the layer and fix up the descriptors so only the tar itself is wrong.
  std::string trunc_layout =
      MakeOciLayout("trunc", {{"big", std::string(5000, 'b')}}, "bad/trunc:1");
  std::string layer = *ReadFile(trunc_layout + "/blobs/sha256/" + last_layer_digest_.substr(7));
  std::string cut = layer.substr(0, 3000);
  fs::remove_all(trunc_layout);
  fs::create_directories(trunc_layout + "/blobs/sha256");
  json cfg = {{"rootfs", {{"type", "layers"}, {"diff_ids", {Sha(cut)}}}}};
  std::string cfg_text = cfg.dump();
  json m = {{"schemaVersion", 2},
            {"config", {{"digest", Sha(cfg_text)}, {"size", cfg_text.size()}}},
            {"layers",
             {{{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
               {"digest", Sha(cut)},
               {"size", cut.size()}}}}};
  for (const auto& blob : {cut, cfg_text, m.dump()}) {
    ASSERT_TRUE(WriteFileAtomic(trunc_layout + "/blobs/sha256/" + Sha(blob).substr(7), blob));
  }
  json index = {{"manifests",
                 {{{"digest", Sha(m.dump())},
                   {"size", m.dump().size()},
                   {"annotations", {{"org.opencontainers.image.ref.name", "bad/trunc:1"}}}}}}};
  ASSERT_TRUE(WriteFileAtomic(trunc_layout + "/index.json", index.dump()));
  ASSERT_TRUE(WriteFileAtomic(trunc_layout + "/oci-layout", R"({"imageLayoutVersion":"1.0.0"})"));
  r = store.Import(trunc_layout, {});
  ASSERT_FALSE(r.has_value()) << r->at(0).ref << " " << cut.size() << " " << r->at(0).layers.at(0);
  EXPECT_NE(r.error().message().find("truncated"), std::string::npos) << r.error().message();
  // Links and nodes that point out of the root, and an absolute path, through Import.
  struct Hostile {
    const char* name;
    std::vector<TarEntry> entries;
    const char* expect;
  };
  const std::vector<Hostile> hostile = {
      {"symlink-out", {TarEntry{"up", "../../../../etc", '2', 0777}}, "escapes"},
      {"hardlink-out", {TarEntry{"pw", "../../etc/passwd", '1', 0644}}, "escape"},
      {"hardlink-missing", {TarEntry{"pw", "etc/shadow", '1', 0644}}, "not in this layer"},
      {"device", {TarEntry{"dev/sda", "", '4', 0600, 0, 0, 0, 0, 8, 0}}, "device node"},
      {"absolute", {TarEntry{"/tmp/sv-image-test-absolute", "", '0', 0644}}, "absolute"},
  };
  for (const auto& h : hostile) {
    std::string l = MakeOciLayoutOfLayer(h.name, TarOfEntries(h.entries, dir_),
                                         std::string("bad/") + h.name + ":1");
    r = store.Import(l, {});
    ASSERT_FALSE(r.has_value()) << h.name;
    EXPECT_NE(r.error().message().find(h.expect), std::string::npos)
        << h.name << ": " << r.error().message();
  }
  EXPECT_FALSE(fs::exists("/tmp/sv-image-test-absolute"));
  // None of them reached the index or left a layer behind.
  auto list = store.List();
  ASSERT_TRUE(list.has_value());
  EXPECT_TRUE(list->empty());
  EXPECT_EQ(Count("layers"), 0u);
  EXPECT_FALSE(fs::exists(store_root_ + "/escape"));
  EXPECT_FALSE(fs::exists(store_root_ + "/tmp/escape"));
  // A CLI error names the problem and exits with guest-fault (12).
  auto cli = RunCommand({std::string(SV_BINARY_DIR) + "/bin/storevisor-image", "--root",
                         store_root_, "import", layout});
  ASSERT_TRUE(cli.has_value());
  EXPECT_EQ(cli->status.exit_code, 12) << cli->err;
  EXPECT_NE(cli->err.find("digest mismatch"), std::string::npos);
}

}  // namespace
}  // namespace storevisor::image

namespace storevisor::image {
namespace {

TEST_F(ImageStoreTest, NamedUserIsResolvedThroughTheImagesPasswd) {
  ASSERT_TRUE(WriteFileAtomic(rootfs_ + "/etc/passwd",
                              "root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345::/:/bin/false\n"));
  ASSERT_TRUE(WriteFileAtomic(rootfs_ + "/etc/group", "appgrp:x:2345:\nstaff:x:3000:app\n"));
  Store store(store_root_);
  BuildOptions o;
  o.cmd = {"/bin/busybox", "id"};
  o.user = "app";
  ASSERT_TRUE(store.BuildFromDir(rootfs_, "demo/user:1", o).has_value());
  std::string bundle = dir_ + "/bundle";
  Status b = store.MakeBundle("demo/user:1", bundle);
  ASSERT_TRUE(b) << b.error().message();
  auto out = RunCommand({std::string(SV_BINARY_DIR) + "/bin/storevisor-runtime", "--root",
                         dir_ + "/state", "run", "--bundle", bundle, "user1"});
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->status.exit_code, 0) << out->err;
  EXPECT_NE(out->out.find("uid=1234"), std::string::npos) << out->out;
  EXPECT_NE(out->out.find("gid=2345"), std::string::npos) << out->out;
  EXPECT_NE(out->out.find("3000"), std::string::npos) << out->out;
  ASSERT_TRUE(store.RemoveBundle(bundle));
  // A user the image does not know is refused, and nothing stays mounted.
  o.user = "ghost";
  ASSERT_TRUE(store.BuildFromDir(rootfs_, "demo/user:2", o).has_value());
  b = store.MakeBundle("demo/user:2", bundle);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message().find("ghost"), std::string::npos) << b.error().message();
  auto mounts = ReadFile("/proc/self/mountinfo");
  EXPECT_EQ(mounts->find(bundle), std::string::npos);
}

}  // namespace
}  // namespace storevisor::image
