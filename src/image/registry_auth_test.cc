// Registry auth parsers: challenges, token answers and auth files, with nasty cases.
#include "image/registry_auth.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "common/files.h"

namespace storevisor::image {
namespace {

TEST(RegistryAuthTest, ParsesBearerAndBasicChallenges) {
  auto b = ParseWwwAuthenticate(
      R"(Bearer realm="https://auth.example.com/token",service="registry.example.com",)"
      R"(scope="repository:samalba/my-app:pull,push")");
  ASSERT_TRUE(b.has_value()) << b.error().message();
  EXPECT_EQ(b->scheme, "bearer");
  EXPECT_EQ(b->realm, "https://auth.example.com/token");
  EXPECT_EQ(b->service, "registry.example.com");
  EXPECT_EQ(b->scope, "repository:samalba/my-app:pull,push");
  auto basic = ParseWwwAuthenticate(R"(basic realm=Registry)");
  ASSERT_TRUE(basic.has_value());
  EXPECT_EQ(basic->scheme, "basic");
  EXPECT_EQ(basic->realm, "Registry");
  auto esc = ParseWwwAuthenticate(R"(Bearer  realm = "http://h/t" , scope="a\"b", )");
  ASSERT_TRUE(esc.has_value()) << esc.error().message();
  EXPECT_EQ(esc->scope, "a\"b");
}

TEST(RegistryAuthTest, RefusesNastyChallenges) {
  for (const char* bad : {"", "Negotiate abc", "Digest realm=\"x\"", "Bearer realm=\"ftp://x/t\"",
                          "Bearer service=\"x\"", "Bearer realm=\"http://x/t",
                          "Bearer realm=", "Bearer =x", "Bearer realm=\"http://x/t\" scope=\"y\"",
                          "Bearer realm=\"http://x/\x01t\"", "Bearer realm=\"http://x/t\\"}) {
    auto c = ParseWwwAuthenticate(bad);
    EXPECT_FALSE(c.has_value()) << bad;
    if (!c) {
      EXPECT_EQ(c.error().code(), ErrorCode::kGuestFault) << bad;
    }
  }
  std::string huge = "Bearer realm=\"http://x/" + std::string(10000, 'a') + "\"";
  EXPECT_FALSE(ParseWwwAuthenticate(huge).has_value());
}

TEST(RegistryAuthTest, TokenAnswers) {
  EXPECT_EQ(ParseTokenResponse(R"({"token":"abc","expires_in":60})").value_or(""), "abc");
  EXPECT_EQ(ParseTokenResponse(R"({"access_token":"xyz"})").value_or(""), "xyz");
  for (const char* bad : {"", "[]", "{", R"({"token":5})", R"({"token":""})", R"({"x":"y"})",
                          "{\"token\":\"a b\"}", "{\"token\":\"a\\r\\nX-Evil: 1\"}"}) {
    EXPECT_FALSE(ParseTokenResponse(bad).has_value()) << bad;
  }
  EXPECT_FALSE(ParseTokenResponse(std::string(2u << 20, ' ')).has_value());
}

TEST(RegistryAuthTest, AuthFiles) {
  char tmpl[] = "/tmp/sv-authfile-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::string path = tmpl;
  // base64("alice:s3:cret")
  ASSERT_TRUE(
      WriteFileAtomic(path, R"({"auths":{"127.0.0.1:5000":{"auth":"YWxpY2U6czM6Y3JldA=="}}})"));
  auto c = CredentialsFromAuthFile(path, "127.0.0.1:5000");
  ASSERT_TRUE(c.has_value()) << c.error().message();
  EXPECT_EQ(c->username, "alice");
  EXPECT_EQ(c->password, "s3:cret");
  auto none = CredentialsFromAuthFile(path, "other:1");
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
  for (const char* bad : {"{", "[]", R"({"auths":[]})", R"({"auths":{"127.0.0.1:5000":1}})",
                          R"({"auths":{"127.0.0.1:5000":{"auth":"!!!"}}})",
                          R"({"auths":{"127.0.0.1:5000":{"auth":"bm9jb2xvbg=="}}})"}) {
    ASSERT_TRUE(WriteFileAtomic(path, bad));
    auto r = CredentialsFromAuthFile(path, "127.0.0.1:5000");
    EXPECT_FALSE(r.has_value()) << bad;
    if (!r) {
      EXPECT_NE(r.error().message().find(path), std::string::npos) << r.error().message();
    }
  }
  ::unlink(path.c_str());
  EXPECT_FALSE(CredentialsFromAuthFile(path, "x").has_value());
}

}  // namespace
}  // namespace storevisor::image
