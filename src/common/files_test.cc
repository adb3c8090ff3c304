#include "common/files.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

namespace storevisor {
namespace {

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/sv-files-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { (void)RemoveAll(dir_); }
  std::string dir_;
};

TEST_F(FilesTest, AtomicWriteReplacesAndLeavesNoTemp) {
  std::string path = dir_ + "/state.json";
  ASSERT_TRUE(WriteFileAtomic(path, "one").has_value());
  ASSERT_TRUE(WriteFileAtomic(path, "two", 0600).has_value());
  EXPECT_EQ(*ReadFile(path), "two");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  int entries = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir_)) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST_F(FilesTest, ReadFileRefusesOversizeAndMissing) {
  std::string path = dir_ + "/big";
  ASSERT_TRUE(WriteFileAtomic(path, std::string(100, 'x')).has_value());
  auto r = ReadFile(path, 10);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kResourceExhausted);
  auto missing = ReadFile(dir_ + "/nope");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), ErrorCode::kNotFound);
}

TEST_F(FilesTest, AtomicWriteIntoMissingDirFails) {
  auto s = WriteFileAtomic(dir_ + "/no/such/dir/file", "x");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace storevisor
