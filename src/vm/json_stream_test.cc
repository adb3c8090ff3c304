// Nasty cases for the untrusted JSON reader (QMP and guest-agent input).
#include <gtest/gtest.h>

#include "vm/vm.h"

namespace storevisor::vm {
namespace {

std::vector<Result<nlohmann::json>> All(JsonStream& s) {
  std::vector<Result<nlohmann::json>> out;
  while (auto m = s.Next()) out.push_back(std::move(*m));
  return out;
}

TEST(JsonStream, MessagesSplitAcrossArbitraryChunks) {
  std::string in = "{\"return\": {\"a\": \"}{\\\"[\"}}\n{\"event\":\"X\",\"data\":[1,{}]}\r\n";
  for (size_t chunk = 1; chunk <= in.size(); ++chunk) {
    JsonStream s;
    for (size_t off = 0; off < in.size(); off += chunk) s.Feed(in.substr(off, chunk));
    auto all = All(s);
    ASSERT_EQ(all.size(), 2u) << chunk;
    EXPECT_EQ(all[0]->at("return").at("a"), "}{\"[");
    EXPECT_EQ(all[1]->at("event"), "X");
  }
}

TEST(JsonStream, PartialMessageWaits) {
  JsonStream s;
  s.Feed("{\"return\": ");
  EXPECT_FALSE(s.Next().has_value());
  s.Feed("42}");
  auto m = s.Next();
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ((*m)->at("return"), 42);
}

TEST(JsonStream, GarbageBetweenMessagesIsSkippedAndCounted) {
  JsonStream s;
  s.Feed("hello 123 [1,2] {\"ok\":1} \x01\x02");
  auto all = All(s);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0]->at("ok"), 1);
  EXPECT_GT(s.garbage_bytes(), 5u);
}

TEST(JsonStream, MalformedObjectIsAnErrorNotACrash) {
  JsonStream s;
  s.Feed("{\"a\": tru}{\"b\": 1,}{\"c\": \"\xc3\x28\"}{\"ok\":true}");
  auto all = All(s);
  ASSERT_EQ(all.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_FALSE(all[i].has_value());
    EXPECT_EQ(all[i].error().code(), ErrorCode::kGuestFault);
  }
  EXPECT_TRUE(all[3].has_value());
}

TEST(JsonStream, OversizedMessageDroppedStreamRecovers) {
  JsonStream s(JsonLimits{.max_message = 100, .max_depth = 8, .max_queued = 16});
  s.Feed("{\"big\":\"" + std::string(100000, 'x') + "\"}{\"ok\":2}");
  auto all = All(s);
  ASSERT_EQ(all.size(), 2u);
  ASSERT_FALSE(all[0].has_value());
  EXPECT_NE(all[0].error().message().find("larger than 100"), std::string::npos);
  EXPECT_EQ(all[1]->at("ok"), 2);
}

TEST(JsonStream, DeepNestingRefusedBeforeParsing) {
  JsonStream s(JsonLimits{.max_message = 1 << 20, .max_depth = 8, .max_queued = 16});
  s.Feed("{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}{\"ok\":3}");
  auto all = All(s);
  ASSERT_EQ(all.size(), 2u);
  ASSERT_FALSE(all[0].has_value());
  EXPECT_NE(all[0].error().message().find("nested deeper than 8"), std::string::npos);
  EXPECT_EQ(all[1]->at("ok"), 3);
}

TEST(JsonStream, ResyncByteDropsPartialObject) {
  JsonStream s;
  s.Feed("{\"return\": {\"half");
  s.Feed("\xFF{\"return\":7}");
  auto all = All(s);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0]->at("return"), 7);
  EXPECT_EQ(s.resyncs(), 1u);
}

TEST(JsonStream, UnbalancedClosersInStringsDoNotConfuseFraming) {
  JsonStream s;
  s.Feed(R"({"s":"]]]}}}\\"} {"t":"\\\""})");
  auto all = All(s);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0]->at("s"), "]]]}}}\\");
  EXPECT_EQ(all[1]->at("t"), "\\\"");
}

TEST(JsonStream, FloodIsBounded) {
  JsonStream s(JsonLimits{.max_message = 100, .max_depth = 8, .max_queued = 10});
  std::string many;
  for (int i = 0; i < 1000; ++i) many += "{\"n\":" + std::to_string(i) + "}";
  s.Feed(many);
  auto all = All(s);
  ASSERT_EQ(all.size(), 10u);
  EXPECT_EQ(all.back()->at("n"), 999);
}

TEST(Base64, RejectsBadInput) {
  EXPECT_EQ(DecodeBase64(EncodeBase64(std::string("\0\1\xff", 3))), std::string("\0\1\xff", 3));
  EXPECT_EQ(DecodeBase64("aGkK"), "hi\n");
  EXPECT_EQ(DecodeBase64("aGk="), "hi");
  EXPECT_FALSE(DecodeBase64("aGk"));
  EXPECT_FALSE(DecodeBase64("a=Gk"));
  EXPECT_FALSE(DecodeBase64("aG=k"));
  EXPECT_FALSE(DecodeBase64("****"));
}

}  // namespace
}  // namespace storevisor::vm
