// Resolving image users through the image's /etc/passwd and /etc/group.
#include "image/passwd.h"

#include <gtest/gtest.h>

#include <string>

namespace storevisor::image {
namespace {

constexpr const char* kPasswd =
    "root:x:0:0:root:/root:/bin/sh\n"
    "# a comment\n"
    "broken line\n"
    "evil:x:-1:99999999999:::\n"
    "app:x:1234:2345:App:/srv:/bin/false\n"
    "app:x:999:999:shadowed duplicate:/:/bin/false\n";
constexpr const char* kGroup =
    "root:x:0:\n"
    "appgrp:x:2345:\n"
    "staff:x:3000:root,app,other\n"
    "video:x:44:app\n"
    "nobody-knows:x:notanumber:app\n";

TEST(PasswdTest, ResolvesNamesGroupsAndSupplementaryGroups) {
  auto u = ResolveImageUser("app", kPasswd, kGroup);
  ASSERT_TRUE(u.has_value()) << u.error().message();
  EXPECT_EQ(u->uid, 1234u);
  EXPECT_EQ(u->gid, 2345u);
  EXPECT_EQ(u->additional_gids, (std::vector<uint32_t>{3000, 44}));
  u = ResolveImageUser("app:staff", kPasswd, kGroup);
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->gid, 3000u);
  EXPECT_EQ(u->additional_gids, (std::vector<uint32_t>{44}));
  u = ResolveImageUser("1234:44", kPasswd, kGroup);
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->uid, 1234u);
  EXPECT_EQ(u->gid, 44u);
  // A numeric uid with no entry runs as gid 0, like runc.
  u = ResolveImageUser("5000", "", "");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->uid, 5000u);
  EXPECT_EQ(u->gid, 0u);
}

TEST(PasswdTest, RefusesUnknownAndMalformedUsers) {
  for (const char* bad :
       {"", "ghost", "app:ghosts", "evil", ":", "app:", ":staff", "4294967295", "99999999999"}) {
    auto u = ResolveImageUser(bad, kPasswd, kGroup);
    EXPECT_FALSE(u.has_value()) << bad;
  }
  auto u = ResolveImageUser("ghost", kPasswd, kGroup);
  ASSERT_FALSE(u.has_value());
  EXPECT_NE(u.error().message().find("not in the image's /etc/passwd"), std::string::npos);
  // Garbage files: nothing resolves by name, nothing crashes.
  std::string junk(10000, ':');
  EXPECT_FALSE(ResolveImageUser("app", junk, junk).has_value());
}

}  // namespace
}  // namespace storevisor::image
