#include "common/json_depth.h"

#include <gtest/gtest.h>

#include <string>

namespace storevisor {
namespace {

TEST(JsonNestingDepth, CountsObjectsAndArrays) {
  EXPECT_EQ(JsonNestingDepth("42"), 0u);
  EXPECT_EQ(JsonNestingDepth("{}"), 1u);
  EXPECT_EQ(JsonNestingDepth(R"({"a":[1,{"b":[]}],"c":{}})"), 4u);
}

TEST(JsonNestingDepth, IgnoresBracketsInStringsAndEscapedQuotes) {
  EXPECT_EQ(JsonNestingDepth(R"({"a":"[[[{{{"})"), 1u);
  EXPECT_EQ(JsonNestingDepth(R"({"a":"\"[[[", "b":[]})"), 2u);
  EXPECT_EQ(JsonNestingDepth(R"(["\\", [[]]])"), 3u);  // an escaped backslash ends no string
}

TEST(JsonNestingDepth, HostileInput) {
  EXPECT_EQ(JsonNestingDepth(std::string(100000, '[')), 100000u);
  EXPECT_EQ(JsonNestingDepth("]]]]}}[["), 2u);  // closers first never go below zero
  EXPECT_EQ(JsonNestingDepth("\"unterminated [[["), 0u);
  EXPECT_EQ(JsonNestingDepth("[\"\\"), 1u);  // a trailing backslash reads no further
  EXPECT_EQ(JsonNestingDepth(std::string_view("[\0[", 3)), 2u);
}

}  // namespace
}  // namespace storevisor
