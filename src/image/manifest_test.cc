// The registry manifest parser and image references: well-formed and nasty inputs.
#include "image/manifest.h"

#include <gtest/gtest.h>

#include <string>

namespace storevisor::image {
namespace {

const std::string kD1 = "sha256:" + std::string(64, 'a');
const std::string kD2 = "sha256:" + std::string(64, 'b');

std::string Desc(const std::string& digest, const std::string& size = "10",
                 const std::string& extra = "") {
  return "{\"mediaType\":\"x\",\"digest\":\"" + digest + "\",\"size\":" + size + extra + "}";
}

TEST(ManifestTest, ParsesOciAndDockerManifests) {
  std::string oci =
      "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
      "\"config\":" +
      Desc(kD1) + ",\"layers\":[" + Desc(kD2, "20") + "]}";
  auto m = ParseManifest(oci, "application/vnd.oci.image.manifest.v1+json");
  ASSERT_TRUE(m.has_value()) << m.error().message();
  EXPECT_EQ(m->kind, ManifestKind::kImage);
  EXPECT_EQ(m->config.digest, kD1);
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].size, 20u);
  // Docker schema 2, type only in the header.
  std::string docker = "{\"schemaVersion\":2,\"config\":" + Desc(kD1) + ",\"layers\":[]}";
  m = ParseManifest(docker, "application/vnd.docker.distribution.manifest.v2+json");
  ASSERT_TRUE(m.has_value()) << m.error().message();
  EXPECT_EQ(m->media_type, "application/vnd.docker.distribution.manifest.v2+json");
}

TEST(ManifestTest, ParsesIndexAndPicksPlatform) {
  std::string idx =
      "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
      "\"manifests\":[" +
      Desc(kD1, "5", ",\"platform\":{\"os\":\"linux\",\"architecture\":\"arm64\"}") + "," +
      Desc(kD2, "6", ",\"platform\":{\"os\":\"linux\",\"architecture\":\"amd64\"}") + "]}";
  auto m = ParseManifest(idx, "");
  ASSERT_TRUE(m.has_value()) << m.error().message();
  EXPECT_EQ(m->kind, ManifestKind::kIndex);
  auto pick = PickPlatform(*m, "linux", "amd64");
  ASSERT_TRUE(pick.has_value());
  EXPECT_EQ(pick->digest, kD2);
  auto none = PickPlatform(*m, "windows", "amd64");
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(none.error().message().find("linux/arm64, linux/amd64"), std::string::npos);
}

TEST(ManifestTest, RefusesNastyManifests) {
  struct Case {
    std::string body;
    std::string content_type;
    std::string says;
  };
  std::string layers = ",\"layers\":[]}";
  std::vector<Case> cases = {
      {"", "", "not valid JSON"},
      {"[1,2]", "", "not a JSON object"},
      {"{\"schemaVersion\":1,\"fsLayers\":[]}", "", "schemaVersion 1"},
      {"{\"schemaVersion\":\"2\"}", "", "schemaVersion"},
      {"{\"schemaVersion\":2,\"layers\":[]}", "", "no config"},
      {"{\"schemaVersion\":2,\"config\":" + Desc("sha256:abc") + layers, "", "bad digest"},
      {"{\"schemaVersion\":2,\"config\":" + Desc("md5:" + std::string(64, 'a')) + layers, "",
       "bad digest"},
      {"{\"schemaVersion\":2,\"config\":" + Desc(kD1, "-1") + layers, "", "unsigned"},
      {"{\"schemaVersion\":2,\"config\":" + Desc(kD1, "1.5") + layers, "", "unsigned"},
      {"{\"schemaVersion\":2,\"config\":" + Desc(kD1, "99999999999999999") + layers, "", "too big"},
      {"{\"schemaVersion\":2,\"config\":" + Desc(kD1) + ",\"layers\":{}}", "", "not a list"},
      {"{\"schemaVersion\":2,\"config\":" + Desc(kD1) + ",\"layers\":[1]}", "", "not an object"},
      {"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
       "\"manifests\":[]}",
       "application/vnd.oci.image.manifest.v1+json", "disagrees"},
      {"{\"schemaVersion\":2,\"mediaType\":\"text/html\"}", "", "not an image manifest"},
      {std::string(100, '[') + std::string(100, ']'), "", "deeper"},
      {std::string(5u << 20, ' '), "", "at most"},
  };
  std::string many = "{\"schemaVersion\":2,\"config\":" + Desc(kD1) + ",\"layers\":[";
  for (int i = 0; i < 1001; ++i) many += (i ? "," : "") + Desc(kD2);
  cases.push_back({many + "]}", "", "1001 entries"});
  for (const auto& c : cases) {
    auto m = ParseManifest(c.body, c.content_type);
    ASSERT_FALSE(m.has_value()) << c.body.substr(0, 120);
    EXPECT_NE(m.error().message().find(c.says), std::string::npos)
        << c.body.substr(0, 120) << " -> " << m.error().message();
  }
}

TEST(ManifestTest, ParsesRegistryReferences) {
  auto r = ParseRegistryRef("127.0.0.1:5000/store/busybox:1.36");
  ASSERT_TRUE(r.has_value()) << r.error().message();
  EXPECT_EQ(r->host, "127.0.0.1");
  EXPECT_EQ(r->port, 5000);
  EXPECT_EQ(r->repository, "store/busybox");
  EXPECT_EQ(r->tag, "1.36");
  EXPECT_EQ(r->StoreRef(), "127.0.0.1:5000/store/busybox:1.36");
  r = ParseRegistryRef("localhost/busybox");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->tag, "latest");
  EXPECT_EQ(r->port, 0);
  r = ParseRegistryRef("registry.example:443/a@" + kD1);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->Reference(), kD1);
  for (const char* bad :
       {"", "busybox", "busybox/x:1", "h:99999/x", "h:/x", "h:1/", "h:1/X", "h:1/a//b",
        "h:1/a:", "h:1/a:-x", "h:1/../a", "h:1/a@sha256:12", "h o:1/a", "h:1/a:t\n"}) {
    EXPECT_FALSE(ParseRegistryRef(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace storevisor::image
