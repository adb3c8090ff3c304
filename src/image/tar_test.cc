// The tar reader and layer unpacker against good and crafted bad archives.
#include "image/tar.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "common/files.h"
#include "image/image.h"

namespace storevisor::image {
namespace {

namespace fs = std::filesystem;

// One raw ustar header block (checksum computed), for crafting archives by hand.
std::string Block(const std::string& path, char type, uint64_t size, const std::string& link = "",
                  int mode = 0644) {
  char h[512] = {};
  std::strncpy(h, path.c_str(), 99);
  std::snprintf(h + 100, 8, "%07o", mode);
  std::snprintf(h + 108, 8, "%07o", 0);
  std::snprintf(h + 116, 8, "%07o", 0);
  std::snprintf(h + 124, 12, "%011llo", static_cast<unsigned long long>(size));
  std::snprintf(h + 136, 12, "%011o", 0);
  h[156] = type;
  std::strncpy(h + 157, link.c_str(), 99);
  const std::string_view magic(
      "ustar\0"
      "00",
      8);  // magic "ustar\0", version "00"
  std::copy(magic.begin(), magic.end(), h + 257);
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (char c : h) sum += static_cast<unsigned char>(c);
  std::snprintf(h + 148, 8, "%06o", sum);
  return std::string(h, 512);
}

std::string File(const std::string& path, const std::string& data, char type = '0') {
  std::string s = Block(path, type, data.size()) + data;
  s.append((512 - data.size() % 512) % 512, '\0');
  return s;
}

std::string End() { return std::string(1024, '\0'); }

class UnpackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sv-unpack-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    dest_ = base_ + "/root/layer";
    fs::create_directories(dest_);
  }
  void TearDown() override { (void)RemoveAll(base_); }

  Status Unpack(const std::string& tar, bool devices = false) {
    MemorySource src(tar);
    UnpackOptions o;
    o.allow_devices = devices;
    auto r = UnpackLayer(src, dest_, o);
    if (!r) return r.error();
    return Ok();
  }
  // Nothing may ever appear next to the layer directory.
  bool OutsideTouched() const {
    for (const auto& e : fs::directory_iterator(base_ + "/root")) {
      if (e.path().filename() != "layer") return true;
    }
    return fs::exists(base_ + "/evil") || fs::exists("/tmp/evil-sv-test");
  }

  std::string base_, dest_;
};

TEST_F(UnpackTest, GoodArchiveRoundTripsThroughTheWriter) {
  std::string tarfile = base_ + "/good.tar";
  {
    auto fd = OpenFile(tarfile, O_WRONLY | O_CREAT, 0600);
    ASSERT_TRUE(fd.has_value());
    TarWriter w(fd->get());
    TarEntry d{"bin/", "", '5', 0755};
    ASSERT_TRUE(w.Add(d));
    std::string body = "hello world";
    TarEntry f{"bin/hello.txt", "", '0', 0640};
    f.size = body.size();
    MemorySource src(body);
    ASSERT_TRUE(w.Add(f, [&](char* b, size_t n) { return src.Read(b, n); }));
    TarEntry l{"bin/sh", "/bin/busybox", '2', 0777};
    ASSERT_TRUE(w.Add(l));
    TarEntry h{"bin/hello-link", "bin/hello.txt", '1', 0640};
    ASSERT_TRUE(w.Add(h));
    std::string long_name = "deep/" + std::string(150, 'x');
    TarEntry ld{"deep/", "", '5', 0755};
    ASSERT_TRUE(w.Add(ld));
    TarEntry lf{long_name, "", '0', 0600};
    ASSERT_TRUE(w.Add(lf));
    ASSERT_TRUE(w.Finish());
  }
  auto text = ReadFile(tarfile);
  ASSERT_TRUE(text.has_value());
  Status s = Unpack(*text);
  ASSERT_TRUE(s) << s.error().message();
  EXPECT_EQ(*ReadFile(dest_ + "/bin/hello.txt"), "hello world");
  EXPECT_EQ(fs::read_symlink(dest_ + "/bin/sh"), "/bin/busybox");
  EXPECT_EQ(fs::hard_link_count(dest_ + "/bin/hello.txt"), 2u);
  EXPECT_EQ(fs::status(dest_ + "/bin/hello.txt").permissions(), fs::perms(0640));
  EXPECT_TRUE(fs::exists(dest_ + "/deep/" + std::string(150, 'x')));
}

TEST_F(UnpackTest, GzipLayersAreInflated) {
  std::string tar = File("a.txt", "gz!") + End();
  uLongf len = compressBound(tar.size()) + 64;
  std::string gz(len, '\0');
  z_stream z{};
  ASSERT_EQ(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(tar.data());
  z.avail_in = static_cast<uInt>(tar.size());
  z.next_out = reinterpret_cast<Bytef*>(gz.data());
  z.avail_out = static_cast<uInt>(gz.size());
  ASSERT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  gz.resize(z.total_out);
  deflateEnd(&z);
  ASSERT_TRUE(Unpack(gz));
  EXPECT_EQ(*ReadFile(dest_ + "/a.txt"), "gz!");
  std::string corrupt = gz;
  corrupt[corrupt.size() / 2] ^= 0x55;
  corrupt.resize(corrupt.size() - 4);
  EXPECT_FALSE(Unpack(corrupt));
}

TEST_F(UnpackTest, PathEscapesAreRefused) {
  Status s = Unpack(File("../evil", "x") + End());
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("'..'"), std::string::npos) << s.error().message();
  s = Unpack(File("/tmp/evil-sv-test", "x") + End());
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("absolute"), std::string::npos);
  s = Unpack(File("a/../../evil", "x") + End());
  EXPECT_FALSE(s);
  EXPECT_FALSE(OutsideTouched());
}

TEST_F(UnpackTest, EscapingSymlinksAndHardlinksAreRefused) {
  Status s = Unpack(Block("up", '2', 0, "../../../evil") + End());
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("escapes"), std::string::npos) << s.error().message();
  // An absolute symlink is fine (it resolves in the container's root)...
  ASSERT_TRUE(Unpack(Block("abs", '2', 0, "/") + End()));
  // ...and writing through it stays inside the layer.
  Status through = Unpack(Block("abs", '2', 0, "/") + File("abs/evil", "x") + End());
  EXPECT_FALSE(OutsideTouched());
  if (through) {
    EXPECT_TRUE(fs::exists(dest_ + "/evil"));
  }
  s = Unpack(Block("hl", '1', 0, "../../etc/passwd") + End());
  ASSERT_FALSE(s);
  s = Unpack(Block("hl2", '1', 0, "does/not/exist") + End());
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("not in this layer"), std::string::npos);
  EXPECT_FALSE(OutsideTouched());
}

TEST_F(UnpackTest, DeviceNodesNeedPermission) {
  std::string dev = Block("dev/sda", '4', 0);
  Status s = Unpack(dev + End());
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("device node"), std::string::npos);
  EXPECT_FALSE(fs::exists(dest_ + "/dev/sda"));
  if (::geteuid() == 0) {
    EXPECT_TRUE(Unpack(dev + End(), true));
  }
}

TEST_F(UnpackTest, TruncatedAndCorruptArchivesAreRefused) {
  std::string good = File("f", std::string(2000, 'a')) + End();
  for (size_t cut : {size_t{100}, size_t{512}, size_t{1500}, good.size() - 1024}) {
    Status s = Unpack(good.substr(0, cut));
    EXPECT_FALSE(s) << "cut at " << cut;
    if (!s) {
      EXPECT_NE(s.error().message().find("truncated"), std::string::npos) << s.error().message();
    }
  }
  std::string bad = good;
  bad[10] ^= 1;  // header byte: checksum no longer matches
  Status s = Unpack(bad);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("checksum"), std::string::npos);
  std::string huge = Block("f", '0', 0);
  std::memcpy(huge.data() + 124, "77777777777", 11);
  std::memset(huge.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (char c : huge) sum += static_cast<unsigned char>(c);
  std::snprintf(huge.data() + 148, 8, "%06o", sum);
  EXPECT_FALSE(Unpack(huge + End()));
  EXPECT_FALSE(Unpack(std::string(300, 'z')));
  std::string pax = File("PaxHeader", "99999 path=x\n", 'x') + File("f", "") + End();
  EXPECT_FALSE(Unpack(pax));
}

TEST_F(UnpackTest, WhiteoutsAndOpaqueDirectories) {
  if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED: whiteouts need mknod (root)";
  Status s = Unpack(Block("etc/", '5', 0, "", 0755) + File("etc/.wh.passwd", "") +
                    File("var/.wh..wh..opq", "") + End());
  ASSERT_TRUE(s) << s.error().message();
  struct stat st {};
  ASSERT_EQ(::lstat((dest_ + "/etc/passwd").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  char v[4] = {};
  EXPECT_EQ(::getxattr((dest_ + "/var").c_str(), "trusted.overlay.opaque", v, sizeof v), 1);
  EXPECT_EQ(v[0], 'y');
}

TEST(RefTest, Normalizes) {
  EXPECT_EQ(*NormalizeRef("busybox"), "busybox:latest");
  EXPECT_EQ(*NormalizeRef("localhost:5000/demo/x"), "localhost:5000/demo/x:latest");
  EXPECT_EQ(*NormalizeRef("a/b:v1"), "a/b:v1");
  EXPECT_FALSE(NormalizeRef("").has_value());
  EXPECT_FALSE(NormalizeRef("../x").has_value());
  EXPECT_FALSE(NormalizeRef("a b").has_value());
  EXPECT_FALSE(NormalizeRef("x:").has_value());
}

}  // namespace
}  // namespace storevisor::image

namespace storevisor::image {
namespace {

std::string Pax(const std::string& key, const std::string& value) {
  std::string body = " " + key + "=" + value + "\n";
  size_t len = body.size() + 1;
  while (std::to_string(len).size() + body.size() != len) ++len;
  return std::to_string(len) + body;
}

TEST_F(UnpackTest, PaxLongNamesSizesOwnersAndXattrs) {
  std::string long_name = "a/" + std::string(200, 'n');
  std::string records = Pax("path", long_name) + Pax("size", "5") + Pax("uid", "70000") +
                        Pax("gid", "70001") + Pax("mtime", "1700000000.25") +
                        Pax("SCHILY.xattr.user.note", "hello\nworld") +
                        Pax("SCHILY.xattr.security.selinux", "system_u:object_r:x");
  // The header's own size field says 0: the PAX record wins.
  std::string tar = Block("a/", '5', 0, "", 0755) + File("PaxHeader", records, 'x') +
                    Block("short", '0', 0) + std::string("abcde") + std::string(507, '\0') + End();
  MemorySource src(tar);
  TarReader reader(src);
  auto dir = reader.Next();
  ASSERT_TRUE(dir.has_value() && dir->has_value());
  auto e = reader.Next();
  ASSERT_TRUE(e.has_value()) << e.error().message();
  ASSERT_TRUE(e->has_value());
  EXPECT_EQ((*e)->path, long_name);
  EXPECT_EQ((*e)->size, 5u);
  EXPECT_EQ((*e)->uid, 70000u);
  EXPECT_EQ((*e)->gid, 70001u);
  EXPECT_EQ((*e)->mtime, 1700000000);
  ASSERT_EQ((*e)->xattrs.size(), 2u);
  EXPECT_EQ((*e)->xattrs[0].second, "hello\nworld");
  if (::geteuid() != 0) GTEST_SKIP() << "SKIPPED: unpacking with owners needs root";
  Status s = Unpack(tar);
  ASSERT_TRUE(s) << s.error().message();
  std::string file = dest_ + "/" + long_name;
  EXPECT_EQ(*ReadFile(file), "abcde");
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 70000u);
  char v[32] = {};
  ASSERT_EQ(::getxattr(file.c_str(), "user.note", v, sizeof v), 11) << std::strerror(errno);
  EXPECT_EQ(std::string(v, 11), "hello\nworld");
  // Skipped namespace: not applied (and not an error).
  EXPECT_LT(::getxattr(file.c_str(), "security.selinux", v, sizeof v), 0);
}

TEST_F(UnpackTest, NastyPaxRecordsAreRefused) {
  auto with = [](const std::string& records) {
    return File("PaxHeader", records, 'x') + File("f", "x") + End();
  };
  // overlayfs metadata may only come from whiteout entries.
  Status s = Unpack(with(Pax("SCHILY.xattr.trusted.overlay.opaque", "y")));
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("reserved"), std::string::npos) << s.error().message();
  std::string many;
  for (int i = 0; i < 129; ++i) many += Pax("SCHILY.xattr.user.k" + std::to_string(i), "v");
  s = Unpack(with(many));
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message().find("too many PAX xattrs"), std::string::npos);
  for (const std::string& bad :
       {Pax("uid", "-1"), Pax("uid", "99999999999"), Pax("gid", "x"), Pax("mtime", ""),
        Pax("size", "12345678901234567890"), Pax("SCHILY.xattr.", "v"),
        Pax("SCHILY.xattr.user.big", std::string(70000, 'v'))}) {
    s = Unpack(with(bad));
    EXPECT_FALSE(s) << bad.substr(0, 40);
  }
  EXPECT_FALSE(OutsideTouched());
}

}  // namespace
}  // namespace storevisor::image
