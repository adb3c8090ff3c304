#include "common/error.h"

#include <gtest/gtest.h>

#include "common/checked.h"

namespace storevisor {
namespace {

Result<int> ParsePositive(int v) {
  if (v <= 0) return Error(ErrorCode::kInvalidArgument, "must be positive");
  return v;
}

Result<int> Doubled(int v) {
  SV_ASSIGN_OR_RETURN(int x, ParsePositive(v));
  return x * 2;
}

Status Checked(int v) {
  SV_TRY_CTX(ParsePositive(v), "field cpus");
  return Ok();
}

TEST(ResultTest, CarriesValueOrError) {
  EXPECT_EQ(*Doubled(21), 42);
  auto bad = Doubled(-1);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.error().message(), "must be positive");
}

TEST(ResultTest, ContextIsPrepended) {
  auto s = Checked(0);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().message(), "field cpus: must be positive");
  EXPECT_TRUE(Checked(3).has_value());
}

TEST(ErrorTest, ErrnoErrorMapsCodeAndText) {
  Error e = ErrnoError("open /nope", ENOENT);
  EXPECT_EQ(e.code(), ErrorCode::kNotFound);
  EXPECT_EQ(e.sys_errno(), ENOENT);
  EXPECT_EQ(e.message(), "open /nope: No such file or directory");
  EXPECT_EQ(ExitCodeFor(ErrorCode::kNotFound), 3);
  EXPECT_EQ(HttpStatusFor(ErrorCode::kNotFound), 404);
}

TEST(CheckedTest, DetectsOverflow) {
  EXPECT_FALSE(CheckedAdd<uint32_t>(0xffffffffu, 1u).has_value());
  EXPECT_EQ(*CheckedAdd<uint32_t>(1u, 2u), 3u);
  EXPECT_FALSE(CheckedMul<uint64_t>(1ull << 40, 1ull << 40).has_value());
  EXPECT_TRUE(RangeWithin<uint64_t>(10, 5, 15));
  EXPECT_FALSE(RangeWithin<uint64_t>(10, 6, 15));
  EXPECT_FALSE(RangeWithin<uint64_t>(16, 0, 15));
  EXPECT_FALSE(RangeWithin<uint64_t>(1, ~0ull, 15));
}

}  // namespace
}  // namespace storevisor
