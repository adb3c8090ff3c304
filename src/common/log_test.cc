#include "common/log.h"

#include <gtest/gtest.h>

namespace storevisor {
namespace {

TEST(LoggerTest, JsonLineHasFieldsAndRedactsSecrets) {
  Logger log(2, LogFormat::kJson);
  std::string line = log.Format(LogLevel::kWarn, "vm", "boot slow",
                                {{"vm", "pos-1"}, {"api_token", "hunter2"}, {"ms", 2100}});
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "warn");
  EXPECT_EQ(j["component"], "vm");
  EXPECT_EQ(j["msg"], "boot slow");
  EXPECT_EQ(j["vm"], "pos-1");
  EXPECT_EQ(j["ms"], 2100);
  EXPECT_EQ(j["api_token"], "<redacted>");
  EXPECT_EQ(line.find("hunter2"), std::string::npos);
}

TEST(LoggerTest, HumanLineIsReadable) {
  Logger log(2, LogFormat::kHuman);
  std::string line = log.Format(LogLevel::kInfo, "runtime", "started", {{"id", "c1"}});
  EXPECT_NE(line.find("info runtime: started id=c1"), std::string::npos);
}

TEST(LoggerTest, InvalidUtf8DoesNotThrow) {
  Logger log(2, LogFormat::kJson);
  std::string bad = "guest said \xff\xfe";
  EXPECT_NO_THROW(log.Format(LogLevel::kInfo, "agent", bad, {{"raw", bad}}));
}

}  // namespace
}  // namespace storevisor
